"""Raw input features of a split, for the reference rows that need no encoder.

Items come from :class:`~maestro.data.torch_dataset.MaestroDataset` in evaluation mode
(deterministic crops and date choice), in item order, so the features of the test split line
up with the items every model is tested on (and with their bootstrap draws).

- **Classification** (one vector per item): for every input modality, date and band, the mean
  and the standard deviation over the crop's pixels: ``F = sum_m 2 * T_m * C_m``.
- **Segmentation** (one vector per label pixel): every modality's ``T_m * C_m`` channels
  resampled to the label grid (area mean when the modality is finer, nearest when coarser),
  stacked: ``F = sum_m T_m * C_m``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from maestro.data.torch_dataset import MaestroDataset


@dataclass
class SplitFeatures:
    """Features and labels of one split.

    Attributes:
        x: ``(N, F)`` per item (classification) or ``(N, F, h, w)`` per pixel (segmentation).
        y: ``(N, K)`` multi-hot, or ``(N, h, w)`` class ids with -1 = ignore.
        names: ``F`` feature names (``modality:date:band:stat``).
    """

    x: np.ndarray
    y: np.ndarray
    names: list[str]
    tiles: np.ndarray | None = None  # (N,) the tile of each item (bootstrap draws tiles)


def _resample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(C, H, W) -> (C, h, w)``: area mean when shrinking, nearest when enlarging."""
    if tuple(x.shape[-2:]) == size:
        return x
    mode = "area" if x.shape[-1] >= size[-1] else "nearest"
    return F.interpolate(x[None], size=size, mode=mode)[0]


def item_features(
    item: dict, modalities: Iterable[str], kind: str, dates: int | None = None
) -> tuple[np.ndarray, list[str]]:
    """Features of one dataset item (see the module docstring) and their names.

    ``dates`` keeps only the first that many dates of every modality (single-date baselines).
    """
    parts, names = [], []
    label_hw = tuple(item["label"].shape[-2:]) if kind == "segmentation" else None
    for m in modalities:
        x = item["inputs"][m].float()  # [T, C, H, W]
        if dates is not None:
            x = x[:dates]
        t, c = x.shape[:2]
        tags = [f"{m}:{i}:{j}" for i in range(t) for j in range(c)]
        flat = x.reshape(t * c, *x.shape[2:])  # [T*C, H, W]
        if kind == "segmentation":
            parts.append(_resample(flat, label_hw).numpy())
            names += tags
        else:
            parts.append(torch.cat([flat.mean((-2, -1)), flat.std((-2, -1))]).numpy())
            names += [f"{s}:mean" for s in tags] + [f"{s}:std" for s in tags]
    return np.concatenate(parts, axis=0).astype(np.float32), names


def split_features(
    ds: MaestroDataset, kind: str, dates: int | None = None, limit: int | None = None
) -> SplitFeatures:
    """Features of every item of ``ds`` (an evaluation-mode dataset), in item order."""
    if ds.train:
        raise ValueError("split_features needs an evaluation-mode dataset (train=False)")
    if len(ds) == 0:
        raise ValueError(f"{ds.store_path}: split {ds.splits} of {ds.dataset.name} is empty")
    xs, ys, names, tiles = [], [], [], []
    modalities = [m.name for m in ds.dataset.modalities]
    for k in range(len(ds) if limit is None else min(limit, len(ds))):
        item = ds[k]
        x, names = item_features(item, modalities, kind, dates)
        xs.append(x)
        ys.append(item["label"].numpy())
        tiles.append(int(item["tile"]))
    return SplitFeatures(np.stack(xs), np.stack(ys), names, np.asarray(tiles, np.int64))
