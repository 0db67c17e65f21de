"""Helpers to run the real snakemake CLI on a config in a scratch working directory."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml

from maestro.provenance.dvc_sync import pending_jobs

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "workflow" / "Snakefile"


def demo_config() -> dict:
    """The shipped demo configuration, with the variants sheet as an absolute path."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["variants"] = str(REPO / "config" / "variants.tsv")
    cfg["baselines"] = str(REPO / "config" / "baselines.tsv")
    return cfg


def snakemake(
    workdir: Path, cfg: dict, *args: str, timeout: int = 900
) -> subprocess.CompletedProcess:
    """Run ``snakemake`` on ``cfg`` in ``workdir`` (the repo is never written)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg_file = workdir / "config.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
        "--directory", str(workdir), "--configfile", str(cfg_file),
        "--cores", "2", "--resources=gpu=1", *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def job_counts(out: str) -> Counter:
    """Jobs per rule from the "Job stats" table snakemake prints (empty when nothing to do)."""
    return Counter(pending_jobs(out))
