"""DINO-v2 (Oquab et al. 2023) as a baseline backbone, from Hugging Face ``transformers``
(``Dinov2Model``, the model class IGNF/MAESTRO builds its DINO-v2 baseline from).

Adaptation (the MAESTRO paper's baseline protocol): every modality gets its own patch
embedding, widened from the pretrained RGB kernel (:func:`maestro.baselines.adapt.
expand_patch_kernel`), and is resized to ``grid * 14`` pixels; each date is a separate image
(dates folded into the batch), with DINO-v2's CLS token and interpolated position
embedding; the CLS token is dropped after the final LayerNorm and the MAESTRO date code is
added to the output tokens. ``shared`` fusion runs every modality through one encoder,
``monotemp`` through one copy per modality (each starting from the same weights).

Output: ``{modality: (B, 1, T, L, D)}`` with ``L = grid ** 2``, the layout of
:meth:`maestro.model.MAESTRO.encode` (one token group per modality).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from maestro.baselines.adapt import add_date_codes, expand_patch_kernel, fold_dates, unfold_dates

#: Patch size of every DINO-v2 model.
PATCH = 14
#: (hidden size, layers, heads) of the published sizes, and ``demo`` (random init only).
SIZES = {
    "demo": (64, 2, 2),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
}
FUSIONS = ("shared", "monotemp")


def dinov2_config(size: str):
    """The ``transformers.Dinov2Config`` of a size (MLP ratio 4, LayerScale, LN eps 1e-6)."""
    from transformers import Dinov2Config

    if size not in SIZES:
        raise ValueError(f"DINO-v2 size {size!r}: expected one of {sorted(SIZES)}")
    dim, depth, heads = SIZES[size]
    return Dinov2Config(
        hidden_size=dim, num_hidden_layers=depth, num_attention_heads=heads,
        intermediate_size=4 * dim, patch_size=PATCH, image_size=518, num_channels=3,
    )  # fmt: skip


def random_dinov2(size: str, seed: int = 0):
    """A randomly initialised ``Dinov2Model`` (the demo's "random init" rows)."""
    from transformers import Dinov2Model

    torch.manual_seed(seed)
    return Dinov2Model(dinov2_config(size))


def load_dinov2(folder: str | os.PathLike[str]):
    """A ``Dinov2Model`` from a local checkpoint folder (``config.json`` and the weights of
    ``facebook/dinov2-<size>``), offline, through the library's own loader; a missing,
    unexpected or mis-shaped tensor is an error naming the folder and the tensors."""
    from transformers import Dinov2Model

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no config.json (expected a DINO-v2 checkpoint)")
    model, info = Dinov2Model.from_pretrained(
        folder, local_files_only=True, output_loading_info=True
    )
    bad = {k: info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    bad = {k: list(v) for k, v in bad.items() if v}
    if bad:
        raise ValueError(f"{folder}: the weights do not fit DINO-v2 ({bad})")
    return model


class Dinov2Backbone(nn.Module):
    """DINO-v2 over the benchmark's modalities.

    Args:
        model: a ``transformers.Dinov2Model`` (pretrained or :func:`random_dinov2`).
        bands: modality -> band names, in input order.
        grids: modality -> token grid side (inputs are resized to ``grid * patch`` pixels).
        fusion: ``shared`` or ``monotemp``.
        match: how the RGB kernel is copied (:func:`~maestro.baselines.adapt.expand_patch_kernel`).
        date_codes: add the MAESTRO date code to the output tokens.
        seed: random source of the new channels' kernels.
    """

    def __init__(
        self,
        model: nn.Module,
        bands: Mapping[str, Sequence[str]],
        grids: Mapping[str, int],
        fusion: str = "shared",
        match: str = "name",
        date_codes: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"DINO-v2 fusion {fusion!r}: expected one of {FUSIONS}")
        self.fusion, self.date_codes = fusion, date_codes
        self.grids = dict(grids)
        self.embed_dim = int(model.config.hidden_size)
        self.patch = int(model.config.patch_size)  # 14; 16 for DINO-v2 sat.
        proj = model.embeddings.patch_embeddings.projection
        gen = torch.Generator().manual_seed(seed)
        self.patch_embed = nn.ModuleDict()
        for m, names in bands.items():
            conv = nn.Conv2d(len(names), self.embed_dim, self.patch, self.patch)
            with torch.no_grad():
                conv.weight.copy_(
                    expand_patch_kernel(proj.weight, names, match=match, generator=gen)
                )
                conv.bias.copy_(proj.bias)
            self.patch_embed[m] = conv
        if fusion == "shared":
            self.models = nn.ModuleDict({"shared": model})
        else:
            self.models = nn.ModuleDict({m: copy.deepcopy(model) for m in bands})

    def _encode_images(self, m: str, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images of modality ``m`` -> ``(N, L, D)`` tokens (CLS dropped)."""
        model = self.models["shared" if self.fusion == "shared" else m]
        side = self.grids[m] * self.patch
        if images.shape[-2:] != (side, side):
            images = F.interpolate(images, size=(side, side), mode="bilinear", align_corners=False)
        x = rearrange(self.patch_embed[m](images), "n d h w -> n (h w) d")
        cls = model.embeddings.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)  # [N, 1 + L, D]
        x = x + model.embeddings.interpolate_pos_encoding(x, side, side)
        x = model.layernorm(model.encoder(x).last_hidden_state)
        return x[:, 1:]

    def encode(self, batch: Mapping[str, object]) -> dict[str, torch.Tensor]:
        """Per-modality tokens ``(B, 1, T, L, D)`` of ``batch`` (``inputs[m]``: ``(B, T, C,
        H, W)``; ``dates[m]``: ``(B, T, 3)``; ``ref_date``: ``(B, 3)``)."""
        out = {}
        for m in self.patch_embed:
            x = batch["inputs"][m]  # type: ignore[index]
            tokens = unfold_dates(self._encode_images(m, fold_dates(x)), x.shape[0])
            if self.date_codes:
                tokens = add_date_codes(tokens, batch["dates"][m], batch["ref_date"])  # type: ignore[index]
            out[m] = tokens[:, None]  # one token group per modality
        return out
