"""A baseline backbone with the benchmark's task head: the downstream interface every
baseline shares with MAESTRO (:class:`maestro.model.DownstreamModel`): ``forward(batch,
frozen)`` -> logits ``(B, K)`` (multi-label) or ``(B, K, h, w)`` (segmentation).

A backbone is any module with ``embed_dim``, ``grids`` (modality -> token grid side) and
``encode(batch) -> {m: (B, G, T, L, D)}``; the head is :func:`maestro.model.heads.build_head`,
the same heads (attentive, linear, concat) MAESTRO is probed and fine-tuned with.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from maestro.datasets.spec import TaskSpec
from maestro.model.heads import build_head, encode_then_head


class BaselineModel(nn.Module):
    """``backbone`` + task head.

    Args:
        backbone: the adapted foundation model
            (e.g. :class:`~maestro.baselines.dinov2.Dinov2Backbone`).
        task: the dataset's task.
        dates: modality -> dates per sample ``T`` (with the backbone's token groups per date,
            the number of feature images a ``concat`` head concatenates).
        label_px: label pixels per crop side (segmentation only).
        head, head_heads, head_norm: as MAESTRO's model config (``head``, ``head_heads``,
            ``head_norm``).
        groups: token groups per date of every modality (1 for the image backbones).
        ref_grid: the segmentation head's token grid: the grid MAESTRO's heads use for the
            task's reference modality (None: the backbone's own grid of that modality).
    """

    def __init__(
        self,
        backbone: nn.Module,
        task: TaskSpec,
        dates: Mapping[str, int],
        label_px: int | None = None,
        head: str = "attentive",
        head_heads: int = 8,
        head_norm: str = "none",
        groups: int = 1,
        ref_grid: int | None = None,
    ) -> None:
        super().__init__()
        self.encoder = backbone
        slots = groups * sum(dates[m] for m in backbone.grids)
        grids = dict(backbone.grids)
        if task.kind == "segmentation" and ref_grid is not None:
            # every backbone's tokens are resampled to MAESTRO's head grid (the reference
            # modality's patch grid), whatever its own patch size: the same head and label
            # resolution for every row (a 14-px DINO-v2 grid need not divide the label)
            grids[task.ref_modality] = ref_grid
        elif task.kind == "segmentation" and task.ref_modality not in grids:
            raise ValueError(
                f"the backbone does not read {task.ref_modality}: the head needs ref_grid"
            )
        self.head = build_head(
            task, backbone.embed_dim, grids, slots, label_px, head, head_heads, head_norm
        )

    def forward(self, batch: Mapping[str, object], frozen: bool = False) -> torch.Tensor:
        """Logits; ``frozen`` runs the backbone without gradients (the probe)."""
        return encode_then_head(self.encoder, self.head, batch, frozen)
