"""Tokenizers and pixel heads per modality and token group, as in IGNF/MAESTRO (``Patchify``)."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


class Patchify(nn.Module):
    """Tokenize one modality: per token group ``Conv2d(|g| -> D, k=s=p)`` + ``GroupNorm(1, D)``.

    The GroupNorm normalizes over channels and all positions of one date's image jointly.
    """

    def __init__(self, group_sizes: tuple[int, ...], patch: int, dim: int) -> None:
        super().__init__()
        self.group_sizes = group_sizes
        self.patch = patch
        self.proj = nn.ModuleList(
            nn.Conv2d(c, dim, kernel_size=patch, stride=patch) for c in group_sizes
        )
        self.norm = nn.ModuleList(nn.GroupNorm(1, dim) for _ in group_sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, C, H, W) -> (B, G, T, L, D)`` with ``L = (H / p) * (W / p)``, row-major."""
        b = x.shape[0]
        out = []
        for part, proj, norm in zip(
            x.split(self.group_sizes, dim=2), self.proj, self.norm, strict=True
        ):
            img = rearrange(part, "b t c h w -> (b t) c h w")
            tok = norm(proj(img))  # [B*T, D, h, w]
            out.append(rearrange(tok, "(b t) d h w -> b t (h w) d", b=b))
        return torch.stack(out, dim=1)


class Pixelify(nn.Module):
    """Reconstruct pixels from decoder tokens: per token group ``Linear(D -> |g| * p^2)``.

    Equivalent to a 1x1 convolution on the token grid followed by depth-to-space.
    """

    def __init__(self, group_sizes: tuple[int, ...], patch: int, dim: int) -> None:
        super().__init__()
        self.group_sizes = group_sizes
        self.patch = patch
        self.proj = nn.ModuleList(nn.Linear(dim, c * patch * patch) for c in group_sizes)

    def forward(self, tokens: torch.Tensor, grid: int) -> torch.Tensor:
        """``(B, G, T, L, D) -> (B, T, C, H, W)``, group channels concatenated in group order."""
        parts = []
        for g, proj in enumerate(self.proj):
            pix = proj(tokens[:, g])  # [B, T, L, c*p*p]
            parts.append(
                rearrange(
                    pix,
                    "b t (h w) (c p q) -> b t c (h p) (w q)",
                    h=grid,
                    p=self.patch,
                    q=self.patch,
                )
            )
        return torch.cat(parts, dim=2)


def patches(x: torch.Tensor, patch: int) -> torch.Tensor:
    """Cut images into patches: ``(B, T, C, H, W) -> (B, T, L, p*p, C)``."""
    return rearrange(x, "b t c (h p) (w q) -> b t (h w) (p q) c", p=patch, q=patch)
