"""CROMA (Fuller et al. 2023, "CROMA: remote sensing representations with contrastive radar-
optical masked autoencoders"): a Sentinel-1 encoder, a Sentinel-2 encoder and a cross encoder
(S1 tokens attending to S2 tokens), ViTs with a 2-D ALiBi attention bias instead of position
embeddings, as a baseline.

Re-implemented here, as IGNF/MAESTRO does (torchgeo has it but imports torchvision;
docs/baselines.md), with the parameter names of the published checkpoint (``CROMA_base.pt``:
a dict of ``s1_encoder``, ``s1_GAP_FFN``, ``s2_encoder``, ``s2_GAP_FFN``, ``joint_encoder``;
:func:`load_croma`):

- an encoder is ``linear_input`` (8 x 8 patches, channels outermost: ``(c i j)``) then
  ``transformer.layers.<k>.{0: attention, 1: FFN}`` and ``transformer.norm_out``; attention
  is ``input_norm``, ``to_qkv`` (no bias), ``to_out``; the FFN ``input_norm``, ``net.0``,
  ``net.3``; the cross encoder's layers are ``{0: self-attention, 1: cross-attention
  (to_q, to_k, to_v), 2: FFN}``; 16 heads in every size;
- the bias of head ``h`` between patches ``p`` and ``q`` is ``-slope_h * |p - q|`` (Euclidean
  distance on the patch grid, ALiBi slopes ``2^(-8 (h + 1) / H)``).

Adaptation (decision B9): S2 takes CROMA's 12 L1C bands by name, B1 and B9 (absent here) from
the nearest bands B2 and B8A (``match="index"``: the official rule, the 10 bands then band 9
twice); S1 is the ascending and descending series, one after the other in time; each date is
an image. ``late`` fusion returns the S1 and S2 encodings; ``inter`` also the cross encoding
of each S2 date with the S1 acquisition nearest to it in time (key ``joint``). A dataset
without Sentinel-1 (FLAIR#2) gets the S2 encoder alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from maestro.baselines.adapt import add_date_codes, fold_dates, state_mismatch, unfold_dates

PATCH, HEADS = 8, 16
#: (embed dim, S2 depth); the S1 encoder and the cross encoder have half the S2 depth.
SIZES = {"demo": (64, 2), "base": (768, 12), "large": (1024, 24)}
FUSIONS = ("late", "inter")
#: CROMA's optical input: Sentinel-2 L1C without B10, in this order.
CROMA_S2 = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12")
#: Bands the benchmark's S2 lacks, taken from the nearest band it has.
NEAREST = {"B1": "B2", "B9": "B8A"}
S1_MODALITIES = ("s1_asc", "s1_des")


def alibi_2d(grid: int, heads: int = HEADS) -> torch.Tensor:
    """``(1, H, L, L)`` attention bias ``-slope_h * distance(p, q)`` on a ``grid x grid``
    patch grid (row-major), slopes ``2^(-8 (h + 1) / H)`` (ALiBi's, for a power of two)."""
    if heads & (heads - 1):
        raise ValueError(f"ALiBi slopes need a power-of-two head count, found {heads}")
    slopes = torch.tensor([2.0 ** (-8.0 * (h + 1) / heads) for h in range(heads)])
    y, x = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    points = torch.stack([y.flatten(), x.flatten()], dim=1).float()
    dist = torch.cdist(points, points)  # [L, L]
    return (-slopes[:, None, None] * dist)[None]


class _Attention(nn.Module):
    def __init__(self, dim: int, cross: bool = False) -> None:
        super().__init__()
        self.input_norm = nn.LayerNorm(dim)
        if cross:
            self.to_q = nn.Linear(dim, dim, bias=False)
            self.to_k = nn.Linear(dim, dim, bias=False)
            self.to_v = nn.Linear(dim, dim, bias=False)
        else:
            self.to_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(N, L, D)`` (and ``(N, L, D)`` context for cross-attention) -> ``(N, L, D)``."""
        x = self.input_norm(x)
        if context is None:
            q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        else:
            context = self.input_norm(context)  # one norm for both, as published
            q, k, v = self.to_q(x), self.to_k(context), self.to_v(context)
        q, k, v = (rearrange(t, "n l (h e) -> n h l e", h=HEADS) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.to_out(rearrange(out, "n h l e -> n l (h e)"))


class _FFN(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.input_norm = nn.LayerNorm(dim)
        self.net = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(4 * dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.input_norm(x))


class _Transformer(nn.Module):
    """``layers.<k>`` = [attention, (cross-attention,) FFN], then ``norm_out``."""

    def __init__(self, dim: int, depth: int, cross: bool = False) -> None:
        super().__init__()
        parts = (
            (lambda: [_Attention(dim), _Attention(dim, True), _FFN(dim)])
            if cross
            else (lambda: [_Attention(dim), _FFN(dim)])
        )
        self.layers = nn.ModuleList([nn.ModuleList(parts()) for _ in range(depth)])
        self.norm_out = nn.LayerNorm(dim)

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        for layer in self.layers:
            x = layer[0](x, bias) + x
            if context is not None:
                x = layer[1](x, bias, context) + x
            x = layer[-1](x) + x
        return self.norm_out(x)


class _Encoder(nn.Module):
    """``(N, C, H, W)`` -> ``(N, L, D)``: 8 x 8 patches, a linear map, the transformer."""

    def __init__(self, dim: int, depth: int, channels: int) -> None:
        super().__init__()
        self.linear_input = nn.Linear(PATCH * PATCH * channels, dim)
        self.transformer = _Transformer(dim, depth)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        patches = rearrange(x, "n c (h i) (w j) -> n (h w) (c i j)", i=PATCH, j=PATCH)
        return self.transformer(self.linear_input(patches), bias)


def _gap_ffn(dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)
    )


class CROMA(nn.Module):
    """The three CROMA encoders, named as the checkpoint's five parts."""

    PARTS = ("s1_encoder", "s1_GAP_FFN", "s2_encoder", "s2_GAP_FFN", "joint_encoder")

    def __init__(self, size: str = "base") -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"CROMA size {size!r}: expected one of {sorted(SIZES)}")
        dim, depth = SIZES[size]
        self.embed_dim = dim
        self.s1_encoder = _Encoder(dim, depth // 2, 2)
        self.s1_GAP_FFN = _gap_ffn(dim)  # unused here: kept for the checkpoint
        self.s2_encoder = _Encoder(dim, depth, len(CROMA_S2))
        self.s2_GAP_FFN = _gap_ffn(dim)
        self.joint_encoder = _Transformer(dim, depth // 2, cross=True)


def load_croma(path: str | os.PathLike[str], size: str = "base") -> CROMA:
    """A CROMA model from the published checkpoint (a dict of its five parts); a missing
    part, tensor or a shape that does not fit is an error naming the file."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = CROMA(size)
    problems = []
    for part in CROMA.PARTS:
        module = getattr(model, part)
        state = ckpt.get(part) if isinstance(ckpt, Mapping) else None
        if state is None:
            problems.append(f"part {part!r} missing")
            continue
        missing, unexpected, shapes = state_mismatch(state, module.state_dict(), prefix=f"{part}.")
        problems += [f"{part}: missing {missing[:5]}"] if missing else []
        problems += [f"{part}: unexpected {unexpected[:5]}"] if unexpected else []
        problems += shapes[:5]
        if not (missing or unexpected or shapes):
            module.load_state_dict(state)
    if problems:
        raise ValueError(f"{path}: not a CROMA-{size} checkpoint ({'; '.join(problems)})")
    return model


def s2_channels(bands: Sequence[str], match: str = "name") -> list[int]:
    """Index into ``bands`` of each of CROMA's 12 optical channels: by name, the missing B1
    and B9 from their nearest bands; ``match="index"``: the 10 bands, then band 9 twice."""
    if match == "index":
        return [*range(len(bands)), *([9] * (len(CROMA_S2) - len(bands)))]
    if match != "name":
        raise ValueError(f"match must be 'name' or 'index', found {match!r}")
    out = []
    for band in CROMA_S2:
        name = band if band in bands else NEAREST.get(band)
        if name not in bands:
            raise ValueError(f"CROMA needs S2 band {band} (or {NEAREST.get(band)}): not in {bands}")
        out.append(list(bands).index(name))
    return out


def nearest_dates(query: torch.Tensor, pool: torch.Tensor) -> torch.Tensor:
    """For ``(B, T, 3)`` dates, the index into ``(B, P, 3)`` dates of the nearest one in time
    (year and day of year): ``(B, T)``."""

    def days(d: torch.Tensor) -> torch.Tensor:
        return d[..., 0].double() * 365.25 + d[..., 1].double()

    return (days(query)[:, :, None] - days(pool)[:, None, :]).abs().argmin(-1)


class CROMABackbone(nn.Module):
    """CROMA over a dataset's S1 (ascending + descending) and S2 series."""

    def __init__(
        self,
        model: CROMA,
        s2_bands: Sequence[str],
        s1: Sequence[str],
        grid: int,
        fusion: str = "inter",
        match: str = "name",
        date_codes: bool = True,
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"CROMA fusion {fusion!r}: expected one of {FUSIONS}")
        # without Sentinel-1 (FLAIR#2) only the S2 encoder runs: there is nothing to cross
        self.model, self.s1, self.date_codes = model, list(s1), date_codes
        self.fusion = fusion if self.s1 else "late"
        self.embed_dim = model.embed_dim
        self.grids = {m: grid for m in [*self.s1, "s2"]}
        if self.fusion == "inter":
            self.grids["joint"] = grid
        self.register_buffer(
            "channels", torch.tensor(s2_channels(s2_bands, match)), persistent=False
        )
        self.register_buffer("bias", alibi_2d(grid), persistent=False)

    def _images(self, x: torch.Tensor) -> torch.Tensor:
        side = self.grids["s2"] * PATCH
        images = fold_dates(x)
        if images.shape[-2:] != (side, side):
            images = F.interpolate(images, size=(side, side), mode="bilinear")
        return images

    def encode(self, batch: Mapping[str, object]) -> dict[str, torch.Tensor]:
        """``{s1_asc, s1_des, s2[, joint]: (B, 1, T, L, D)}`` (``joint``: one per S2 date)."""
        inputs, dates = batch["inputs"], batch["dates"]  # type: ignore[index]
        s2 = inputs["s2"][:, :, self.channels]  # [B, T2, 12, H, W]
        b = s2.shape[0]
        z2 = unfold_dates(self.model.s2_encoder(self._images(s2), self.bias), b)
        z1 = [unfold_dates(self.model.s1_encoder(self._images(inputs[m]), self.bias), b)
              for m in self.s1]  # fmt: skip
        out = {m: z for m, z in zip(self.s1, z1, strict=True)} | {"s2": z2}
        if self.fusion == "inter":
            s1_all = torch.cat(z1, dim=1)  # [B, T1, L, D]: ascending, then descending
            s1_dates = torch.cat([dates[m] for m in self.s1], dim=1)
            pick = nearest_dates(dates["s2"], s1_dates)  # [B, T2]
            paired = torch.stack([s1_all[i, pick[i]] for i in range(b)])  # [B, T2, L, D]
            flat = "b t l d -> (b t) l d"
            joint = self.model.joint_encoder(
                rearrange(paired, flat), self.bias, rearrange(z2, flat)
            )  # S1 tokens (queries) attend to the S2 tokens of the same date
            out["joint"] = unfold_dates(joint, b)
        if self.date_codes:
            when = {**{m: dates[m] for m in [*self.s1, "s2"]}, "joint": dates["s2"]}
            out = {m: add_date_codes(z, when[m], batch["ref_date"]) for m, z in out.items()}  # type: ignore[index]
        return {m: z[:, None] for m, z in out.items()}
