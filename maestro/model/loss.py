"""Masked reconstruction loss on masked tokens only (IGNF/MAESTRO ``compute_loss_rec``)."""

from __future__ import annotations

import torch

from maestro.model.patchify import patches
from maestro.model.target_norm import normalize_patches


def channel_mask(token_mask: torch.Tensor, group_sizes: tuple[int, ...]) -> torch.Tensor:
    """Expand a token mask ``(B, G, T, L)`` to ``(B, T, L, 1, C)``: a band is masked with its
    token group (broadcasts over the ``P`` pixels of :func:`patches`)."""
    group_of_channel = torch.repeat_interleave(
        torch.arange(len(group_sizes), device=token_mask.device),
        torch.tensor(group_sizes, device=token_mask.device),
    )  # [C]
    return token_mask[:, group_of_channel].permute(0, 2, 3, 1)[:, :, :, None, :]


def masked_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    token_mask: torch.Tensor,
    group_sizes: tuple[int, ...],
    patch: int,
    norm_groups: tuple[tuple[int, ...], ...] | None,
    kind: str = "l1",
    eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean reconstruction error over the masked pixels and bands of one modality.

    Args:
        pred, target: ``(B, T, C, H, W)``; channels in model order.
        token_mask: ``(B, G, T, L)`` bool, True where the token was masked.
        group_sizes: channels per token group (a band is masked with its token group).
        patch: patch side p.
        norm_groups: target normalization groups (channel indices), or None.
        kind: "l1" or "l2".
        eps: variance epsilon of the normalization.

    Returns:
        the loss (scalar) and the number of masked elements (scalar, for weighting/logging).
    """
    tp = normalize_patches(patches(target.float(), patch), norm_groups, eps)  # [B, T, L, P, C]
    pp = patches(pred.float(), patch)
    m = channel_mask(token_mask, group_sizes)  # [B, T, L, 1, C]
    diff = pp - tp
    err = diff.abs() if kind == "l1" else diff.square()
    count = m.sum() * pp.shape[3]
    return (err * m).sum() / count.clamp(min=1), count
