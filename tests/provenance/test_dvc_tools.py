"""dvc.yaml, the DVC records the audit reads, dvc-sync's parsing and the metrics summary."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import yaml

from maestro.provenance.audit import Auditor, ignored
from maestro.provenance.dvc_sync import pending_jobs, snakemake_command
from maestro.provenance.dvcio import DvcRecords, cache_dir, dvc_vars
from maestro.report.dvc_metrics import summary, write_summary

REPO = Path(__file__).resolve().parents[2]


def test_dvc_yaml_runs_every_phase_with_persisted_outputs():
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    stages = spec["stages"]
    assert list(stages) == ["raw", "data", "analysis", "pretrain", "finetune", "tables"]
    for name, stage in stages.items():
        assert "--profile ${profile} --configfile ${configfile}" in stage["cmd"], name
        for out in stage["outs"]:
            ((path, opts),) = out.items()
            assert opts["persist"] is True, (name, path)  # DVC never deletes finished cells
    for phase in ("data", "analysis", "pretrain", "finetune", "tables"):
        assert stages[phase]["cmd"].split(" -- ")[1].split()[0] == phase
    assert spec["metrics"] == ["results/tables/summary.json"]
    assert dvc_vars(REPO) == {"profile": "profiles/local", "configfile": "config/config.yaml"}
    cmd = snakemake_command(REPO)
    assert cmd[1:] == ["-m", "snakemake", "--profile", "profiles/local",
                       "--configfile", "config/config.yaml"]  # fmt: skip


def test_dvcignore_matches_the_audit():
    patterns = [ln for ln in (REPO / ".dvcignore").read_text().splitlines() if ln and ln[0] != "#"]
    assert ".snakemake_timestamp" in patterns and ".work/" in patterns
    skipped = ["a/.snakemake_timestamp", "m/.work/last.pt", "r/.download/verified/x.json"]
    skipped += ["s.zarr.partial/0", "x.h5.part", "x.h5.corrupt", "t/.table1.csv.tmp-12"]
    for rel in skipped:
        assert ignored(rel), rel
    for rel in ("a/model.pt", "s.zarr/zarr.json", "r/download_manifest.json"):
        assert not ignored(rel), rel


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _locked_dir(root: Path, files: dict[str, bytes]) -> None:
    """results/pretrain as a DVC 3 directory output: dvc.lock + the .dir object in the cache."""
    for rel, data in files.items():
        (root / "results/pretrain" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "results/pretrain" / rel).write_bytes(data)
    listing = [{"md5": _md5(d), "relpath": r} for r, d in sorted(files.items())]
    text = json.dumps(listing).encode()
    md5 = _md5(text)
    obj = root / ".dvc/cache/files/md5" / md5[:2] / f"{md5[2:]}.dir"
    obj.parent.mkdir(parents=True)
    obj.write_bytes(text)
    lock = {"schema": "2.0", "stages": {"pretrain": {"cmd": "x", "outs": [
        {"path": "results/pretrain", "hash": "md5", "md5": f"{md5}.dir", "nfiles": len(files)},
    ]}}}  # fmt: skip
    (root / "dvc.lock").write_text(yaml.safe_dump(lock))


def test_records_of_a_directory_output(tmp_path):
    _locked_dir(tmp_path, {"d/c/seed~0/model.pt": b"w0", "d/c/seed~0/metrics.json": b"{}"})
    rec = DvcRecords(tmp_path)
    out, md5 = rec.recorded_md5("results/pretrain/d/c/seed~0/model.pt")
    assert out.stage == "pretrain" and out.is_dir and md5 == _md5(b"w0")
    assert rec.recorded_md5("results/finetune/x")[0] is None
    assert rec.recorded_tree(tmp_path / "results/pretrain/d/c") == {
        "seed~0/model.pt": _md5(b"w0"),
        "seed~0/metrics.json": _md5(b"{}"),
    }
    folder = tmp_path / "results/pretrain/d/c/seed~0"
    auditor = Auditor(tmp_path)
    assert [c.ok for c in auditor.dvc_tree(folder)] == [True]
    (folder / ".snakemake_timestamp").write_text("")  # ignored, like .dvcignore says
    (folder / "model.pt").write_bytes(b"w1")
    (folder / "extra.csv").write_text("x")
    checks = Auditor(tmp_path).dvc_tree(folder)
    assert sorted((Path(c.path).name, c.ok) for c in checks) == [
        ("extra.csv", False),
        ("model.pt", False),
    ]


def test_cache_dir_from_the_config(tmp_path):
    assert cache_dir(tmp_path) == tmp_path / ".dvc" / "cache"
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc/config").write_text("[core]\n    remote = r\n[cache]\n    dir = ../c1\n")
    assert cache_dir(tmp_path) == (tmp_path / "c1").resolve()
    (tmp_path / ".dvc/config.local").write_text("[cache]\n    dir = /scratch/dvc\n")
    assert cache_dir(tmp_path) == Path("/scratch/dvc")


def test_pending_jobs_of_a_dry_run():
    assert pending_jobs("Building DAG of jobs...\nNothing to be done (all requested files)") == {}
    out = "Job stats:\njob    count\n-----  -----\nprobe      2\nall        1\ntotal      3\n"
    assert pending_jobs(out) == {"probe": 2, "all": 1}


def test_metrics_summary(tmp_path):
    pd.DataFrame(
        {"Model": ["MAESTRO", "MAESTRO"], "Size": ["Tiny", "Tiny"], "dataset": ["a", "b"],
         "title": ["A", "B"], "metric": ["wF1"] * 2, "mean": [55.123456, float("nan")],
         "std": [0.0, 0.0], "n_seeds": [2, 1], "seeds": ["0 1", "0"]}
    ).to_csv(tmp_path / "table1.csv", index=False)  # fmt: skip
    expected = {"table1": {"MAESTRO / Tiny": {"a": 55.1235, "b": None, "n_seeds": 1}}}
    assert summary(tmp_path) == expected
    out = tmp_path / "summary.json"
    write_summary(tmp_path, out)
    mtime = out.stat().st_mtime_ns
    write_summary(tmp_path, out)  # unchanged: not rewritten
    assert json.loads(out.read_text()) == expected and out.stat().st_mtime_ns == mtime


def test_stages_depend_on_the_config_they_read_not_the_whole_folder():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        assert "config" not in stage["deps"], name  # one edit would dirty every stage
        for dep in stage["deps"]:  # code and configuration exist in a clone
            if not dep.startswith(("results/", "data/")):
                assert (REPO / dep).exists(), (name, dep)
    sections = {
        n: set(s.get("params", [{}])[0].get("${configfile}", [])) for n, s in stages.items()
    }
    assert "model" not in sections["data"] and "pretrain" not in sections["finetune"]
    assert {"probe", "finetune", "scratch"} <= sections["finetune"]


def test_plots_are_the_pipelines_figures():
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    plots = spec["plots"]
    assert all(isinstance(p, str) and p.endswith(".png") for p in plots)
    assert "results/figures/table1.png" in plots
