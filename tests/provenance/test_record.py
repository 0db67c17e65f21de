"""Provenance records: hashes, git state, configuration hash, atomic write."""

from __future__ import annotations

import hashlib
import json
import time

from maestro import provenance
from maestro.store.zarr_store import MANIFEST_NAME


def test_config_hash_is_canonical():
    a = provenance.config_hash({"b": 1, "a": [1, 2]})
    assert a == provenance.config_hash({"a": [1, 2], "b": 1})
    assert a != provenance.config_hash({"a": [2, 1], "b": 1})


def test_path_hash_of_files_manifests_and_plain_directories(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc" * 1000)
    assert provenance.path_hash(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
    store = tmp_path / "s.zarr"
    store.mkdir()
    (store / MANIFEST_NAME).write_text(json.dumps({"content_hash": "deadbeef", "files": []}))
    assert provenance.path_hash(store) == "deadbeef"  # no file is re-hashed
    plain = tmp_path / "plain"
    (plain / "sub").mkdir(parents=True)
    (plain / "sub" / "a.txt").write_text("1")
    h1 = provenance.path_hash(plain)
    (plain / ".snakemake_timestamp").write_text("x")  # Snakemake's marker is ignored
    assert provenance.path_hash(plain) == h1
    (plain / "sub" / "a.txt").write_text("2")
    assert provenance.path_hash(plain) != h1


def test_record_contents(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("data")
    rec = provenance.record(
        "pretrain", {"seed": 3}, {"store": inp}, time.time() - 1.5, {"device": "cpu"}
    )
    assert rec["step"] == "pretrain" and rec["config"] == {"seed": 3}
    assert rec["config_hash"] == provenance.config_hash({"seed": 3})
    assert rec["inputs"]["store"]["sha256"] == hashlib.sha256(b"data").hexdigest()
    assert rec["git"]["sha"] is None or len(rec["git"]["sha"]) == 40
    assert rec["packages"]["torch"] and rec["packages"]["python"]
    assert rec["wall_time_s"] >= 1.5 and rec["device"] == {"device": "cpu"}
    provenance.write(tmp_path / "p.json", rec)
    assert json.loads((tmp_path / "p.json").read_text())["config_hash"] == rec["config_hash"]


def test_output_hashes_cover_the_job_files_present(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"weights")
    (tmp_path / "metrics.json").write_text("{}")
    (tmp_path / "unrelated.txt").write_text("x")
    out = provenance.output_hashes(tmp_path)
    assert out == {
        "model.pt": {"sha256": hashlib.sha256(b"weights").hexdigest()},
        "metrics.json": {"sha256": hashlib.sha256(b"{}").hexdigest()},
    }
