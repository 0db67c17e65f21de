"""Model configuration: one dataclass, four size presets, and the variant options.

Sizes follow IGNF/MAESTRO's ``maestro/ssl/mae.py`` (paper "Base" = upstream "medium"). Variant
options are the paper's ablation axes (fusion mode, spectral fusion, target normalization,
masking).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

Fusion = Literal["shared", "monotemp", "mod", "group"]
Spectral = Literal["joint", "token"]
TargetNorm = Literal["none", "patch", "patch_group"]
Loss = Literal["l1", "l2"]


@dataclass(frozen=True)
class MAEConfig:
    """Architecture and pretraining-objective settings of a MAESTRO model."""

    # --- encoder (per fusion instance: depth - inter_depth blocks, then inter_depth shared) ---
    embed_dim: int = 192
    depth: int = 12
    heads: int = 3
    dim_head: int = 64
    mlp_dim: int = 384
    # --- decoder (one per encoder instance) ---
    decoder_dim: int = 512
    decoder_depth: int = 1
    decoder_heads: int = 16
    decoder_dim_head: int = 32
    decoder_mlp_dim: int | None = None  # None: 4 * embed_dim, as upstream (docs/decisions.md)
    # --- variant: fusion and tokenization ---
    fusion: Fusion = "group"
    inter_depth: int = 3  # shared "inter-group" blocks over all groups' visible tokens
    spectral: Spectral = "joint"  # joint-token: one token per patch and date
    # --- encodings ---
    date_dim: int = 8  # channels reserved for the date code at the end of each token
    use_date_enc: bool = True
    # --- masking ---
    mask_ratio: float = 0.75
    mask_scale: float = 0.0
    mask_mod: float = 0.25
    mask_bands: float = 0.0
    mask_dates: float = 0.25
    mask_loc: float = 0.25
    # --- reconstruction target and loss ---
    target_norm: TargetNorm = "patch_group"
    loss: Loss = "l1"
    norm_eps: float = 1e-6
    # --- downstream head ---
    head: Literal["attentive", "linear", "concat"] = "attentive"
    head_heads: int = 8
    head_norm: Literal["none", "batch"] = "none"  # feature standardization before the classifier

    def __post_init__(self) -> None:
        if self.fusion not in ("shared", "monotemp", "mod", "group"):
            raise ValueError(f"unknown fusion mode {self.fusion!r}")
        if self.inter_depth and self.fusion not in ("mod", "group"):
            raise ValueError(
                f"inter_depth={self.inter_depth} needs fusion 'mod' or 'group', not {self.fusion!r}"
            )
        if not 0 <= self.inter_depth < self.depth:
            raise ValueError(f"inter_depth must be in [0, depth), got {self.inter_depth}")
        if not 0.0 < self.mask_ratio < 1.0:  # 0 masks nothing: a loss of 0, nothing learned
            raise ValueError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")
        for name in ("embed_dim", "decoder_dim"):
            dim = getattr(self, name)
            if (dim - self.date_dim) % 4 or dim <= self.date_dim:
                raise ValueError(f"{name}={dim}: (dim - date_dim) must be a positive multiple of 4")

    @property
    def decoder_mlp(self) -> int:
        """Hidden width of the decoder MLP."""
        return self.decoder_mlp_dim or 4 * self.embed_dim

    @property
    def group_depth(self) -> int:
        """Blocks of each per-group (or per-modality) encoder before the inter-group blocks."""
        return self.depth - self.inter_depth

    def replace(self, **changes: Any) -> MAEConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


#: Size presets (IGNF/MAESTRO ``maestro/ssl/mae.py``). The paper's "Base" is upstream's "medium".
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(embed_dim=192, depth=12, heads=3, mlp_dim=384, decoder_depth=1),
    "small": dict(embed_dim=384, depth=12, heads=6, mlp_dim=768, decoder_depth=2),
    "base": dict(embed_dim=768, depth=12, heads=12, mlp_dim=3072, decoder_depth=3),
    "large": dict(embed_dim=1024, depth=24, heads=16, mlp_dim=4096, decoder_depth=4),
}


def build_config(size: str = "tiny", **overrides: Any) -> MAEConfig:
    """A preset size with optional field overrides (unknown fields raise ``TypeError``)."""
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; known: {sorted(SIZES)}")
    fields = {f.name for f in dataclasses.fields(MAEConfig)}
    bad = set(overrides) - fields
    if bad:
        raise TypeError(f"unknown model settings {sorted(bad)}; known: {sorted(fields)}")
    return MAEConfig(**{**SIZES[size], **overrides})
