"""From a job's configuration (the JSON a workflow rule passes) to the package's objects.

A job configuration is a dict with some of the sections of ``config/config.yaml``:
``overrides`` (store geometry), ``model`` (size + field overrides), ``cell`` (one row of the
ablation sheet), ``phase`` (one of pretrain / probe / finetune) and ``runtime``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maestro.datasets import Catalog, catalog
from maestro.model.config import MAEConfig, build_config
from maestro.train.config import PhaseConfig, phase_config

#: Columns of the ablation sheet (config/variants.tsv) and their allowed values.
CELL_VALUES: dict[str, tuple[str, ...]] = {
    "fusion": ("shared", "monotemp", "mod", "group"),
    "spectral": ("joint", "token"),
    "norm": ("none", "patch", "patchgroup"),
    "groups": ("spec", "analysis"),
}
CELL_COLUMNS = ("fusion", "inter", "spectral", "norm", "groups")
_TARGET_NORM = {"none": "none", "patch": "patch", "patchgroup": "patch_group"}


def check_cell(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one ablation row; returns it with ``inter`` as int."""
    missing = [c for c in CELL_COLUMNS if c not in cell]
    if missing:
        raise ValueError(f"ablation cell {dict(cell)} lacks columns {missing}")
    out = {c: cell[c] for c in CELL_COLUMNS}
    for col, allowed in CELL_VALUES.items():
        if str(out[col]) not in allowed:
            raise ValueError(f"ablation cell: {col}={out[col]!r} is not one of {allowed}")
    out["inter"] = int(out["inter"])
    return out


def cell_model_changes(cell: Mapping[str, Any]) -> dict[str, Any]:
    """The MAEConfig fields an ablation cell sets."""
    c = check_cell(cell)
    return {
        "fusion": c["fusion"],
        "inter_depth": c["inter"],
        "spectral": c["spectral"],
        "target_norm": _TARGET_NORM[c["norm"]],
    }


def fusion_label(cell: Mapping[str, Any]) -> str:
    """The paper's name of a cell's fusion mode ("group", "inter-group", "shared", ...)."""
    c = check_cell(cell)
    return f"inter-{c['fusion']}" if c["inter"] else str(c["fusion"])


def model_config(job: Mapping[str, Any]) -> MAEConfig:
    """Size preset + ``model`` overrides + the ``cell``'s variant fields."""
    section = dict(job.get("model") or {})
    size = section.pop("size", "tiny")
    cell = job.get("cell")
    changes = cell_model_changes(cell) if cell else {}
    return build_config(size, **{**section, **changes})


def job_catalog(job: Mapping[str, Any]) -> Catalog:
    """Stores and datasets with the job's overrides."""
    return catalog(job.get("overrides") or {})


def job_phase(name: str, job: Mapping[str, Any]) -> PhaseConfig:
    """Paper defaults of a phase with the job's ``phase`` overrides."""
    return phase_config(name, job.get("phase") or {})
