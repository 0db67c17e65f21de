"""Normalization of reconstruction targets within patches and band groups.

As ``compute_loss_rec`` in IGNF/MAESTRO's ``maestro/train/model.py``.
"""

from __future__ import annotations

import torch

Groups = tuple[tuple[int, ...], ...]


def group_stats(part: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and ``sqrt(var + eps)`` over the last two axes (pixels x group channels).

    The variance is unbiased (divide by n - 1), or divided by n when n == 1.
    """
    n = part.shape[-2] * part.shape[-1]
    mean = part.mean(dim=(-2, -1), keepdim=True)
    var = part.var(dim=(-2, -1), keepdim=True, correction=1 if n > 1 else 0)
    return mean, torch.sqrt(var + eps)


def normalize_patches(x: torch.Tensor, groups: Groups | None, eps: float = 1e-6) -> torch.Tensor:
    """Patch-group-wise normalization of target patches ``(B, T, L, P, C) -> (B, T, L, P, C)``.

    For every (sample, date, patch, group) the ``P`` pixels x ``|group|`` channels are
    standardized jointly: ``(x - mean) / sqrt(var + eps)`` (:func:`group_stats`).
    ``groups=None`` returns ``x`` unchanged (no normalization); a single group of all
    channels is patch-wise normalization.
    """
    if groups is None:
        return x
    if _contiguous(groups, x.shape[-1]):  # slices (views) and one concatenation: no gathers
        parts = []
        for idx in groups:
            part = x[..., idx[0] : idx[-1] + 1]  # [B, T, L, P, g]
            mean, std = group_stats(part, eps)
            parts.append((part - mean) / std)
        return torch.cat(parts, dim=-1)
    out = torch.empty_like(x)
    for idx in groups:
        part = x[..., list(idx)]  # [B, T, L, P, g]
        mean, std = group_stats(part, eps)
        out[..., list(idx)] = (part - mean) / std
    return out


def _contiguous(groups: Groups, channels: int) -> bool:
    """True when the groups are consecutive ranges covering ``0..channels-1`` in order."""
    flat = [c for g in groups for c in g]
    return flat == list(range(channels)) and all(
        list(g) == list(range(g[0], g[0] + len(g))) for g in groups
    )


def denormalize_patches(
    pred: torch.Tensor, target: torch.Tensor, groups: Groups | None, eps: float = 1e-6
) -> torch.Tensor:
    """Map predictions in normalized-target space back to values with the statistics of
    ``target``'s own patches (as MAE reconstruction figures do): both ``(B, T, L, P, C)``."""
    if groups is None:
        return pred
    out = pred.clone()
    for idx in groups:
        mean, std = group_stats(target[..., list(idx)], eps)
        out[..., list(idx)] = pred[..., list(idx)] * std + mean
    return out
