"""Normalization of reconstruction targets within patches and band groups (MAESTRO_SPEC §4.8)."""

from __future__ import annotations

import torch


def normalize_patches(
    x: torch.Tensor, groups: tuple[tuple[int, ...], ...] | None, eps: float = 1e-6
) -> torch.Tensor:
    """Patch-group-wise normalization of target patches ``(B, T, L, P, C) -> (B, T, L, P, C)``.

    For every (sample, date, patch, group) the ``P`` pixels x ``|group|`` channels are
    standardized jointly: ``(x - mean) / sqrt(var + eps)`` with the unbiased variance
    (divide by n - 1; by n when n == 1). ``groups=None`` returns ``x`` unchanged (no
    normalization); a single group of all channels is patch-wise normalization.
    """
    if groups is None:
        return x
    out = torch.empty_like(x)
    for idx in groups:
        part = x[..., list(idx)]  # [B, T, L, P, g]
        n = part.shape[-2] * part.shape[-1]
        mean = part.mean(dim=(-2, -1), keepdim=True)
        var = part.var(dim=(-2, -1), keepdim=True, correction=1 if n > 1 else 0)
        out[..., list(idx)] = (part - mean) / torch.sqrt(var + eps)
    return out
