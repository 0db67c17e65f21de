"""Provenance records written next to every model output.

A record answers "where does this number come from": code version (git SHA and dirty flag),
the job configuration and its hash, the content hashes of the inputs, package versions, host,
device and wall time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from maestro.store.zarr_store import MANIFEST_NAME, store_hash
from maestro.utils.atomic import write_json

PACKAGES = (
    "maestro-bench",
    "torch",
    "numpy",
    "zarr",
    "einops",
    "rasterio",
    "h5py",
    "pandas",
    "snakemake",
)


def config_hash(config: Any) -> str:
    """SHA-256 of the canonical JSON of a configuration."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def path_hash(path: str | os.PathLike[str]) -> str:
    """Content hash of a file, or of a directory.

    A Zarr store written by the converter carries a manifest whose overall hash is used (cheap);
    any other directory is hashed file by file.
    """
    p = Path(path)
    if p.is_file():
        return file_sha256(p)
    if (p / MANIFEST_NAME).is_file():
        return store_hash(p)
    h = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".snakemake")):
        h.update(f.relative_to(p).as_posix().encode())
        h.update(file_sha256(f).encode())
    return h.hexdigest()


def git_state(start: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Commit SHA and dirty flag of the repository holding ``start`` (the package by default)."""
    where = Path(start) if start else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return {"sha": sha, "dirty": bool(status.strip())}
    except (OSError, subprocess.CalledProcessError):
        return {"sha": None, "dirty": None}


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape the numbers."""
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def record(
    step: str,
    config: Any,
    inputs: Mapping[str, str | os.PathLike[str]],
    started: float,
    device: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the provenance record of one job (``started``: ``time.time()`` at job start)."""
    now = dt.datetime.now(dt.UTC)
    return {
        "step": step,
        "git": git_state(),
        "config": config,
        "config_hash": config_hash(config),
        "inputs": {k: {"path": str(v), "sha256": path_hash(v)} for k, v in inputs.items()},
        "packages": package_versions(),
        "host": {
            "name": platform.node(),
            "platform": platform.platform(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        },
        "device": dict(device or {}),
        "started_at": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(),
        "finished_at": now.isoformat(),
        "wall_time_s": round(now.timestamp() - started, 3),
        **dict(extra or {}),
    }


#: Files of a model folder whose hashes a provenance record keeps (when present).
OUTPUT_FILES = (
    "model.pt", "metrics.json", "history.csv", "reconstruction.npz", "predictions.npz",
)  # fmt: skip


def output_hashes(out_dir: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """``{name: {"sha256": ...}}`` of the job's own outputs in ``out_dir``."""
    folder = Path(out_dir)
    return {
        name: {"sha256": file_sha256(folder / name)}
        for name in OUTPUT_FILES
        if (folder / name).is_file()
    }


def write(path: str | os.PathLike[str], rec: Mapping[str, Any]) -> None:
    """Atomically write a provenance record."""
    write_json(path, dict(rec))
