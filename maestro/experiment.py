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

#: Columns that identify an ablation cell (its path) and their allowed values. ``inter`` is
#: the number of shared inter-group blocks, ``length`` the pretraining length multiplier
#: (2 = the paper's MAESTRO†), ``dates`` the dates fed per temporal modality (``all`` = the
#: dataset's ``num_dates``; a number caps every temporal modality at it, e.g. 1 = the
#: single-date ablation of multitemporal fusion).
CELL_VALUES: dict[str, tuple[str, ...]] = {
    "fusion": ("shared", "monotemp", "mod", "group"),
    "spectral": ("joint", "token"),
    "norm": ("none", "patch", "patchgroup"),
    "groups": ("spec", "analysis"),
    "size": ("tiny", "small", "base", "large"),
    "length": ("1", "2"),
}
CELL_COLUMNS = ("fusion", "inter", "spectral", "norm", "groups", "size", "length", "dates")
#: Identity columns a sheet may leave out, and their value then.
CELL_DEFAULTS = {"dates": "all"}
#: Scheduling columns of the sheet (not part of a cell's identity or path): ``seeds`` is
#: ``all`` (the config's ``seeds``) or ``+``-joined seeds (e.g. ``0`` for a one-seed cell).
SCHEDULE_COLUMNS = ("scratch", "datasets", "seeds")
SCHEDULE_DEFAULTS = {"seeds": "all"}
_TARGET_NORM = {"none": "none", "patch": "patch", "patchgroup": "patch_group"}


def check_cell(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one ablation row; returns it with ``inter`` as int (defaults filled in)."""
    cell = {**CELL_DEFAULTS, **cell}
    missing = [c for c in CELL_COLUMNS if c not in cell]
    if missing:
        raise ValueError(f"ablation cell {dict(cell)} lacks columns {missing}")
    out = {c: str(cell[c]) for c in CELL_COLUMNS}
    for col, allowed in CELL_VALUES.items():
        if out[col] not in allowed:
            raise ValueError(f"ablation cell: {col}={out[col]!r} is not one of {allowed}")
    if not out["inter"].isdigit():
        raise ValueError(f"ablation cell: inter={out['inter']!r} is not a whole number")
    out["inter"] = int(out["inter"])
    if out["groups"] == "analysis" and out["norm"] != "patchgroup" and out["spectral"] != "token":
        # the groups shape only the patch-group targets and the spectral tokens: this cell
        # would be the groups=spec run under another name
        raise ValueError(
            f"ablation cell: groups=analysis has no effect with norm={out['norm']} and "
            "spectral=joint (it needs norm=patchgroup or spectral=token)"
        )
    if out["dates"] != "all" and not (out["dates"].isdigit() and int(out["dates"]) > 0):
        raise ValueError(f"ablation cell: dates={out['dates']!r} is neither 'all' nor a count > 0")
    if out["dates"] != "all":
        out["dates"] = str(int(out["dates"]))  # '01' and '1' are one cell, not two
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
    """Size preset (the cell's, else ``model.size``) + ``model`` overrides + the cell's fields."""
    section = dict(job.get("model") or {})
    size = section.pop("size", "tiny")
    cell = job.get("cell")
    if cell and "size" in cell:
        size = str(cell["size"])
    changes = cell_model_changes(cell) if cell else {}
    return build_config(size, **{**section, **changes})


def job_catalog(job: Mapping[str, Any]) -> Catalog:
    """Stores and datasets with the job's overrides, and its cell's ``dates`` cap applied to
    every temporal modality."""
    overrides = dict(job.get("overrides") or {})
    cat = catalog(overrides)
    dates = str((job.get("cell") or {}).get("dates", "all"))
    if dates == "all":
        return cat
    for name, store in cat.stores.items():
        mods = dict((overrides.get(name) or {}).get("modalities") or {})
        for m in store.modalities:
            if m.temporal:
                mods[m.name] = dict(mods.get(m.name) or {}) | {
                    "num_dates": min(int(dates), m.num_dates)
                }
        overrides[name] = dict(overrides.get(name) or {}) | {"modalities": mods}
    return catalog(overrides)


def job_phase(name: str, job: Mapping[str, Any]) -> PhaseConfig:
    """Paper defaults of a phase with the job's ``phase`` overrides; a cell's ``length``
    multiplies the pretraining epochs (MAESTRO† pretrains twice as long)."""
    phase = phase_config(name, job.get("phase") or {})
    length = int((job.get("cell") or {}).get("length", 1))
    if name == "pretrain" and length != 1:
        phase = phase.replace(epochs=phase.epochs * length)
    return phase
