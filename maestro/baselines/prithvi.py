"""Prithvi-EO-2.0 (Szwarcman et al. 2024, "Prithvi-EO-2.0: a versatile multi-temporal
foundation model for Earth observation applications") as a Sentinel-2 baseline.

IGNF/MAESTRO builds it from terratorch's backbone registry (``terratorch_prithvi_eo_v2_300_tl``);
terratorch imports torchvision, which the CPU build of torch cannot load (docs/baselines.md),
so the encoder is re-implemented here with terratorch's parameter names (``PrithviViT``;
:func:`load_prithvi` also takes the MAE checkpoint's ``encoder.`` prefix):

- ``patch_embed.proj``: a 3-D convolution with 1 x 16 x 16 tubelets (pretrained on the six
  HLS bands; here re-made for the S2 bands, :data:`HLS_BANDS`, new bands N(0, 0.01));
- ``pos_embed``: the fixed 3-D sin-cos code of (frame, row, column) built for the run's date
  count on the 224-px grid and resized bicubically (corners aligned) to the token grid, as
  terratorch does; not read from the checkpoint (it depends on the date count);
- ``temporal_embed_enc``: (year, day of year / 365.25) -> half the channels each, 1-D sin-cos,
  times a learned ``scale``, added to every token of its frame; ``location_embed_enc`` is
  kept for the checkpoint but unused (the benchmark's samples carry no latitude / longitude);
- ``cls_token``, ``blocks`` (timm layout, LN eps 1e-5), ``norm``.

Output: ``{"s2": (B, 1, T, L, D)}`` (native spatio-temporal tokens, CLS dropped).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from maestro.baselines.adapt import NEW_CHANNEL_STD, add_date_codes, require_fit
from maestro.baselines.vit import Block, resize_grid, sincos_1d, sincos_3d

PATCH = 16
PRETRAIN_GRID = 14
#: (embed dim, depth, heads): Prithvi-EO-1.0 100M (``100``), 2.0 300M (``300``), 600M (``600``,
#: patch 14 upstream, not supported here) and ``demo`` (random init only).
SIZES = {"demo": (64, 2, 2), "100": (768, 12, 12), "300": (1024, 24, 16)}
#: The pretraining bands in kernel order (HLS) and the Sentinel-2 band each one is: HLS's
#: "NIR narrow" is B8A (865 nm). IGNF/MAESTRO copies them to S2 indices (0, 1, 2, 6, 8, 9),
#: i.e. NIR to B8 (docs/decisions.md B6).
HLS_BANDS = {"Blue": "B2", "Green": "B3", "Red": "B4", "NIR_Narrow": "B8A", "SWIR1": "B11",
             "SWIR2": "B12"}  # fmt: skip
FUSIONS = ("mod",)
#: terratorch builds Prithvi with ``nn.LayerNorm``'s default epsilon.
LN_EPS = 1e-5


def widen_hls_kernel(
    kernel: torch.Tensor, bands: Sequence[str], generator: torch.Generator | None = None
) -> torch.Tensor:
    """A ``(D, 6, 1, p, p)`` HLS kernel -> ``(D, C, 1, p, p)``: each S2 band of
    :data:`HLS_BANDS` takes its pretrained kernel, the others N(0, 0.01)."""
    if kernel.ndim != 5 or kernel.shape[1] != len(HLS_BANDS):
        raise ValueError(f"expected a (D, 6, 1, p, p) HLS kernel, found {tuple(kernel.shape)}")
    out = torch.randn(
        kernel.shape[0], len(bands), *kernel.shape[2:], generator=generator, dtype=kernel.dtype
    )
    out = out * NEW_CHANNEL_STD
    s2 = list(HLS_BANDS.values())
    for i, band in enumerate(bands):
        if band in s2:
            out[:, i] = kernel[:, s2.index(band)]
    return out


class _CoordsEncoder(nn.Module):
    """Two coordinates -> ``[sincos(a) (D/2), sincos(b) (D/2)] * scale``; ``scale`` is
    learned, from 0.1 (the ``_tl`` models' ``coords_scale_learn``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.scale = nn.Parameter(torch.full((1,), 0.1))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """``(..., 2)`` -> ``(..., D)``."""
        flat = coords.reshape(-1, 2).float()
        half = self.dim // 2
        code = torch.cat([sincos_1d(half, flat[:, 0]), sincos_1d(self.dim - half, flat[:, 1])], 1)
        return self.scale * code.reshape(*coords.shape[:-1], self.dim).to(coords.device)


class Prithvi(nn.Module):
    """The Prithvi-EO encoder (``PrithviViT``) with temporal encoding, for ``in_chans`` bands."""

    def __init__(self, size: str = "300", in_chans: int = 6) -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"Prithvi size {size!r}: expected one of {sorted(SIZES)}")
        dim, depth, heads = SIZES[size]
        self.embed_dim = dim
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(
            in_chans, dim, (1, PATCH, PATCH), stride=(1, PATCH, PATCH)
        )
        self.temporal_embed_enc = _CoordsEncoder(dim)
        self.location_embed_enc = _CoordsEncoder(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList([Block(dim, heads, eps=LN_EPS) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        nn.init.normal_(self.cls_token, std=0.02)

    def pos_embed(self, frames: int, grid: int) -> torch.Tensor:
        """``(frames * grid^2, D)``: the 3-D code of the 224-px grid, resized to ``grid``."""
        pos = sincos_3d(self.embed_dim, frames, PRETRAIN_GRID)
        pos = pos.reshape(frames, PRETRAIN_GRID**2, self.embed_dim)
        return resize_grid(pos, PRETRAIN_GRID, grid, align_corners=True).flatten(0, 1)

    def forward(self, x: torch.Tensor, temporal_coords: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` and ``(B, T, 2)`` (year, day of year / 365.25) ->
        ``(B, T, L, D)``."""
        tokens = self.patch_embed.proj(x)  # [B, D, T, h, w]
        t, grid = tokens.shape[2], tokens.shape[-1]
        tokens = rearrange(tokens, "b d t h w -> b (t h w) d")
        pos = self.pos_embed(t, grid).to(x.device)
        when = self.temporal_embed_enc(temporal_coords)  # [B, T, D]
        when = when.repeat_interleave(grid * grid, dim=1)  # [B, T*L, D]
        tokens = tokens + pos + when
        cls = self.cls_token.expand(len(tokens), -1, -1)  # the CLS position code is zero
        z = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            z = block(z)
        return rearrange(self.norm(z)[:, 1:], "b (t l) d -> b t l d", t=t)


def load_prithvi(
    path: str | os.PathLike[str],
    bands: Sequence[str],
    size: str = "300",
    generator: torch.Generator | None = None,
) -> Prithvi:
    """A Prithvi encoder for the S2 ``bands`` from a published checkpoint (the MAE's
    ``encoder.*`` keys, or the bare encoder's): the decoder and the fixed ``pos_embed`` are
    ignored; anything else that does not fit is an error naming the file."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = dict(state.get("model", state.get("state_dict", state)))
    if any(k.startswith("encoder.") for k in state):
        state = {
            k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")
        }
    state = {k: v for k, v in state.items() if k != "pos_embed"}
    model = Prithvi(size, in_chans=len(bands))
    kernel = state.get("patch_embed.proj.weight")
    if kernel is not None and kernel.ndim == 5 and kernel.shape[1] == len(HLS_BANDS):
        state["patch_embed.proj.weight"] = widen_hls_kernel(kernel, bands, generator)
    expected = model.state_dict()
    require_fit(path, f"Prithvi-{size}", state, expected)
    model.load_state_dict(state)
    return model


def temporal_coords(dates: torch.Tensor) -> torch.Tensor:
    """``(B, T, 3)`` (year, day of year, hour) -> ``(B, T, 2)`` (year, day of year / 365.25)."""
    return torch.stack([dates[..., 0].float(), dates[..., 1].float() / 365.25], dim=-1)


class PrithviBackbone(nn.Module):
    """Prithvi over the Sentinel-2 series (``mod`` fusion), images resized to ``grid * 16``
    pixels, MAESTRO date codes after the backbone."""

    def __init__(self, model: Prithvi, grids: Mapping[str, int], date_codes: bool = True) -> None:
        super().__init__()
        if list(grids) != ["s2"]:
            raise ValueError(f"Prithvi reads Sentinel-2 only, asked for {sorted(grids)}")
        self.model, self.grids, self.embed_dim = model, dict(grids), model.embed_dim
        self.date_codes = date_codes

    def encode(self, batch: Mapping[str, object]) -> dict[str, torch.Tensor]:
        """``{"s2": (B, 1, T, L, D)}``."""
        x = batch["inputs"]["s2"]  # type: ignore[index]  # [B, T, C, H, W]
        b, t = x.shape[:2]
        side = self.grids["s2"] * PATCH
        if x.shape[-2:] != (side, side):
            x = F.interpolate(x.flatten(0, 1), size=(side, side), mode="bilinear")
            x = x.reshape(b, t, *x.shape[1:])
        dates = batch["dates"]["s2"]  # type: ignore[index]
        tokens = self.model(rearrange(x, "b t c h w -> b c t h w"), temporal_coords(dates))
        if self.date_codes:
            tokens = add_date_codes(tokens, dates, batch["ref_date"])  # type: ignore[index]
        return {"s2": tokens[:, None]}
