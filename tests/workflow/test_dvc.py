"""DVC round trip on a copy of the project: repro, push, fresh clone, pull, sync, audit.

After `dvc pull` the restored files have new modification times in no particular order;
`maestro dvc-sync` must leave a dry run with nothing to do, and the audit of a table cell
must pass in the clone (its hashes are checked against provenance.json and dvc.lock).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import REPO
from .test_end_to_end import tiny_config

BIN = Path(sys.executable).parent
ENV = os.environ | {
    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # snakemake, maestro, dvc
    "DVC_NO_ANALYTICS": "1",
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org",
}  # fmt: skip
CELL = (
    "fusion~group_inter~1_spectral~joint_norm~patchgroup_groups~spec_size~tiny_length~1_dates~all"
)


def sh(cwd: Path, *cmd: str, ok: bool = True, timeout: int = 900) -> str:
    res = subprocess.run(
        cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout, check=False
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0 or not ok, f"{' '.join(cmd)} failed:\n{out[-4000:]}"
    return out


def project_copy(dest: Path, tmp_path: Path) -> None:
    """The working tree (tracked and new files, nothing ignored), with the tiny config."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not rel.startswith((".dvc/", "tests/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    cfg = tiny_config(tmp_path)
    shutil.copy(cfg["variants"], dest / "config" / "variants.tsv")
    cfg["variants"] = "config/variants.tsv"
    (dest / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))


@pytest.mark.slow
def test_push_clone_pull_sync_audit(tmp_path):
    repo, clone, remote = tmp_path / "repo", tmp_path / "clone", tmp_path / "remote"
    project_copy(repo, tmp_path)
    sh(repo, "git", "init", "-q")
    sh(repo, "dvc", "init", "-q")
    sh(repo, "dvc", "config", "core.analytics", "false")
    sh(repo, "dvc", "remote", "add", "-d", "local", str(remote))
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "project")

    # every phase through DVC (each stage runs its snakemake phase target), then push
    out = sh(repo, "dvc", "repro")
    for stage in ("raw", "data", "analysis", "pretrain", "finetune", "tables"):
        assert f"Running stage '{stage}'" in out
    assert "Nothing to be done" in sh(repo, "snakemake", "--profile", "profiles/local", "-n")
    shown = json.loads(sh(repo, "dvc", "metrics", "show", "--json"))
    summary = shown[""]["data"]["results/tables/summary.json"]["data"]
    assert any(row.startswith("MAESTRO / ") for row in summary["table1"])
    sh(repo, "git", "add", "dvc.lock")
    sh(repo, "git", "commit", "-qm", "results")
    sh(repo, "dvc", "push")

    # a fresh clone gets the results from the remote, then reconciles Snakemake's view
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    sh(clone, "dvc", "pull")
    assert (clone / f"results/finetune/treesatai_ts/{CELL}/seed~0/model.pt").is_file()
    out = sh(clone, "maestro", "dvc-sync")
    assert "Nothing to be done" in out
    dry = sh(clone, "snakemake", "--profile", "profiles/local", "--configfile",
             "config/config.yaml", "-n", "--", "all")  # fmt: skip
    assert "Nothing to be done" in dry and "Job stats" not in dry
    assert "up to date" in sh(clone, "dvc", "status")

    # the audit of a Table 1 cell passes in the clone, and fails once a checkpoint changes
    audit = ["maestro", "audit", "--table", "table1", "--row", "MAESTRO", "--dataset",
             "treesatai_ts"]  # fmt: skip
    out = sh(clone, *audit)
    assert "PASSED" in out and "pinned by dvc.lock stage pretrain" in out
    ckpt = clone / f"results/pretrain/treesatai_ts/{CELL}/seed~0/model.pt"
    data = bytearray(ckpt.read_bytes())
    data[-100] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    out = sh(clone, *audit, ok=False)
    assert "AUDIT FAILED" in out and f"{ckpt.relative_to(clone)}: sha256 recorded" in out
