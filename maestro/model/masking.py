"""Token masking for pretraining (IGNF/MAESTRO ``maestro/ssl/mae.py``, ``maestro/conf/mask.py``).

Masks are booleans with ``True = masked`` (hidden from the encoder, reconstructed by the
decoder). A structured mask over ``(B, G, T, L)`` (band groups, dates, locations) is drawn per
modality; the final mask of a sequence then hides exactly ``round(r * N)`` tokens, the
structured ones first (their sort key is 0), the rest uniformly at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class StructuredMaskProbs:
    """Drop probabilities of the structured mask; 0 disables a term."""

    modality: float = 0.0  # whole modality, one draw per sample
    bands: float = 0.0  # one draw per (sample, token group), only if G > 1
    dates: float = 0.0  # one draw per (sample, date), only if T > 1
    locations: float = 0.0  # one draw per (sample, location), shared by dates and groups


def sequence_mask_ratio(mask_ratio: float, mask_scale: float, n_images: int) -> float:
    """Per-sequence ratio ``r = 1 - (1 - mask_ratio) / n_images ** mask_scale``.

    ``n_images`` is the number of (modality, token group, date) images in the sequence.
    """
    return 1.0 - (1.0 - mask_ratio) / float(n_images) ** mask_scale


def structured_mask(
    batch: int,
    groups: int,
    dates: int,
    locations: int,
    probs: StructuredMaskProbs,
    device: torch.device,
) -> torch.Tensor:
    """OR of independent Bernoulli drops: ``(B, G, T, L)`` bool."""

    def draw(p: float, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.rand(shape, device=device) < p

    m = torch.zeros(batch, groups, dates, locations, dtype=torch.bool, device=device)
    if probs.modality > 0:
        m |= draw(probs.modality, (batch, 1, 1, 1))
    if probs.bands > 0 and groups > 1:
        m |= draw(probs.bands, (batch, groups, 1, 1))
    if probs.dates > 0 and dates > 1:
        m |= draw(probs.dates, (batch, 1, dates, 1))
    if probs.locations > 0:
        m |= draw(probs.locations, (batch, 1, 1, locations))
    return m


def random_masking(structured: torch.Tensor, n_masked: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask exactly ``n_masked`` of ``N`` tokens per row, structured tokens first.

    Args:
        structured: ``(B, N)`` bool, tokens to mask first.
        n_masked: tokens to mask in every row (``0 <= n_masked < N``).

    Returns:
        ``ids_keep`` ``(B, N - n_masked)`` indices of visible tokens in their original order,
        and ``mask`` ``(B, N)`` bool (True = masked).
    """
    b, n = structured.shape
    noise = torch.rand(b, n, device=structured.device) * (~structured)  # structured -> 0
    ids = torch.argsort(noise, dim=1)
    ids_keep = ids[:, n_masked:].sort(dim=1).values
    mask = torch.ones(b, n, dtype=torch.bool, device=structured.device)
    mask.scatter_(1, ids_keep, False)
    return ids_keep, mask
