"""SatMAE (Cong et al. 2022, "SatMAE: pre-training transformers for temporal and
multi-spectral satellite imagery"), its temporal ViT, as a Sentinel-2 baseline.

Re-implemented here, as IGNF/MAESTRO does (no maintained library ships it; docs/baselines.md),
with the parameter names of the published checkpoints (``checkpoint["model"]`` of the SatMAE
repository's ``MaskedAutoencoderViT`` temporal models; :func:`load_satmae`):

- ``patch_embed.proj``: one 16 x 16 convolution shared by every date (pretrained on RGB; here
  widened to the S2 bands with :func:`maestro.baselines.adapt.expand_patch_kernel`);
- ``cls_token``; ``pos_embed`` ``(1, 1 + 14^2, D - 384)``: the 2-D sin-cos code of the
  224-px grid (resized bicubically to other grids), concatenated on the channel axis with
  three 128-d 1-D sin-cos codes of each date's (year, day of year, hour);
- ``blocks`` (timm layout, LN eps 1e-6), ``norm``.

All dates of a sample are one sequence (``T * L`` tokens plus CLS); the output is
``{"s2": (B, 1, T, L, D)}``, the CLS token dropped after ``norm``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from maestro.baselines.adapt import add_date_codes, expand_patch_kernel, require_fit
from maestro.baselines.vit import Block, resize_grid, sincos_1d, sincos_2d

PATCH = 16
#: Width of each of the three date codes (year, day of year, hour).
DATE_CODE = 128
#: (embed dim, depth, heads); ``demo`` (random init only) keeps the 3 x 128 date channels.
SIZES = {"demo": (448, 2, 4), "base": (768, 12, 12), "large": (1024, 24, 16)}
#: The pretraining grid (224 px) of the published position embedding.
PRETRAIN_GRID = 14
FUSIONS = ("mod",)


def date_codes(dates: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` (year, day of year, hour) -> ``(..., 384)`` three 1-D sin-cos codes."""
    flat = dates.reshape(-1, 3).float()
    codes = [sincos_1d(DATE_CODE, flat[:, i]) for i in range(3)]
    return torch.cat(codes, dim=1).reshape(*dates.shape[:-1], 3 * DATE_CODE).to(dates.device)


class SatMAE(nn.Module):
    """The SatMAE temporal encoder (no classifier), with the checkpoint's parameter names."""

    def __init__(self, size: str = "base", in_chans: int = 3) -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"SatMAE size {size!r}: expected one of {sorted(SIZES)}")
        dim, depth, heads = SIZES[size]
        self.embed_dim = dim
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_chans, dim, PATCH, stride=PATCH)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        pos = torch.cat(
            [torch.zeros(1, dim - 3 * DATE_CODE), sincos_2d(dim - 3 * DATE_CODE, PRETRAIN_GRID)]
        )
        self.pos_embed = nn.Parameter(pos[None], requires_grad=False)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.normal_(self.cls_token, std=0.02)

    def forward(self, x: torch.Tensor, dates: torch.Tensor) -> torch.Tensor:
        """``(B, T, C, H, W)`` images and ``(B, T, 3)`` dates -> ``(B, T, L, D)`` tokens."""
        b, t = x.shape[:2]
        tokens = self.patch_embed.proj(rearrange(x, "b t c h w -> (b t) c h w"))
        grid = tokens.shape[-1]
        tokens = rearrange(tokens, "(b t) d h w -> b (t h w) d", b=b)
        pos = resize_grid(self.pos_embed[:, 1:], PRETRAIN_GRID, grid)  # [1, L, D - 384]
        pos = pos.expand(b, -1, -1).repeat(1, t, 1)  # [B, T*L, D - 384]
        when = date_codes(dates)[:, :, None].expand(-1, -1, grid * grid, -1)  # [B, T, L, 384]
        tokens = tokens + torch.cat([pos, rearrange(when, "b t l d -> b (t l) d")], dim=-1)
        cls_pos = torch.cat([self.pos_embed[:, :1], torch.zeros(1, 1, 3 * DATE_CODE)], dim=-1)
        cls = (self.cls_token + cls_pos.to(x.device)).expand(b, -1, -1)
        z = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            z = block(z)
        return rearrange(self.norm(z)[:, 1:], "b (t l) d -> b t l d", t=t)


def load_satmae(
    path: str | os.PathLike[str],
    bands: Sequence[str],
    size: str = "base",
    generator: torch.Generator | None = None,
) -> SatMAE:
    """A SatMAE encoder for ``bands`` from a published checkpoint (``{"model": state}``, RGB
    patch embedding): the decoder, mask token and classifier are ignored, the RGB kernel is
    copied to the bands of its colours and the others drawn N(0, 0.01); anything else that
    does not fit is an error naming the file."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = dict(state.get("model", state))
    drop = ("decoder", "mask_token", "head.", "fc_norm.")
    state = {k: v for k, v in state.items() if not k.startswith(drop)}
    model = SatMAE(size, in_chans=len(bands))
    expected = model.state_dict()
    kernel = state.get("patch_embed.proj.weight")
    if kernel is not None and kernel.ndim == 4 and kernel.shape[1] == 3:
        state["patch_embed.proj.weight"] = expand_patch_kernel(kernel, bands, generator=generator)
    require_fit(path, f"SatMAE-{size}", state, expected)
    model.load_state_dict(state)
    return model


class SatMAEBackbone(nn.Module):
    """SatMAE over the Sentinel-2 series (``mod`` fusion: S2 only), images resized to
    ``grid * 16`` pixels, MAESTRO date codes after the backbone."""

    def __init__(self, model: SatMAE, grids: Mapping[str, int], date_codes: bool = True) -> None:
        super().__init__()
        if list(grids) != ["s2"]:
            raise ValueError(f"SatMAE reads Sentinel-2 only, asked for {sorted(grids)}")
        self.model, self.grids, self.embed_dim = model, dict(grids), model.embed_dim
        self.date_codes = date_codes

    def encode(self, batch: Mapping[str, object]) -> dict[str, torch.Tensor]:
        """``{"s2": (B, 1, T, L, D)}``."""
        x = batch["inputs"]["s2"]  # type: ignore[index]  # [B, T, C, H, W]
        side = self.grids["s2"] * PATCH
        if x.shape[-2:] != (side, side):
            b, t = x.shape[:2]
            x = F.interpolate(x.flatten(0, 1), size=(side, side), mode="bilinear")
            x = x.reshape(b, t, *x.shape[1:])
        dates = batch["dates"]["s2"]  # type: ignore[index]  # [B, T, 3]
        tokens = self.model(x, dates)
        if self.date_codes:
            tokens = add_date_codes(tokens, dates, batch["ref_date"])  # type: ignore[index]
        return {"s2": tokens[:, None]}
