"""ViT pieces in the parameter layout of ``timm``'s ``VisionTransformer``, shared by the
re-implemented baselines whose published checkpoints were saved from timm models (DOFA,
SatMAE, Prithvi-EO): a block is ``norm1``, ``attn.qkv``, ``attn.proj``, ``norm2``,
``mlp.fc1``, ``mlp.fc2`` (pre-norm, qkv bias, MLP ratio 4, GELU). Also the fixed sin-cos
position codes of MAE (He et al. 2022) in 1, 2 and 3 dimensions, and the bicubic resizing of
a position grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention, ``(N, L, D) -> (N, L, D)`` (one ``qkv`` projection)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "n l (s h e) -> s n h l e", s=3, h=self.heads)
        return self.proj(rearrange(F.scaled_dot_product_attention(q, k, v), "n h l e -> n l (h e)"))


class Mlp(nn.Module):
    """``fc1`` (ratio 4) -> GELU -> ``fc2``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm Transformer block, ``(N, L, D) -> (N, L, D)``."""

    def __init__(self, dim: int, heads: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=eps), nn.LayerNorm(dim, eps=eps)
        self.attn, self.mlp = Attention(dim, heads), Mlp(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """``(M,)`` positions -> ``(M, dim)`` codes ``[sin(p w_k), cos(p w_k)]``,
    ``w_k = 10000^(-2k / dim)`` (MAE's ``get_1d_sincos_pos_embed_from_grid``)."""
    if dim % 2:
        raise ValueError(f"a sin-cos code needs an even width, found {dim}")
    omega = 10000.0 ** (-torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    arg = pos.reshape(-1).double()[:, None] * omega.to(pos.device)
    return torch.cat([arg.sin(), arg.cos()], dim=1).float()


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """``(grid^2, dim)`` codes of a square grid in row-major order: the first half of the
    channels codes the column, the second the row (MAE's ``get_2d_sincos_pos_embed``)."""
    y, x = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    return torch.cat([sincos_1d(dim // 2, x), sincos_1d(dim // 2, y)], dim=1)


def sincos_3d(dim: int, frames: int, grid: int) -> torch.Tensor:
    """``(frames * grid^2, dim)`` codes, ordered (frame, row, column): 6/16 of the channels
    code the column, 6/16 the row, 4/16 the frame (Prithvi's 3-D sin-cos embedding)."""
    if dim % 16:
        raise ValueError(f"a 3-D sin-cos code needs a width divisible by 16, found {dim}")
    t, y, x = torch.meshgrid(
        torch.arange(frames), torch.arange(grid), torch.arange(grid), indexing="ij"
    )
    w = dim // 16
    return torch.cat([sincos_1d(6 * w, x), sincos_1d(6 * w, y), sincos_1d(4 * w, t)], dim=1)


def resize_grid(
    pos: torch.Tensor, grid: int, new_grid: int, align_corners: bool = False
) -> torch.Tensor:
    """``(..., grid^2, D)`` position codes -> ``(..., new_grid^2, D)``, bicubic; leading axes
    (e.g. frames) are kept."""
    if new_grid == grid:
        return pos
    lead = pos.shape[:-2]
    img = rearrange(pos.reshape(-1, grid, grid, pos.shape[-1]), "n h w d -> n d h w")
    img = F.interpolate(img, size=(new_grid, new_grid), mode="bicubic", align_corners=align_corners)
    return rearrange(img, "n d h w -> n (h w) d").reshape(*lead, new_grid**2, pos.shape[-1])
