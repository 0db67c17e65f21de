"""Downstream heads on encoder features (IGNF/MAESTRO ``maestro/layers/head.py``)."""

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


class ConcatReduce(nn.Module):
    """Keep every vector: concatenate the set, ``(B, N, D) -> (B, N * D)`` (``N`` fixed)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten the set."""
        return x.flatten(1)


#: Head pooling kinds: MAESTRO's attentive reduce, the mean (upstream "linear"), or the
#: concatenation of one vector per (modality, group, date) slot (the demo's choice: a date
#: mean keeps too little of the temporal pattern of frozen features; docs/decisions.md).
HEAD_KINDS = ("attentive", "linear", "concat")


def _reduce(kind: str, dim: int, heads: int) -> nn.Module:
    if kind not in HEAD_KINDS:
        raise ValueError(f"unknown head {kind!r}; known: {HEAD_KINDS}")
    return {"attentive": AttentiveReduce, "linear": MeanReduce, "concat": ConcatReduce}[kind](
        *((dim, heads) if kind == "attentive" else ())
    )


def _slots(plans: Mapping[str, object]) -> int:
    """Vectors per location of a ``concat`` head: one per (modality, group, date)."""
    return sum(p.groups * p.dates for p in plans.values())


def _feature_norm(kind: str, dim: int) -> nn.Module:
    """Standardization of the pooled features before the classifier.

    ``"batch"``: BatchNorm without affine parameters, the linear-probe recipe of MAE (He et
    al. 2022, appendix A.2): every feature gets unit scale over the batch, so that a probe on
    frozen features that differ little from sample to sample can fit. ``"none"``: as the
    official head.
    """
    if kind == "batch":
        return nn.BatchNorm1d(dim, affine=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown head feature norm {kind!r}; known: batch, none")


class ClassificationHead(nn.Module):
    """Pool every token of every modality, date and group, (standardize), then a linear layer.

    ``attentive`` / ``linear`` reduce all tokens to one ``D`` vector; ``concat`` averages the
    locations of each of the ``slots`` (modality, group, date) images and concatenates them.
    """

    def __init__(
        self,
        dim: int,
        num_classes: int,
        kind: str = "attentive",
        heads: int = 8,
        norm: str = "none",
        slots: int = 1,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.reduce = _reduce(kind, dim, heads)
        width = dim * slots if kind == "concat" else dim
        self.norm = _feature_norm(norm, width)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``{m: (B, G, T, L, D)} -> (B, K)`` logits."""
        if self.kind == "concat":  # [B, slots, D]: one mean vector per (modality, group, date)
            x = torch.cat([rearrange(f.mean(3), "b g t d -> b (g t) d") for f in feats.values()], 1)
        else:
            x = torch.cat([rearrange(f, "b g t l d -> b (g t l) d") for f in feats.values()], 1)
        return self.fc(self.norm(self.reduce(x)))


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
        norm: str = "none",
        slots: int = 1,
    ) -> None:
        super().__init__()
        self.ref_grid, self.upscale, self.num_classes = ref_grid, upscale, num_classes
        self.reduce = _reduce(kind, dim, heads)
        width = dim * slots if kind == "concat" else dim
        self.norm = _feature_norm(norm, width)
        self.to_logits = nn.Conv2d(width, num_classes * upscale * upscale, kernel_size=1)

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
        z = self.norm(self.reduce(rearrange(x, "b l k d -> (b l) k d")))  # [B*n*n, D or K*D]
        logits = self.to_logits(rearrange(z, "(b h w) d -> b d h w", b=b, h=n))
        s = self.upscale
        return rearrange(logits, "b (k p q) h w -> b k (h p) (w q)", p=s, q=s)


def encode_then_head(
    encoder: nn.Module, head: nn.Module, batch: Mapping[str, object], frozen: bool
) -> torch.Tensor:
    """``head(encoder.encode(batch))``; ``frozen`` encodes without gradients (the probe). The
    forward of every downstream model (MAESTRO's and the baselines')."""
    with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
        feats = encoder.encode(batch)
    return head(feats)


def build_head(
    task: TaskSpec,
    dim: int,
    grids: Mapping[str, int],
    slots: int,
    label_px: int | None = None,
    kind: str = "attentive",
    heads: int = 8,
    norm: str = "none",
) -> nn.Module:
    """The task head of any encoder whose features are ``{m: (B, G, T, L, D)}``: a
    :class:`ClassificationHead`, or a :class:`SegmentationHead` on the reference modality's
    token grid (``grids[task.ref_modality]``) upsampled to ``label_px`` pixels; ``slots`` =
    the number of (modality, group, date) feature images (the ``concat`` head's width)."""
    if task.kind == "multilabel":
        return ClassificationHead(dim, task.num_classes, kind, heads, norm, slots)
    ref = grids[task.ref_modality]
    if label_px is None or label_px % ref:
        raise ValueError(f"label of {label_px} px is not a multiple of the {ref}-token grid")
    return SegmentationHead(dim, task.num_classes, ref, label_px // ref, kind, heads, norm, slots)


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
        grids = {m: p.grid for m, p in encoder.plans.items()}
        self.head = build_head(
            task, cfg.embed_dim, grids, _slots(encoder.plans), label_px, cfg.head, cfg.head_heads,
            cfg.head_norm,
        )  # fmt: skip

    def forward(self, batch: Batch, frozen: bool = False) -> torch.Tensor:
        """Logits ``(B, K)`` or ``(B, K, h, w)``; ``frozen`` runs the encoder without gradients."""
        return encode_then_head(self.encoder, self.head, batch, frozen)
