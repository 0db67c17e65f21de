"""Direct shard reads and writes: zarr-python agrees, windows read only the bytes they need."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import GzipCodec

from maestro.store.convert import convert
from maestro.store.shard_io import ShardedArray
from maestro.store.zarr_store import Store, chunk_px
from tests.data.fakes import FakeReader, small_store


@pytest.fixture(scope="module", params=["pastis_hd", "s2_naip", "treesatai_ts"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Store:
    # s2_naip: 64 px tiles in 12 px chunks (crops of 120 m in 640 m), so edge chunks are partial
    reader = FakeReader(small_store(request.param), 5, 2, 2, tlim=(1, 6))
    path = tmp_path_factory.mktemp(request.param) / "s.zarr"
    convert(reader, path, shard_samples=4)
    return Store(path)


def _sharded(store: Store) -> list[str]:
    return [
        f"{m.name}/{a}"
        for m in store.spec.stored_modalities
        for a in ("data", "dates", "invalid")
        if a != "invalid" or m.has_mask
    ] + (["label"] if store.spec.label is not None and store.spec.label.kind == "raster" else [])


def test_every_sharded_array_reads_as_zarr_does(store: Store) -> None:
    rng = np.random.default_rng(0)
    for path in _sharded(store):
        array = store.group[path]
        reader = ShardedArray.of(array, store.path / path)
        assert reader is not None, path
        for i in range(store.n_samples):
            whole = np.asarray(array[i])
            np.testing.assert_array_equal(reader.read(i, ()), whole)
            assert reader.read(i, ()).dtype == whole.dtype
            sel = []
            for n in whole.shape:  # a random step-1 window on every axis
                a = int(rng.integers(0, n))
                sel.append(slice(a, int(rng.integers(a + 1, n + 1))))
            np.testing.assert_array_equal(reader.read(i, tuple(sel)), whole[tuple(sel)])
            np.testing.assert_array_equal(reader.read(i, (slice(0, 0),)), whole[:0])


def test_store_windows_equal_crops_of_whole_reads(store: Store) -> None:
    spec = store.spec
    for i in range(store.n_samples):
        for m in spec.stored_modalities:
            data, dates, invalid = store.read(i, m.name)
            p, k = m.pixels(spec.tile_m), chunk_px(spec, m)
            for a, b in ((0, k), (k // 2, min(p, k // 2 + k)), (p - 3, p)):
                window = (slice(a, b), slice(max(0, a - 1), b))
                d, t, inv = store.read(i, m.name, window=window)
                np.testing.assert_array_equal(d, data[..., window[0], window[1]])
                np.testing.assert_array_equal(t, dates)
                if invalid is not None:
                    np.testing.assert_array_equal(inv, invalid[..., window[0], window[1]])
        if spec.label is not None and spec.label.kind == "raster":
            full = store.label(i)
            np.testing.assert_array_equal(
                store.label(i, (slice(3, 9), slice(1, 2))), full[3:9, 1:2]
            )


def test_a_read_opens_one_shard_and_decodes_only_the_window(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = store.spec
    m = max(spec.stored_modalities, key=lambda m: m.pixels(spec.tile_m))
    k, p = chunk_px(spec, m), m.pixels(spec.tile_m)
    store.read(0, m.name)  # metadata and small arrays: loaded once, not counted
    opened: list[str] = []
    preads: list[int] = []
    real_open, real_pread = os.open, os.pread
    monkeypatch.setattr(
        os, "open", lambda f, *a, **kw: opened.append(str(f)) or real_open(f, *a, **kw)
    )
    monkeypatch.setattr(os, "pread", lambda fd, n, off: preads.append(n) or real_pread(fd, n, off))
    i = 5  # second shard (4 samples per shard)
    store.read(i, m.name, window=(slice(0, k), slice(0, k)))
    shard = f"c/{i // 4}/0/0/0/0"
    assert opened == [
        str(store.path / f"{m.name}/data/{shard}"),
        str(store.path / f"{m.name}/dates/c/1/0/0"),
    ]
    # data: the sample's index slice + one inner chunk; dates: index slice + one chunk
    assert len(preads) == 4
    n_chunks = math.ceil(p / k) ** 2
    assert preads[0] == 16 * n_chunks  # only this sample's part of the shard index
    opened.clear()
    preads.clear()
    store.read(i, m.name)
    assert len(preads) == 1 + n_chunks + 2  # the whole tile: every inner chunk


def test_other_layouts_fall_back_to_zarr(tmp_path: Path) -> None:
    group = zarr.open_group(tmp_path / "g.zarr", mode="w", zarr_format=3)
    plain = group.create_array("plain", shape=(4, 3), chunks=(2, 3), dtype="int16")
    gzip = group.create_array(
        "gzip", shape=(4, 3), chunks=(1, 3), shards=(2, 3), dtype="int16", compressors=GzipCodec()
    )
    assert ShardedArray.of(plain, tmp_path / "g.zarr/plain") is None
    assert ShardedArray.of(gzip, tmp_path / "g.zarr/gzip") is None


def test_missing_shard_and_chunks_read_as_fill(tmp_path: Path) -> None:
    group = zarr.open_group(tmp_path / "g.zarr", mode="w", zarr_format=3)
    arr = group.create_array(
        "a", shape=(6, 2, 5), chunks=(1, 2, 2), shards=(2, 2, 6), dtype="float32", fill_value=-1.0
    )
    arr[2:4] = np.stack([np.full((2, 5), -1.0), np.arange(10.0).reshape(2, 5)])
    reader = ShardedArray.of(arr, tmp_path / "g.zarr" / "a")
    assert reader is not None
    for i in range(6):  # shard 0 and 2 were never written; sample 2 equals the fill value
        np.testing.assert_array_equal(reader.read(i, ()), arr[i])
    with pytest.raises(ValueError, match="step-1"):
        reader.read(3, (slice(None), slice(0, 5, 2)))
    shard = reader.shard_path(1)
    shard.write_bytes(shard.read_bytes()[:20])
    with pytest.raises(OSError, match="truncated shard"):
        reader.read(3, ())


def test_written_shards_read_back_with_zarr(tmp_path: Path) -> None:
    group = zarr.open_group(tmp_path / "g.zarr", mode="w", zarr_format=3)
    # 7 samples in shards of 3 (last one partial); 5 px in chunks of 2 (edge chunks padded)
    arr = group.create_array(
        "a", shape=(7, 3, 5, 5), chunks=(1, 3, 2, 2), shards=(3, 3, 6, 6), dtype="int16"
    )
    sharded = ShardedArray.of(arr, tmp_path / "g.zarr" / "a")
    assert sharded is not None and sharded.grid == (1, 3, 3)
    rng = np.random.default_rng(1)
    data = rng.integers(-500, 500, size=(7, 3, 5, 5)).astype(np.int16)
    data[1, :, :2, :2] = 0  # one inner chunk equal to the fill value: not stored
    data[6] = 0  # a shard of fill values only: no file
    for k, (a, b) in enumerate([(0, 3), (3, 6), (6, 7)]):
        sharded.write_shard(k, data[a:b])
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "g.zarr" / "a", mode="r")[:], data)
    assert not sharded.shard_path(2).exists()
    files = sorted(p.relative_to(sharded.path).as_posix() for p in sharded.path.rglob("c/**/*"))
    assert [f for f in files if Path(f).name == "0" and f.count("/") == 4] == [
        "c/0/0/0/0",
        "c/1/0/0/0",
    ]
    assert not [f for f in files if "tmp" in f]  # no temporary file left
    sharded.write_shard(0, np.zeros((3, 3, 5, 5), np.int16))  # replaced by nothing at all
    assert not sharded.shard_path(0).exists()
    np.testing.assert_array_equal(sharded.read(0, ()), np.zeros((3, 5, 5)))
    with pytest.raises(ValueError, match=r"shard 2 needs shape \(1, 3, 5, 5\)"):
        sharded.write_shard(2, data[:3])


def test_float_fill_chunks_keep_their_bits(tmp_path: Path) -> None:
    group = zarr.open_group(tmp_path / "g.zarr", mode="w", zarr_format=3)
    arr = group.create_array("f", shape=(2, 4), chunks=(1, 2), shards=(2, 4), dtype="float32")
    sharded = ShardedArray.of(arr, tmp_path / "g.zarr" / "f")
    assert sharded is not None
    data = np.array([[-0.0, 0.0, np.nan, 1.0], [0.0, 0.0, -0.0, -0.0]], np.float32)
    sharded.write_shard(0, data)
    back = np.asarray(arr[:])
    assert back.tobytes() == data.tobytes()  # -0.0 is not the fill value 0.0
    assert sharded.read(1, ()).tobytes() == data[1].tobytes()


def test_zstd_decode_into_checks_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    from numcodecs import Zstd

    from maestro.store import zstd_decode

    x = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    frame = Zstd(level=3).encode(x.tobytes())
    for lib in ("system", "numcodecs"):
        if lib == "numcodecs":
            monkeypatch.setattr(zstd_decode, "_libzstd", lambda: None)
        out = np.empty_like(x)
        assert zstd_decode.decode_into(frame, out) is out
        np.testing.assert_array_equal(out, x)
        with pytest.raises(ValueError, match="expected 240"):
            zstd_decode.decode_into(Zstd().encode(x[:2].tobytes()), np.empty(120, np.int16))
        with pytest.raises(ValueError):
            zstd_decode.decode_into(frame[:-3] + b"xyz", np.empty_like(x))
        with pytest.raises(ValueError, match="C-contiguous"):
            zstd_decode.decode_into(frame, np.empty((5, 4, 3), np.int16).T)


def test_steady_heap_is_applied_once_per_process() -> None:
    from maestro.store import heap

    first = heap.steady_heap()
    assert heap.steady_heap() == first  # idempotent
    assert first == (heap._mallopt() is not None)  # applied with glibc, a no-op elsewhere
