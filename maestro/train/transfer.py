"""Fitting a pretrained MAE's weights into a model built for another dataset or geometry.

A model pretrained on one dataset is probed and fine-tuned on others (Table 2). Tensors with
the same name and shape carry over; a tokenizer whose patch size differs (S2-NAIP's 2-px S2
patches on PASTIS-HD's 4-px ones) is resampled so that it computes on the resized patch what
it computed on the original one (the pseudo-inverse resize of FlexiViT, Beyer et al., CVPR
2023); everything else stays at its initialisation and is reported. A checkpoint of which no
Transformer weight fits is an error, not a random-init encoder under a "pretrained" label
(docs/decisions.md T17).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from maestro.datasets.spec import DatasetSpec
from maestro.model import MAEConfig

#: Parts of the MAE that the downstream model keeps (the decoder side is dropped).
ENCODER_PREFIXES = ("patchify.", "encoders.", "inter.")
#: Parts that hold the Transformer blocks: at least one of their tensors must fit.
BODY_PREFIXES = ("encoders.", "inter.")
_KERNEL = re.compile(r"patchify\.[^.]+\.proj\.\d+\.weight")


def resample_kernel(weight: torch.Tensor, patch: int) -> torch.Tensor:
    """A patch-embedding kernel ``(D, C, p, p)`` resampled to ``(D, C, patch, patch)``.

    With ``B`` the bilinear resize of a ``p x p`` patch to ``patch x patch`` (row ``i`` the
    resized basis patch ``e_i``), the new kernel solves ``B w' = w`` in the least-squares
    sense: for an upsampling (``patch > p``) ``<resize(x), w'> = <x, w>`` for every patch
    ``x`` exactly, for a downsampling as closely as the coarser grid allows.
    """
    d, c, p, q = weight.shape
    if p != q:
        raise ValueError(f"expected a square kernel, found shape {tuple(weight.shape)}")
    basis = torch.eye(p * p, dtype=torch.float64).reshape(p * p, 1, p, p)
    resized = F.interpolate(
        basis, size=(patch, patch), mode="bilinear", align_corners=False, antialias=patch < p
    ).reshape(p * p, patch * patch)  # B: [p*p, patch*patch]
    w = weight.detach().to(torch.float64).reshape(d * c, p * p).T  # [p*p, D*C]
    new = torch.linalg.pinv(resized) @ w  # [patch*patch, D*C]
    return new.T.reshape(d, c, patch, patch).to(weight.dtype)


def fit_state_dict(
    source: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor], path: str | Path
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors of ``source`` that fit the model whose state dict is ``own``, and a report.

    Returns ``(loadable, report)``; ``report`` holds the loaded and total tensor counts, the
    share of the encoder's parameters loaded, the resampled kernels and the modules left at
    initialisation (the first two name components).

    Raises:
        ValueError: no tensor of the Transformer blocks fits (another architecture, or names
            with a prefix such as ``module.``): the file, an expected and a found name.
    """
    loadable, resampled = {}, []
    for k, v in source.items():
        if k not in own:
            continue
        if own[k].shape == v.shape:
            loadable[k] = v
        elif _KERNEL.fullmatch(k) and v.ndim == 4 and own[k].shape[:2] == v.shape[:2]:
            loadable[k] = resample_kernel(v, own[k].shape[-1])
            resampled.append(f"{k} {v.shape[-1]} -> {own[k].shape[-1]} px")
    body = [k for k in own if k.startswith(BODY_PREFIXES)]
    if body and not any(k in loadable for k in body):
        found = next(iter(source), "none")
        raise ValueError(
            f"{path}: none of its {len(source)} tensors fits the Transformer blocks of this "
            f"model (expected e.g. {body[0]!r} of shape {tuple(own[body[0]].shape)}, found "
            f"e.g. {found!r}): a checkpoint of another architecture, or with a name prefix?"
        )
    encoder = [k for k in own if k.startswith(ENCODER_PREFIXES)]
    total = sum(own[k].numel() for k in encoder)
    loaded = sum(own[k].numel() for k in encoder if k in loadable)
    missing = [k for k in own if k not in loadable]
    report = {
        "tensors_loaded": len(loadable),
        "tensors": len(own),
        "encoder_params_loaded": round(loaded / total, 4) if total else 1.0,
        "resampled": resampled,
        "left_at_init": modules([k for k in missing if k.startswith(ENCODER_PREFIXES)]),
    }
    return loadable, report


def modules(keys: list[str]) -> list[str]:
    """Tensor names summarized by module (first two name components), in order."""
    return list(dict.fromkeys(".".join(k.split(".")[:2]) for k in keys))


def check_finite(state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Refuse weights with NaN or infinite values (a diverged run), naming the tensors.

    Raises:
        ValueError: the file, how many tensors are not finite and the first names.
    """
    bad = [
        k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())
    ]
    if bad:
        raise ValueError(
            f"{path}: expected finite weights, found NaN or inf in {len(bad)} of {len(state)} "
            f"tensors (e.g. {', '.join(bad[:3])}): the run that wrote it diverged"
        )


#: MAEConfig fields of the encoder: a checkpoint must have the job's (the tables label the
#: run with the job's settings).
ENCODER_FIELDS = (
    "embed_dim", "depth", "heads", "dim_head", "mlp_dim", "fusion", "inter_depth", "spectral",
    "date_dim", "use_date_enc",
)  # fmt: skip


def check_init_labels(
    init: str | Path,
    rec: dict[str, Any],
    dataset: DatasetSpec,
    model_cfg: MAEConfig | None,
    meta: dict[str, Any],
) -> None:
    """The labels a run is reported under must describe its init checkpoint: the job's
    encoder settings, and for a pretrained MAE its source dataset (``transfer_from``, else
    the target itself). A released checkpoint sets its own architecture (not checked); a
    probe result was checked when it was trained. Docs: T19.

    Raises:
        ValueError: the checkpoint, the fields (job, checkpoint) or both datasets.
    """
    if meta.get("released"):
        return
    cfg = rec["model_cfg"]
    if model_cfg is not None:
        diff = {
            f: (getattr(model_cfg, f), getattr(cfg, f))
            for f in ENCODER_FIELDS
            if getattr(model_cfg, f) != getattr(cfg, f)
        }
        if diff:
            raise ValueError(
                f"{init}: expected an encoder with the job's settings, found (job, checkpoint) "
                f"{diff}: the tables would label this run with the job's"
            )
    source = meta.get("transfer_from") or dataset.name
    if rec.get("pretrained_on") and rec["pretrained_on"] != source:
        raise ValueError(
            f"{init}: expected a model pretrained on {source!r}, found one of "
            f"{rec['pretrained_on']!r} (a cross-dataset run is declared under transfer)"
        )
