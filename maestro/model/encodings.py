"""Fixed spatial sin-cos grids and date codes (IGNF/MAESTRO ``reshape_encoding``, ``encode_dates``).

Both codes live in one token vector: the spatial code fills the first ``dim - date_dim``
channels, the date code the last ``date_dim`` channels; each is zero in the other's part.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange


def sincos_grid(size: int, dim: int, date_dim: int = 8) -> torch.Tensor:
    """The dataset-level 2-D sin-cos grid: ``(size, size, dim)``.

    With ``K = (dim - date_dim) / 4`` and ``w_k = 10000^(-k / (K - 1))``, the cell at row y,
    column x holds ``[sin(x w), cos(x w), sin(y w), cos(y w), 0 * date_dim]``.
    """
    k = (dim - date_dim) // 4
    if k < 2 or 4 * k + date_dim != dim:
        raise ValueError(f"dim={dim}, date_dim={date_dim}: dim - date_dim must be 4*K with K >= 2")
    omega = 10000.0 ** (-torch.arange(k, dtype=torch.float64) / (k - 1))  # [K]
    y, x = torch.meshgrid(
        torch.arange(size, dtype=torch.float64),
        torch.arange(size, dtype=torch.float64),
        indexing="ij",
    )
    xw, yw = x[..., None] * omega, y[..., None] * omega  # [P, P, K]
    feats = [
        xw.sin(),
        xw.cos(),
        yw.sin(),
        yw.cos(),
        torch.zeros(size, size, date_dim, dtype=torch.float64),
    ]
    return torch.cat(feats, dim=-1).float()


def resample_grid(grid: torch.Tensor, n: int) -> torch.Tensor:
    """Resample a ``(P, P, D)`` grid to a modality's ``n x n`` token grid: ``(n * n, D)``.

    If P is not a multiple of n the grid is first resized bilinearly to ``n * round(P / n)``;
    then non-overlapping blocks are averaged, so each token carries the mean code of the
    fine cells it covers.
    """
    p = grid.shape[0]
    img = rearrange(grid, "h w d -> 1 d h w")
    if p % n:
        side = n * max(round(p / n), 1)
        img = F.interpolate(img, size=(side, side), mode="bilinear", align_corners=False)
    img = F.adaptive_avg_pool2d(img, n)  # exact block mean when side is a multiple of n
    return rearrange(img, "1 d h w -> (h w) d")


def encode_dates(
    dates: torch.Tensor, ref_date: torch.Tensor, dim: int, date_dim: int = 8, scale: float = 1.0
) -> torch.Tensor:
    """Date code per acquisition: ``(B, T, 3)`` dates and ``(B, 3)`` ref -> ``(B, T, dim)``.

    Dates are (year, day of year, hour) triples.

    With ``doy' = doy / 365.25`` and ``h' = hour / 24``, ``delta`` is the signed distance in
    years to the reference date; the last ``date_dim`` channels hold
    ``[delta x (date_dim - 4), sin 2 pi doy', cos 2 pi doy', sin 2 pi h', cos 2 pi h'] * scale``.
    """
    d = dates.to(torch.float64)
    r = ref_date.to(torch.float64)[:, None, :]
    doy, hour = d[..., 1] / 365.25, d[..., 2] / 24.0
    delta = (d[..., 0] + doy) - (r[..., 0] + r[..., 1] / 365.25)  # [B, T]
    two_pi = 2 * math.pi
    feats = [delta] * (date_dim - 4) + [
        torch.sin(two_pi * doy),
        torch.cos(two_pi * doy),
        torch.sin(two_pi * hour),
        torch.cos(two_pi * hour),
    ]
    code = torch.stack(feats, dim=-1) * scale  # [B, T, date_dim]
    out = torch.zeros(*code.shape[:-1], dim, dtype=torch.float64, device=dates.device)
    out[..., dim - date_dim :] = code
    return out.float()
