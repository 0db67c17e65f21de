"""Build models from declarations, and save/load them with what is needed to rebuild them."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from maestro.datasets.spec import DatasetSpec
from maestro.model import MAESTRO, DownstreamModel, MAEConfig
from maestro.model.fusion import BandGroups
from maestro.train import checkpoint
from maestro.train.transfer import check_finite, fit_state_dict

log = logging.getLogger(__name__)


def build_mae(
    cfg: MAEConfig, dataset: DatasetSpec, norm_groups: Mapping[str, BandGroups] | None = None
) -> MAESTRO:
    """A MAESTRO model for the inputs and crop geometry of ``dataset``."""
    store = dataset.store
    return MAESTRO(cfg, dataset.modalities, store.crop_m, store.grid_pos_enc, norm_groups)


def label_px(dataset: DatasetSpec) -> int | None:
    """Label pixels per crop side (segmentation), None for classification."""
    if dataset.task.kind != "segmentation":
        return None
    store = dataset.store
    return store.modality(store.label.grid_modality).pixels(store.crop_m)


def model_record(
    model: torch.nn.Module,
    kind: str,
    cfg: MAEConfig,
    dataset: DatasetSpec,
    norm_groups: Mapping[str, BandGroups] | None,
) -> dict[str, Any]:
    """The payload of a ``model.pt``: weights plus everything needed to rebuild the model."""
    return {
        "kind": kind,  # "mae" (pretrained) or "downstream" (encoder + head)
        "model_cfg": dataclasses.asdict(cfg),
        "dataset": dataset.name,
        "inputs": list(dataset.inputs),
        "norm_groups": {k: [list(g) for g in v] for k, v in (norm_groups or {}).items()},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def _norm_groups(record: dict[str, Any]) -> dict[str, BandGroups]:
    return {k: tuple(tuple(g) for g in v) for k, v in record.get("norm_groups", {}).items()}


def load_mae(path: str | Path, dataset: DatasetSpec) -> tuple[MAESTRO, dict[str, Any]]:
    """Rebuild a pretrained model for ``dataset`` and load its weights.

    The architecture comes from the checkpoint, the inputs from ``dataset`` (so a model
    pretrained on one dataset can be loaded for another; parameters that do not exist in the
    new model are reported and skipped, new ones stay freshly initialised).
    """
    record = checkpoint.load(path)
    if record.get("kind") != "mae":
        raise ValueError(
            f"{path}: expected a pretrained MAE checkpoint, found kind {record.get('kind')!r}"
        )
    check_finite(record["state_dict"], path)
    cfg_dict = dict(record["model_cfg"])
    cfg = MAEConfig(**cfg_dict)
    model = build_mae(cfg, dataset, _norm_groups(record))
    own = model.state_dict()
    loadable, report = fit_state_dict(record["state_dict"], own, path)
    skipped = sorted(set(record["state_dict"]) - set(loadable))
    missing = sorted(set(own) - set(loadable))
    model.load_state_dict(loadable, strict=False)
    if report["resampled"]:
        log.warning("%s: patch kernels resampled: %s", path, "; ".join(report["resampled"]))
    if skipped or missing:
        log.warning(
            "%s: %d tensors skipped (%s); %d left at init (%s); %.0f %% of the encoder's "
            "parameters loaded",
            path, len(skipped), _modules(skipped), len(missing), _modules(missing),
            100 * report["encoder_params_loaded"],
        )  # fmt: skip
    record = record | {"init_load": report}
    return model, record


#: MAEConfig fields of the downstream head: chosen by the downstream job, not by pretraining.
HEAD_FIELDS = ("head", "head_heads", "head_norm")


def load_for_downstream(
    path: str | Path, dataset: DatasetSpec, head_cfg: MAEConfig | None = None
) -> tuple[DownstreamModel, dict[str, Any]]:
    """A downstream model from a probe result, or from a pretrained MAE with a new head.

    A new head takes its settings (:data:`HEAD_FIELDS`) from ``head_cfg`` when given (the
    downstream job's model configuration), else from the pretrained model's configuration.
    """
    kind = checkpoint.load(path).get("kind")
    if kind == "downstream":
        return load_downstream(path, dataset)
    mae, record = load_mae(path, dataset)
    if head_cfg is not None:
        heads = {f: getattr(head_cfg, f) for f in HEAD_FIELDS}
        mae.cfg = mae.cfg.replace(**heads)
        record = record | {"model_cfg": dict(record["model_cfg"]) | heads}
    return DownstreamModel(mae, dataset.task, label_px(dataset)), record


def _modules(keys: list[str]) -> str:
    """Tensor names summarized by module (first two name components)."""
    return ", ".join(dict.fromkeys(".".join(k.split(".")[:2]) for k in keys)) or "none"


def load_downstream(
    path: str | Path, dataset: DatasetSpec
) -> tuple[DownstreamModel, dict[str, Any]]:
    """Rebuild an encoder + head model (e.g. the probe result, to fine-tune it)."""
    record = checkpoint.load(path)
    if record.get("kind") != "downstream":
        raise ValueError(
            f"{path}: expected a downstream checkpoint, found kind {record.get('kind')!r}"
        )
    if record["dataset"] != dataset.name:
        raise ValueError(f"{path}: trained on {record['dataset']!r}, not {dataset.name!r}")
    check_finite(record["state_dict"], path)
    cfg = MAEConfig(**record["model_cfg"])
    model = DownstreamModel(
        build_mae(cfg, dataset, _norm_groups(record)), dataset.task, label_px(dataset)
    )
    model.load_state_dict(record["state_dict"])
    return model, record
