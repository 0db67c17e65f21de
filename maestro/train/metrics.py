"""Downstream metrics, accumulated over an epoch (MAESTRO_SPEC §5.4).

Values are fractions in [0, 1]; tables print them in %.
"""

from __future__ import annotations

import torch

from maestro.train.distributed import Dist, sum_


class MultiLabelMetric:
    """Multi-label F1 from per-class TP/FP/FN counts at a sigmoid threshold of 0.5.

    ``weighted_f1 = sum_l F1_l * s_l / sum_l s_l`` with support ``s_l = TP_l + FN_l`` (the
    paper's wF1); ``macro_f1`` averages the classes with support > 0.
    """

    def __init__(self, num_classes: int) -> None:
        self.tp = torch.zeros(num_classes, dtype=torch.float64)
        self.fp = torch.zeros(num_classes, dtype=torch.float64)
        self.fn = torch.zeros(num_classes, dtype=torch.float64)

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: logits ``(B, K)``, target ``(B, K)`` in {0, 1}."""
        pred = torch.sigmoid(logits.detach().float()) >= 0.5
        true = target.detach() > 0.5
        self.tp += (pred & true).sum(0).double().cpu()
        self.fp += (pred & ~true).sum(0).double().cpu()
        self.fn += (~pred & true).sum(0).double().cpu()

    def reduce(self, d: Dist) -> None:
        """Sum the counts of every rank (after each rank saw its share of the split)."""
        self.tp, self.fp, self.fn = sum_(torch.stack([self.tp, self.fp, self.fn]), d)

    def compute(self) -> dict[str, float]:
        """``weighted_f1``, ``macro_f1`` and per-class ``f1``."""
        denom = 2 * self.tp + self.fp + self.fn
        f1 = torch.where(denom > 0, 2 * self.tp / denom.clamp(min=1), torch.zeros_like(denom))
        support = self.tp + self.fn
        present = support > 0
        weighted = float((f1 * support).sum() / support.sum()) if support.sum() > 0 else 0.0
        macro = float(f1[present].mean()) if present.any() else 0.0
        return {"weighted_f1": weighted, "macro_f1": macro, "f1": f1.tolist()}


class SegmentationMetric:
    """Confusion matrix over valid pixels; IoU and F1 per class.

    ``miou`` averages IoU over the classes present in the ground truth (TP + FN > 0);
    pixels labelled ``ignore_index`` are excluded; predictions of classes absent from the
    ground truth still count as false positives of those classes and errors of the true class.
    """

    def __init__(self, num_classes: int, ignore_index: int = -1) -> None:
        self.k = num_classes
        self.ignore_index = ignore_index
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)  # [true, pred]

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: logits ``(B, K, H, W)``, target ``(B, H, W)`` class ids."""
        pred = logits.detach().argmax(1).flatten().cpu()
        true = target.detach().flatten().cpu()
        valid = true != self.ignore_index
        idx = true[valid] * self.k + pred[valid]
        self.confusion += torch.bincount(idx, minlength=self.k * self.k).reshape(self.k, self.k)

    def reduce(self, d: Dist) -> None:
        """Sum the confusion matrices of every rank."""
        self.confusion = sum_(self.confusion, d)

    def compute(self) -> dict[str, float]:
        """``miou``, ``overall_accuracy``, ``mean_f1`` and per-class ``iou``."""
        c = self.confusion.double()
        tp = c.diag()
        fp = c.sum(0) - tp
        fn = c.sum(1) - tp
        present = (tp + fn) > 0
        iou = tp / (tp + fp + fn).clamp(min=1)
        f1 = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
        total = c.sum()
        return {
            "miou": float(iou[present].mean()) if present.any() else 0.0,
            "overall_accuracy": float(tp.sum() / total) if total > 0 else 0.0,
            "mean_f1": float(f1[present].mean()) if present.any() else 0.0,
            "iou": [float(v) if p else None for v, p in zip(iou, present, strict=True)],
        }


def make_metric(kind: str, num_classes: int) -> MultiLabelMetric | SegmentationMetric:
    """The metric accumulator of a task kind ("multilabel" or "segmentation")."""
    if kind == "multilabel":
        return MultiLabelMetric(num_classes)
    if kind == "segmentation":
        return SegmentationMetric(num_classes)
    raise ValueError(f"unknown task kind {kind!r}")
