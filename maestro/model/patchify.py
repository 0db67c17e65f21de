"""Tokenizers and pixel heads per modality and token group, as in IGNF/MAESTRO (``Patchify``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
            tok = norm(self._project(img, proj))  # [B*T, D, h, w]
            out.append(rearrange(tok, "(b t) d h w -> b t (h w) d", b=b))
        return torch.stack(out, dim=1)

    def _project(self, img: torch.Tensor, proj: nn.Conv2d) -> torch.Tensor:
        """``(N, c, H, W) -> (N, D, H / p, W / p)``: the patch convolution.

        Under CPU bf16 autocast it is computed as one matmul over flattened patches, the same
        function with the same weights: oneDNN's bf16 convolution backward is slow on CPU
        (TreeSatAI-TS aerial, 8 x 4 x 300 x 300, p = 20: ~37 ms as a convolution, ~8 ms as a
        matmul; benchmarks/README.md). fp32 keeps the convolution (bit-reproducible runs).
        """
        p, (h, w) = self.patch, img.shape[-2:]
        if img.device.type != "cpu" or not torch.is_autocast_enabled("cpu") or h % p or w % p:
            return proj(img)
        flat = rearrange(img, "n c (h p) (w q) -> n h w (c p q)", p=p, q=p)  # Conv2d's order
        tok = F.linear(flat, proj.weight.flatten(1), proj.bias)  # [N, h, w, D]
        return rearrange(tok, "n h w d -> n d h w")


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
