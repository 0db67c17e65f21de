"""Downstream heads on encoder features (MAESTRO_SPEC §5.2)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from maestro.datasets.spec import TaskSpec
from maestro.model.mae import MAESTRO, Batch


class AttentiveReduce(nn.Module):
    """Reduce a set of tokens to one vector with one learned query.

    ``LN -> keys/values Linear(D, 2D, no bias) -> softmax(q k / sqrt(D / heads)) v -> LN``.
    """

    def __init__(self, dim: int, heads: int = 8) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm_in = nn.LayerNorm(dim)
        self.to_kv = nn.Linear(dim, 2 * dim, bias=False)
        self.query = nn.Parameter(torch.randn(dim))
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, N, D) -> (B, D)``."""
        k, v = rearrange(
            self.to_kv(self.norm_in(x)), "b n (two h d) -> two b h n d", two=2, h=self.heads
        )
        q = rearrange(self.query, "(h d) -> 1 h 1 d", h=self.heads).expand(x.shape[0], -1, -1, -1)
        out = F.scaled_dot_product_attention(q.to(k.dtype), k, v)  # [B, H, 1, d]
        return self.norm_out(rearrange(out, "b h 1 d -> b (h d)"))


class MeanReduce(nn.Module):
    """Mean over the token axis: ``(B, N, D) -> (B, D)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Average the tokens."""
        return x.mean(dim=1)


def _reduce(kind: str, dim: int, heads: int) -> nn.Module:
    return AttentiveReduce(dim, heads) if kind == "attentive" else MeanReduce()


class ClassificationHead(nn.Module):
    """Pool every token of every modality, date and group, then ``Linear(D, K)``."""

    def __init__(self, dim: int, num_classes: int, kind: str = "attentive", heads: int = 8) -> None:
        super().__init__()
        self.reduce = _reduce(kind, dim, heads)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``{m: (B, G, T, L, D)} -> (B, K)`` logits."""
        x = torch.cat([rearrange(f, "b g t l d -> b (g t l) d") for f in feats.values()], dim=1)
        return self.fc(self.reduce(x))


class SegmentationHead(nn.Module):
    """Per-location pooling on the reference token grid, then a pixel head.

    Every modality's token grid is resized bilinearly to the ``ref_grid``; at each location the
    vectors of all modalities, dates and groups are pooled; a 1x1 convolution gives
    ``K * s * s`` logits, rearranged depth-to-space to the label resolution (``s = upscale``).
    """

    def __init__(
        self,
        dim: int,
        num_classes: int,
        ref_grid: int,
        upscale: int,
        kind: str = "attentive",
        heads: int = 8,
    ) -> None:
        super().__init__()
        self.ref_grid, self.upscale, self.num_classes = ref_grid, upscale, num_classes
        self.reduce = _reduce(kind, dim, heads)
        self.to_logits = nn.Conv2d(dim, num_classes * upscale * upscale, kernel_size=1)

    def forward(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``{m: (B, G, T, L, D)} -> (B, K, ref_grid * s, ref_grid * s)`` logits."""
        n, parts = self.ref_grid, []
        b = next(iter(feats.values())).shape[0]
        for f in feats.values():
            side = math.isqrt(f.shape[3])
            img = rearrange(f, "b g t (h w) d -> (b g t) d h w", h=side)
            if side != n:
                img = F.interpolate(img, size=(n, n), mode="bilinear", align_corners=False)
            parts.append(rearrange(img, "(b k) d h w -> b (h w) k d", b=b))
        x = torch.cat(parts, dim=2)  # [B, n*n, K_all, D]
        z = self.reduce(rearrange(x, "b l k d -> (b l) k d"))  # [B*n*n, D]
        logits = self.to_logits(rearrange(z, "(b h w) d -> b d h w", b=b, h=n))
        s = self.upscale
        return rearrange(logits, "b (k p q) h w -> b k (h p) (w q)", p=s, q=s)


class DownstreamModel(nn.Module):
    """A MAESTRO encoder (decoder removed) with a task head.

    Args:
        encoder: the (pretrained or freshly initialised) model; its decoder is dropped.
        task: the dataset's task.
        label_px: label pixels per crop side (segmentation only).
    """

    def __init__(self, encoder: MAESTRO, task: TaskSpec, label_px: int | None = None) -> None:
        super().__init__()
        if encoder.decoders is not None:
            encoder.drop_decoder()
        self.encoder = encoder
        cfg = encoder.cfg
        if task.kind == "multilabel":
            self.head = ClassificationHead(
                cfg.embed_dim, task.num_classes, cfg.head, cfg.head_heads
            )
        else:
            ref = encoder.plans[task.ref_modality].grid
            if label_px is None or label_px % ref:
                raise ValueError(
                    f"label of {label_px} px is not a multiple of the {ref}-token grid"
                )
            self.head = SegmentationHead(
                cfg.embed_dim, task.num_classes, ref, label_px // ref, cfg.head, cfg.head_heads
            )

    def forward(self, batch: Batch, frozen: bool = False) -> torch.Tensor:
        """Logits ``(B, K)`` or ``(B, K, h, w)``; ``frozen`` runs the encoder without gradients."""
        if frozen:
            with torch.no_grad():
                feats = self.encoder.encode(batch)
        else:
            feats = self.encoder.encode(batch)
        return self.head(feats)
