"""Parallel and resumable conversion: one store for any worker count; reruns redo what failed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maestro.data.errors import RawFormatError
from maestro.store.convert import convert, work_dir
from maestro.store.validate import order_refs
from maestro.store.zarr_store import Store, store_hash, verify_manifest
from tests.data.fakes import FakeReader, small_store

SHARD = 4


def _reader(**kw: object) -> FakeReader:
    """16 samples = 4 shards of 4."""
    return FakeReader(small_store("treesatai_ts"), 9, 4, 3, tlim=(1, 5), **kw)  # type: ignore[arg-type]


def _shard_ids(reader: FakeReader, k: int) -> list[str]:
    refs = order_refs(reader.index(), reader.store, reader.root)
    return [r.sample_id for r in refs[k * SHARD : (k + 1) * SHARD]]


def _markers(out: Path) -> list[str]:
    return sorted(p.name for p in (work_dir(out) / "shards").iterdir())


def test_workers_give_the_same_store(tmp_path: Path) -> None:
    one = convert(_reader(), tmp_path / "one.zarr", SHARD)
    two = convert(_reader(), tmp_path / "two.zarr", SHARD, workers=2)
    three = convert(_reader(), tmp_path / "three.zarr", SHARD, workers=3)
    assert one["content_hash"] == two["content_hash"] == three["content_hash"]
    assert (one["workers"], two["workers"], one["shards"]) == (1, 2, 4)
    a, b = Store(tmp_path / "one.zarr"), Store(tmp_path / "two.zarr")
    assert a.attrs == b.attrs  # statistics merged per shard in the same order, bit for bit
    assert verify_manifest(tmp_path / "two.zarr") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.zarr", "three.zarr", "two.zarr"]


def test_rerun_after_a_bad_sample_converts_only_its_shard(tmp_path: Path) -> None:
    out = tmp_path / "t.zarr"
    clean = convert(_reader(), tmp_path / "clean.zarr", SHARD)["content_hash"]
    bad_id = _shard_ids(_reader(), 2)[1]  # shard 3 of 4
    bad = _reader(corrupt={bad_id: "dtype"})
    with pytest.raises(RawFormatError, match=bad_id) as err:
        convert(bad, out, SHARD)
    assert "1 of 4 shards failed" in "".join(err.value.__notes__)
    assert not out.exists()
    assert _markers(out) == ["000000.npz", "000001.npz", "000003.npz"]  # the others went on
    assert bad.reads == 16 - 2  # the bad shard stopped at its second sample
    fixed = _reader()
    summary = convert(fixed, out, SHARD)
    assert sorted(fixed.read_ids) == sorted(_shard_ids(fixed, 2))  # only the failed shard
    assert summary["shards_reused"] == 3
    assert summary["content_hash"] == clean == store_hash(out)
    assert not work_dir(out).exists()


def test_another_fingerprint_starts_afresh(tmp_path: Path) -> None:
    out = tmp_path / "t.zarr"
    bad_id = _shard_ids(_reader(), 3)[0]
    with pytest.raises(RawFormatError):
        convert(_reader(corrupt={bad_id: "label"}), out, SHARD)
    before = json.loads((work_dir(out) / "fingerprint.json").read_text())
    fixed = _reader()
    summary = convert(fixed, out, shard_samples=8)  # another shard size: nothing is reused
    assert fixed.reads == 16 and summary["shards_reused"] == 0
    other = _reader(seed=5)  # another index (splits, date counts): nothing is reused
    with pytest.raises(RawFormatError):
        convert(_reader(seed=5, corrupt={bad_id: "label"}), out, SHARD)
    assert json.loads((work_dir(out) / "fingerprint.json").read_text()) != before
    summary = convert(other, out, SHARD)
    assert summary["shards_reused"] == 3 and other.reads == 4


def test_interrupted_run_resumes_over_a_half_written_shard(tmp_path: Path) -> None:
    out = tmp_path / "t.zarr"
    clean = convert(_reader(), tmp_path / "clean.zarr", SHARD)["content_hash"]

    class Crash(FakeReader):
        def read(self, ref):  # type: ignore[no-untyped-def]
            if ref.sample_id == _shard_ids(self, 2)[3]:
                raise KeyboardInterrupt  # a kill in the middle of shard 3 of 4
            return super().read(ref)

    with pytest.raises(KeyboardInterrupt):
        convert(Crash(small_store("treesatai_ts"), 9, 4, 3, tlim=(1, 5)), out, SHARD)
    assert _markers(out) == ["000000.npz", "000001.npz"]  # anything else stops the run
    # a kill during the slab write leaves a partial shard file: it is rewritten whole
    victim = work_dir(out) / "store" / "s2" / "data" / "c" / "2" / "0" / "0" / "0" / "0"
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_bytes(b"\x00garbage")
    fixed = _reader()
    assert convert(fixed, out, SHARD)["content_hash"] == clean
    assert sorted(fixed.read_ids) == sorted(_shard_ids(fixed, 2) + _shard_ids(fixed, 3))


def test_parallel_failure_keeps_finished_shards(tmp_path: Path) -> None:
    out = tmp_path / "t.zarr"
    bad_id = _shard_ids(_reader(), 1)[2]
    with pytest.raises(RawFormatError, match="truncated file") as err:
        convert(_reader(corrupt={bad_id: "truncated"}), out, SHARD, workers=2)
    assert f"{bad_id}.h5" in err.value.path
    assert not out.exists()
    assert _markers(out) == ["000000.npz", "000002.npz", "000003.npz"]
    summary = convert(_reader(), out, SHARD, workers=2)
    assert summary["shards_reused"] == 3
    assert Store(out).sample_ids == [
        r.sample_id for r in order_refs(_reader().index(), small_store("treesatai_ts"), Path("/"))
    ]


def test_parallel_unexpected_error_propagates(tmp_path: Path) -> None:
    class Broken(FakeReader):
        def read(self, ref):  # type: ignore[no-untyped-def]
            raise LookupError(f"cannot find {ref.sample_id}")

    with pytest.raises(LookupError, match="cannot find tile_"):
        convert(Broken(small_store("pastis_hd"), 6, 1, 1), tmp_path / "p.zarr", 2, workers=2)
    assert not (tmp_path / "p.zarr").exists()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workers must be >= 1"):
        convert(_reader(), tmp_path / "a.zarr", SHARD, workers=0)
    with pytest.raises(ValueError, match="shard_samples must be >= 1"):
        convert(_reader(), tmp_path / "a.zarr", 0)
    assert list(tmp_path.iterdir()) == []


def test_small_arrays_come_from_the_markers(tmp_path: Path) -> None:
    reader = _reader()
    convert(reader, tmp_path / "s.zarr", SHARD, workers=2)
    store = Store(tmp_path / "s.zarr")
    refs = {r.sample_id: r for r in reader.index()}
    for i, sid in enumerate(store.sample_ids):
        s = reader.make(int(sid[5:]), refs[sid])
        np.testing.assert_array_equal(store.label(i), s.label)
        np.testing.assert_array_equal(store.ref_date(i), s.ref_date)
        assert store.ndates(i, "s2") == refs[sid].ndates["s2"]
        codes = {"train": 0, "val": 1, "test": 2}
        assert store.split_codes("default")[i] == codes[refs[sid].splits["default"]]


SLOW_CONVERT = """
import os, sys, time
from pathlib import Path
from maestro.store.convert import convert
from tests.data.fakes import FakeReader, small_store

class Slow(FakeReader):
    def read(self, ref):
        (Path(sys.argv[2]) / str(os.getpid())).touch()  # this worker is alive
        time.sleep(0.5)
        return super().read(ref)

convert(Slow(small_store("pastis_hd"), 8, 4, 4), sys.argv[1], shard_samples=2, workers=2)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has exited


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.workflow.conftest import REPO

    pids, out = tmp_path / "pids", tmp_path / "x.zarr"
    pids.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_CONVERT, str(out), str(pids)], env=env)
    deadline = time.time() + 60
    while len(list(pids.iterdir())) < 2 and time.time() < deadline:  # both workers reading
        time.sleep(0.1)
    workers = {int(p.name) for p in pids.iterdir()} - {proc.pid}
    assert workers, "no worker started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    orphans = [w for w in workers if _alive(w)]
    for w in orphans:  # never leave them behind, even when the test fails
        os.kill(w, signal.SIGKILL)
    assert not orphans, "orphaned conversion workers"
    assert not out.exists()


def test_a_second_conversion_to_the_same_store_stops_at_once(tmp_path: Path) -> None:
    import fcntl

    from maestro.data.errors import BusyError
    from maestro.store.convert import lock_path

    out = tmp_path / "x.zarr"
    lock_path(out).touch()
    with open(lock_path(out)) as held:  # another conversion holds the lock
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(BusyError, match=r"x.zarr: another conversion to this path"):
            convert(FakeReader(small_store("pastis_hd"), 2, 1, 1), out, shard_samples=2)
        assert not work_dir(out).exists() and not out.exists()  # nothing touched
    convert(FakeReader(small_store("pastis_hd"), 2, 1, 1), out, shard_samples=2)
    assert out.is_dir()
