"""DOFA (Xiong et al. 2024, "Neural plasticity-inspired multimodal foundation model for Earth
observation"): a ViT whose patch embedding is generated from the input bands' wavelengths,
so one model takes any set of bands.

Re-implemented here (docs/baselines.md: torchgeo, which has it, cannot be imported with the
CPU build of torch) with the parameter names of the published checkpoint
(``dofa_base_patch16_224-7cc0f413.pth``; :data:`CHECKPOINT_LAYOUT`), so that it loads as is:

- ``patch_embed``: each band's wavelength (in nm) -> a 128-d sin-cos code -> a residual MLP
  (``fclayer``) -> a one-layer Transformer over [128 weight tokens, band codes, bias token]
  (``weight_generator``) -> that band's ``16 x 16 x D`` kernel and the bias, both x 0.01;
  then a strided convolution (stride 16, padding 1, as the weights were trained).
- ``cls_token``, ``pos_embed`` (fixed 2-D sin-cos of the 14 x 14 grid of 224 px, resized
  bicubically to other grids), ``blocks`` (pre-norm ViT blocks: ``norm1``, ``attn.qkv``,
  ``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``; LN eps 1e-6), ``fc_norm``.

Wavelengths come from the modality declarations (``ModalitySpec.wavelengths_um``); SAR bands
(VV, VH), which have none, take DOFA's SAR code :data:`SAR_CODE`.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from maestro.baselines.adapt import add_date_codes, fold_dates, require_fit, unfold_dates
from maestro.baselines.vit import Block, resize_grid, sincos_2d

#: Kernel (patch) size, generator width and weight-token count of every DOFA model.
PATCH, WAVE_DIM, WEIGHT_TOKENS = 16, 128, 128
#: Scale of the generated kernels and bias.
SCALER = 0.01
#: DOFA's "wavelength" of Sentinel-1 VV and VH (the C-band centre frequency in GHz).
SAR_CODE = 5.405
SAR_BANDS = ("VV", "VH")
#: (embed dim, depth, heads) per size; ``demo`` is for random-init demo runs only.
SIZES = {"demo": (64, 2, 2), "small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16)}
FUSIONS = ("shared", "monotemp")


def wavelength_codes(wavelengths_um: torch.Tensor, dim: int = WAVE_DIM) -> torch.Tensor:
    """``(C,)`` wavelengths in µm -> ``(C, dim)`` codes ``[sin(nm w_k), cos(nm w_k)]`` with
    ``w_k = 10000^(-2k / dim)``, ``k < dim / 2``."""
    omega = 10000.0 ** (-torch.arange(dim // 2, dtype=torch.float32) / (dim / 2.0))
    arg = (wavelengths_um.float() * 1000.0)[:, None] * omega.to(wavelengths_um.device)
    return torch.cat([arg.sin(), arg.cos()], dim=1)


def band_wavelengths(bands: Sequence[str], file_bands: Sequence[str], wavelengths_um) -> list:
    """The wavelength (µm) of each input band, from the modality declaration (given in file
    band order); SAR bands take :data:`SAR_CODE`; a band with neither is an error."""
    known = dict(zip(file_bands, wavelengths_um or (None,) * len(file_bands), strict=True))
    out = []
    for b in bands:
        w = known.get(b)
        if w is None and b in SAR_BANDS:
            w = SAR_CODE
        if w is None:
            raise ValueError(f"band {b!r} has no wavelength: DOFA cannot embed it")
        out.append(float(w))
    return out


class _ResMLP(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w1, self.w2 = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.relu(self.w2(F.relu(self.w1(x))))


class _WeightGenerator(nn.Module):
    """Band codes ``(C, 128)`` -> kernels ``(C, k * k * D)`` and bias ``(D,)``."""

    def __init__(self, out_dim: int, embed_dim: int) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            WAVE_DIM, nhead=4, activation="gelu", dropout=0.0, norm_first=False
        )
        self.transformer_encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.fc_weight = nn.Linear(WAVE_DIM, out_dim)
        self.fc_bias = nn.Linear(WAVE_DIM, embed_dim)
        self.weight_tokens = nn.Parameter(torch.randn(WEIGHT_TOKENS, WAVE_DIM) * 0.02)
        self.bias_token = nn.Parameter(torch.randn(1, WAVE_DIM) * 0.02)

    def forward(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seq = torch.cat([self.weight_tokens, codes, self.bias_token])  # [128 + C + 1, 128]
        out = self.transformer_encoder(seq[:, None])[:, 0]  # sequence-first, batch of one
        weights = self.fc_weight(out[WEIGHT_TOKENS:-1] + codes)  # [C, k*k*D]
        return weights, self.fc_bias(out[-1])


class DynamicPatchEmbed(nn.Module):
    """Wavelength-conditioned patch embedding: ``(N, C, H, W)`` + ``(C,)`` µm -> ``(N, L, D)``."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.fclayer = _ResMLP(WAVE_DIM)
        self.weight_generator = _WeightGenerator(PATCH * PATCH * embed_dim, embed_dim)

    def forward(self, x: torch.Tensor, wavelengths_um: torch.Tensor) -> torch.Tensor:
        weights, bias = self.weight_generator(self.fclayer(wavelength_codes(wavelengths_um)))
        # the (C, k*k*D) generator output reinterpreted in memory as (D, C, k, k), not
        # transposed: the layout the published weights were trained with
        kernel = weights.reshape(self.embed_dim, len(wavelengths_um), PATCH, PATCH) * SCALER
        out = F.conv2d(x, kernel, bias * SCALER, stride=PATCH, padding=1)
        return rearrange(out, "n d h w -> n (h w) d")


def sincos_pos_embed(dim: int, grid: int) -> torch.Tensor:
    """``(1, 1 + grid^2, dim)`` fixed 2-D sin-cos position embedding (MAE's; a zero CLS row)."""
    return torch.cat([torch.zeros(1, dim), sincos_2d(dim, grid)])[None]


class DOFA(nn.Module):
    """The DOFA encoder (no classification head), with the checkpoint's parameter names."""

    def __init__(self, size: str = "base", img_size: int = 224) -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"DOFA size {size!r}: expected one of {sorted(SIZES)}")
        dim, depth, heads = SIZES[size]
        self.embed_dim, self.grid = dim, img_size // PATCH
        self.patch_embed = DynamicPatchEmbed(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(sincos_pos_embed(dim, self.grid), requires_grad=False)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(depth)])
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6)

    def pos_for(self, grid: int) -> torch.Tensor:
        """The patch position embedding resized (bicubic) to a ``grid x grid`` token grid."""
        return resize_grid(self.pos_embed[:, 1:], self.grid, grid)

    def forward(self, x: torch.Tensor, wavelengths_um: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` -> ``(N, L, D)`` patch tokens after ``fc_norm`` (CLS dropped)."""
        tokens = self.patch_embed(x, wavelengths_um)
        tokens = tokens + self.pos_for(math.isqrt(tokens.shape[1]))
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(len(tokens), -1, -1)
        z = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            z = block(z)
        return self.fc_norm(z[:, 1:])


def load_dofa(path: str | os.PathLike[str], size: str = "base") -> DOFA:
    """A DOFA encoder from a checkpoint file in the published layout; the classifier
    (``head.*``) is ignored, anything else that does not fit is an error naming the file."""
    model = DOFA(size)
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state)
    state = {k: v for k, v in state.items() if not k.startswith(("head.", "norm."))}
    expected = model.state_dict()
    require_fit(path, f"DOFA-{size}", state, expected, {"fc_norm.weight", "fc_norm.bias"})
    model.load_state_dict(state, strict=False)
    return model


class DOFABackbone(nn.Module):
    """DOFA over the benchmark's modalities (each date a separate image; ``shared`` or
    ``monotemp`` fusion; MAESTRO date codes after the backbone).

    Args:
        model: a :class:`DOFA` encoder (loaded or random).
        wavelengths: modality -> wavelength (µm) per input band (:func:`band_wavelengths`).
        grids: modality -> token grid side (inputs are resized to ``grid * 16`` pixels).
    """

    def __init__(
        self,
        model: DOFA,
        wavelengths: Mapping[str, Sequence[float]],
        grids: Mapping[str, int],
        fusion: str = "shared",
        date_codes: bool = True,
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"DOFA fusion {fusion!r}: expected one of {FUSIONS}")
        self.fusion, self.date_codes = fusion, date_codes
        self.grids, self.embed_dim = dict(grids), model.embed_dim
        for m, w in wavelengths.items():
            self.register_buffer(f"wavelengths_{m}", torch.tensor(list(w)), persistent=False)
        self.modalities = list(wavelengths)
        shared = fusion == "shared"
        self.models = nn.ModuleDict(
            {"shared": model} if shared else {m: copy.deepcopy(model) for m in wavelengths}
        )

    def encode(self, batch: Mapping[str, object]) -> dict[str, torch.Tensor]:
        """Per-modality tokens ``(B, 1, T, L, D)``."""
        out = {}
        for m in self.modalities:
            x = batch["inputs"][m]  # type: ignore[index]  # [B, T, C, H, W]
            side = self.grids[m] * PATCH
            images = fold_dates(x)
            if images.shape[-2:] != (side, side):
                images = F.interpolate(images, size=(side, side), mode="bilinear")
            model = self.models["shared" if self.fusion == "shared" else m]
            tokens = unfold_dates(model(images, getattr(self, f"wavelengths_{m}")), x.shape[0])
            if self.date_codes:
                tokens = add_date_codes(tokens, batch["dates"][m], batch["ref_date"])  # type: ignore[index]
            out[m] = tokens[:, None]
        return out
