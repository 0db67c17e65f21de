"""The audit of a table cell: a real chain of files made by seeded code, then corruptions."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from maestro import provenance
from maestro.cli import main
from maestro.provenance.audit import Auditor
from maestro.provenance.audit_run import audit
from maestro.provenance.audit_table import select_row
from maestro.report.build import write_all
from maestro.store.manifest import write_manifest

CELL = (
    "fusion~group_inter~3_spectral~joint_norm~patchgroup_groups~spec_size~tiny_length~1_dates~all"
)
REF = dict(p.split("~") for p in CELL.split("_"))
SHEET = (
    "fusion\tinter\tspectral\tnorm\tgroups\tsize\tlength\tscratch\tdatasets\n"
    "group\t3\tjoint\tpatchgroup\tspec\ttiny\t1\tyes\tall\n"
)
SEEDS = (0, 1)


def _model(path: Path, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"w": torch.randn(64, generator=g)}, path)


def _metrics(mode: str, seed: int, value: float) -> dict:
    return {
        "dataset": "treesatai_ts", "mode": mode, "metric": "weighted_f1", "seed": seed,
        "cell": REF, "title": "TreeSatAI-TS", "model_size": "tiny", "model_overrides": {},
        "transfer_from": None,
        "test": {"weighted_f1": value, "bootstrap": {"replicates": [value - 0.01, value + 0.01]}},
    }  # fmt: skip


def _job(folder: str, step: str, seed: int, inputs: dict, metrics: dict | None = None) -> None:
    out = Path(folder)
    _model(out / "model.pt", seed * 10 + len(step))
    config = {"job": {"phase": {"epochs": 1}, "cell": REF}, "dataset": "treesatai_ts", "seed": seed}
    if metrics:
        (out / "metrics.json").write_text(json.dumps(metrics))
    extra = {"metrics": metrics, "outputs": provenance.output_hashes(out)}  # as maestro.cli
    rec = provenance.record(step, config, inputs, time.time(), {"device": "cpu"}, extra)
    provenance.write(out / "provenance.json", rec)


@pytest.fixture
def run(tmp_path, monkeypatch) -> Path:
    """A finished run's files (raw -> store -> pretrain -> probe -> finetune, scratch, tables)."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    raw = Path("data/raw/demo/treesatai_ts")
    raw.mkdir(parents=True)
    (raw / "train.csv").write_text("id\n1\n")
    store = Path("results/data/treesatai_ts.zarr")
    (store / "s2" / "c").mkdir(parents=True)
    (store / "zarr.json").write_text("{}")
    for i in range(3):
        (store / "s2" / "c" / str(i)).write_bytes(rng.integers(0, 255, 512, np.uint8).tobytes())
    write_manifest(store)
    Path("config").mkdir()
    (Path("config") / "variants.tsv").write_text(SHEET)
    config = {"datasets": ["treesatai_ts"], "seeds": list(SEEDS), "transfer": [],
              "variants": "config/variants.tsv",
              "sources": {"treesatai_ts": {"kind": "demo", "demo": {"seed": 0}}}}  # fmt: skip
    (Path("config") / "config.yaml").write_text(yaml.safe_dump(config))
    paths = []
    for seed in SEEDS:
        base = f"{CELL}/seed~{seed}"
        pre = f"results/pretrain/treesatai_ts/{base}"
        _job(pre, "pretrain", seed, {"store": store})
        for mode, init in (("probe", pre), ("finetune", f"results/probe/treesatai_ts/{base}"),
                           ("scratch", None)):  # fmt: skip
            inputs = {"store": store} | ({"init": f"{init}/model.pt"} if init else {})
            value = float(rng.uniform(0.3, 0.9))
            _job(f"results/{mode}/treesatai_ts/{base}", mode, seed, inputs,
                 _metrics(mode, seed, value))  # fmt: skip
            paths.append(f"results/{mode}/treesatai_ts/{base}/metrics.json")
    # a cross-dataset run on the same dataset, and a reference row (no model.pt)
    tra = f"results/transfer/finetune/treesatai_ts/from~pastis_hd/{CELL}/seed~0"
    _job(tra, "transfer_finetune", 0, {"store": store},
         _metrics("finetune", 0, 0.5) | {"transfer_from": "pastis_hd"})  # fmt: skip
    ref = Path("results/reference/treesatai_ts/trivial")
    ref.mkdir(parents=True)
    trivial = _metrics("trivial", 0, 0.2) | {"cell": None, "strategy": "every label"}
    (ref / "metrics.json").write_text(json.dumps(trivial))
    extra = {"metrics": trivial, "outputs": provenance.output_hashes(ref)}
    cfg = {"job": {}, "dataset": "treesatai_ts", "seed": 0}
    rec = provenance.record("reference_trivial", cfg, {"store": store}, time.time(), {}, extra)
    provenance.write(ref / "provenance.json", rec)
    paths += [f"{tra}/metrics.json", f"{ref}/metrics.json"]
    write_all(paths, REF, "results/tables")
    return tmp_path


def _audit(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(["audit", *args])
    except SystemExit as err:  # a failed audit exits non-zero
        code = err.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _finetune(seed: int) -> str:
    return f"results/finetune/treesatai_ts/{CELL}/seed~{seed}"


def test_audit_of_a_table_cell_passes(run, capsys):
    code, out, err = _audit(capsys, "--table", "table1", "--row", "MAESTRO",
                            "--dataset", "TreeSatAI-TS")  # fmt: skip
    assert code == 0, out + err
    assert "PASSED" in out and "FAIL " not in out
    # the chain of both seeds: metrics -> finetune -> probe -> pretrain, then store and raw data
    for seed in SEEDS:
        assert f"{_finetune(seed)}/metrics.json" in out
        assert f"results/pretrain/treesatai_ts/{CELL}/seed~{seed}/model.pt" in out
    assert out.count("sha256 recorded by the finetune job (inputs.init)") == 2
    assert "value = mean of its 2 metrics file(s)" in out
    assert "4 files re-hashed, all match maestro_manifest.json" in out
    assert "content hash recorded by the pretrain job" in out
    assert "raw (demo)" in out and "'seed': 0" in out  # the generator's settings


def test_rows_are_audited_from_the_files_the_table_lists(run, capsys):
    """Table 1 beside a transfer run on the same dataset, and its floor rows (no model)."""
    import pandas as pd

    table = pd.read_csv("results/tables/table1.csv")
    maestro = table[table["Model"] == "MAESTRO"].iloc[0]
    assert maestro["files"].split() == [f"{_finetune(s)}/metrics.json" for s in SEEDS]
    code, out, err = _audit(capsys, "--table", "table1", "--row", "0", "--dataset", "treesatai_ts")
    assert code == 0, out + err
    assert "from~pastis_hd" not in out  # the transfer run is Table 2's
    code, out, err = _audit(capsys, "--table", "table1", "--row", "Model=Trivial predictor",
                            "--dataset", "treesatai_ts")  # fmt: skip
    assert code == 0, out + err
    assert "value = mean of its 1 metrics file(s)" in out and "model.pt missing" not in out
    code, out, err = _audit(capsys, "--table", "table2", "--row", "0", "--dataset", "treesatai_ts")
    assert code == 0, out + err
    assert "from~pastis_hd" in out
    # a table written before it listed its files: rebuilt from the run's files, as before
    table.drop(columns="files").to_csv("results/tables/table1.csv", index=False)
    code, out, err = _audit(capsys, "--table", "table1", "--row", "Model=MAESTRO",
                            "--dataset", "treesatai_ts")  # fmt: skip
    assert code == 0, out + err
    assert "value = mean of its 2 metrics file(s)" in out


def test_audit_json_and_selection_by_stage(run, capsys):
    code, out, _ = _audit(capsys, "--stage", "finetune", "--dataset", "treesatai_ts",
                          "--cell", CELL, "--seed", "1", "--json")  # fmt: skip
    assert code == 0
    report = json.loads(out)
    assert report["ok"] and report["failures"] == 0
    kinds = [link["kind"] for link in report["chains"][0]]
    assert kinds == ["metrics", "finetune", "probe", "pretrain"]
    pre = report["chains"][0][-1]["info"]
    assert pre["seed"] == 1 and len(pre["config_hash"]) == 64
    assert pre["sha256"] == provenance.file_sha256(
        f"results/pretrain/treesatai_ts/{CELL}/seed~1/model.pt"
    )
    assert [d["kind"] for d in report["data"]] == ["store", "raw (demo)"]


def test_a_corrupted_checkpoint_fails_naming_the_file(run, capsys):
    ckpt = Path(f"results/pretrain/treesatai_ts/{CELL}/seed~1/model.pt")
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit
    ckpt.write_bytes(bytes(data))
    code, out, err = _audit(capsys, "--table", "table1", "--row", "MAESTRO",
                            "--dataset", "treesatai_ts")  # fmt: skip
    assert code == 1
    assert "AUDIT FAILED: 2 check(s) failed" in err
    assert f"{ckpt}: sha256 recorded by the probe job (inputs.init)" in err
    assert f"{ckpt}: sha256 recorded by its own job (outputs)" in err
    assert "FAILED: " in out


def test_the_last_checkpoint_of_a_chain_is_checked_against_its_own_record(run, capsys):
    ckpt = Path(_finetune(0)) / "model.pt"
    ckpt.write_bytes(ckpt.read_bytes() + b"\0")
    code, _, err = _audit(capsys, "--stage", "finetune", "--dataset", "treesatai_ts",
                          "--cell", CELL, "--seed", "0")  # fmt: skip
    assert code == 1
    assert f"{ckpt}: sha256 recorded by its own job (outputs)" in err


def test_edited_metrics_and_store_files_fail(run, capsys):
    m = Path(f"{_finetune(0)}/metrics.json")
    data = json.loads(m.read_text())
    data["test"]["weighted_f1"] = 0.99
    m.write_text(json.dumps(data))
    chunk = Path("results/data/treesatai_ts.zarr/s2/c/1")
    chunk.write_bytes(b"\0" + chunk.read_bytes()[1:])
    code, _, err = _audit(capsys, "--table", "table1", "--row", "Model=MAESTRO",
                          "--dataset", "treesatai_ts", "--json")  # fmt: skip
    assert code == 1
    assert f"{m}: equals the metrics in provenance.json" in err
    assert "results/tables/table1.csv: value = mean of its 2 metrics file(s)" in err
    assert "results/data/treesatai_ts.zarr: manifest: changed: s2/c/1" in err
    # --quick trusts the store manifest (no data file is re-hashed)
    code, _, err = _audit(capsys, "--metrics", f"{_finetune(1)}/metrics.json", "--quick")
    assert code == 0, err


def test_missing_upstream_provenance_fails(run):
    Path(f"results/probe/treesatai_ts/{CELL}/seed~0/provenance.json").unlink()
    report = audit(".", [f"{_finetune(0)}/metrics.json"])
    assert [c.what for c in report.failures] == ["provenance.json missing"]


def test_row_selection():
    import pandas as pd

    df = pd.DataFrame(
        {"Model": ["MAESTRO", "MAESTRO", "ViT"], "Size": ["Tiny", "Base", "Tiny"],
         "dataset": ["d"] * 3}
    )  # fmt: skip
    assert select_row(df, ["ViT"]) == ("ViT", "Tiny")
    assert select_row(df, ["MAESTRO", "Size=Base"]) == ("MAESTRO", "Base")
    assert select_row(df, ["1"]) == ("MAESTRO", "Base")
    with pytest.raises(ValueError, match="matches 2 rows") as err:
        select_row(df, ["MAESTRO"])
    assert "0: MAESTRO / Tiny" in str(err.value)


def test_download_record_is_rehashed(tmp_path):
    root = tmp_path / "data" / "raw" / "x"
    root.mkdir(parents=True)
    (root / "a.h5").write_bytes(b"abc")
    files = {
        "a.h5": {"target": "a.h5", "sha256": provenance.file_sha256(root / "a.h5")},
        "aerial": {"target": "aerial", "sha256": "f" * 64, "extracted": {"files": 2}},
    }
    (root / "download_manifest.json").write_text(json.dumps({"files": files}))
    link = Auditor(tmp_path, {"sources": {"x": {"kind": "download"}}}).raw("x")
    assert [c.ok for c in link.checks] == [True, None]  # the archive cannot be re-hashed
    as_path = {"sources": {"x": {"kind": "path", "root": str(root)}}}  # a downloaded root
    assert [c.ok for c in Auditor(tmp_path, as_path).raw("x").checks] == [True, None]
    (root / "a.h5").write_bytes(b"abd")
    link = Auditor(tmp_path).raw("x")  # found by its record without a config
    assert link.checks[0].ok is False and link.checks[0].path == str(root / "a.h5")


def test_a_cell_of_mixed_runs_or_missing_seeds_fails(run, capsys):
    """Files whose hashes agree may still not belong together: a seed of another
    configuration, another dataset's run under the cell's path, a seed the configured run
    has but the table lacks. Each fails the audit, naming what disagrees."""
    args = ("--table", "table1", "--row", "MAESTRO", "--dataset", "TreeSatAI-TS")
    seed1 = Path(_finetune(1))
    rec = json.loads((seed1 / "provenance.json").read_text())
    rec["config"]["job"]["phase"]["epochs"] = 50  # a stale run of another configuration
    (seed1 / "provenance.json").write_text(json.dumps(rec))
    code, out, _ = _audit(capsys, *args)
    assert code != 0 and "seeds recorded with other configurations than the first" in out
    rec["config"]["job"]["phase"]["epochs"] = 1
    (seed1 / "provenance.json").write_text(json.dumps(rec))
    write_all([f"{_finetune(0)}/metrics.json"], REF, "results/tables")  # seed 0 only
    code, out, _ = _audit(capsys, *args)
    assert code != 0 and "FAIL its seeds are the configured run's: recorded 0 1, found 0" in out
