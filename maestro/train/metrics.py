"""Downstream metrics, accumulated over an epoch, with bootstrap intervals.

The metrics are those of IGNF/MAESTRO's ``maestro/train/metric.py``. Values are fractions in
[0, 1]; tables print them in %. Each metric is a function of summed per-item counts (TP/FP/FN
per class, or a confusion matrix), so a bootstrap replicate is the same formula applied to
counts summed over items drawn with replacement.
"""

from __future__ import annotations

import numpy as np
import torch

from maestro.train.distributed import Dist, gather, sum_


def f1_scores(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class F1, support-weighted F1 (the paper's wF1) and macro F1.

    Macro F1 averages the classes seen in the labels or the predictions (``2TP + FP + FN >
    0``, as IGNF/MAESTRO and scikit-learn): a class predicted but absent counts with F1 0.
    Inputs ``(..., K)``; outputs ``f1`` ``(..., K)`` and ``weighted_f1``, ``macro_f1`` ``(...)``.
    """
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(denom, dtype=np.float64), where=denom > 0)
    support = tp + fn
    total = support.sum(-1)
    weighted = np.divide(
        (f1 * support).sum(-1), total, out=np.zeros_like(total, np.float64), where=total > 0
    )
    present = denom > 0
    n_present = present.sum(-1)
    macro = np.divide(
        (f1 * present).sum(-1), n_present, out=np.zeros(n_present.shape), where=n_present > 0
    )
    return {"f1": f1, "weighted_f1": weighted, "macro_f1": macro}


def iou_scores(confusion: np.ndarray, present: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-class IoU and F1, mIoU and mean F1 over classes present in the ground truth, and
    overall accuracy, from confusion matrices ``(..., K, K)`` indexed ``[true, pred]``.

    ``present`` ``(K,)`` fixes the classes averaged (a bootstrap replicate averages the
    classes of the whole split, not those its draw happens to contain).
    """
    c = confusion.astype(np.float64)
    tp = np.diagonal(c, axis1=-2, axis2=-1)
    fp = c.sum(-2) - tp
    fn = c.sum(-1) - tp
    present = (tp + fn) > 0 if present is None else np.broadcast_to(present, tp.shape)
    iou = np.divide(tp, tp + fp + fn, out=np.zeros_like(tp), where=(tp + fp + fn) > 0)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
    n_present = present.sum(-1)
    total = c.sum((-2, -1))

    def mean_present(v: np.ndarray) -> np.ndarray:
        return np.divide(
            (v * present).sum(-1), n_present, out=np.zeros(n_present.shape), where=n_present > 0
        )

    return {
        "iou": iou,
        "present": present,
        "miou": mean_present(iou),
        "mean_f1": mean_present(f1),
        "overall_accuracy": np.divide(
            tp.sum(-1), total, out=np.zeros(total.shape), where=total > 0
        ),
    }


def bootstrap(
    items: np.ndarray,
    statistic,
    n: int = 1000,
    seed: int = 0,
    block: int = 100,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """``n`` bootstrap replicates of ``statistic(summed counts)`` over items drawn with replacement.

    Args:
        items: ``(N, ...)`` per-item counts.
        statistic: maps summed counts ``(R, ...)`` to ``(R,)`` values.
        n: replicates; ``seed``: their RNG seed; ``block``: replicates per matrix product.
        groups: ``(N,)`` the tile of each item: the crops of one tile are correlated, so whole
            tiles are drawn (their counts summed first); None: every item on its own.
    """
    if groups is not None:
        _, inverse = np.unique(np.asarray(groups), return_inverse=True)
        summed = np.zeros((inverse.max() + 1, *items.shape[1:]), dtype=np.float64)
        np.add.at(summed, inverse, items)
        items = summed
    rng = np.random.default_rng(seed)
    flat = items.reshape(len(items), -1).astype(np.float64)
    out = []
    for start in range(0, n, block):
        r = min(block, n - start)
        draws = rng.multinomial(len(items), np.full(len(items), 1.0 / len(items)), size=r)  # [R, N]
        out.append(statistic((draws @ flat).reshape(r, *items.shape[1:])))
    return np.concatenate(out)


def _interval(replicates: np.ndarray) -> dict:
    lo, hi = np.percentile(replicates, [2.5, 97.5])
    return {
        "n": len(replicates),
        "ci95": [float(lo), float(hi)],
        "replicates": np.round(replicates, 6).tolist(),
    }


def _groups(groups: torch.Tensor | None, n: int) -> np.ndarray:
    """The tiles of a batch's ``n`` items, -1 when not given."""
    if groups is None:
        return np.full(n, -1, dtype=np.int64)
    return groups.detach().cpu().numpy().astype(np.int64).reshape(n)


def _tiles(groups: list[np.ndarray]) -> np.ndarray | None:
    """The items' tiles when every item has one (else items are drawn on their own)."""
    g = np.concatenate(groups) if groups else np.zeros(0, np.int64)
    return g if len(g) and bool((g >= 0).all()) else None


_NO_LABEL = (
    "the evaluated items hold {what}: every model would score 0 on them (labels in another "
    "unit, or a split of ignored pixels only?)"
)


class MultiLabelMetric:
    """Multi-label F1 from per-class TP/FP/FN counts at a sigmoid threshold of 0.5.

    ``weighted_f1 = sum_l F1_l * s_l / sum_l s_l`` with support ``s_l = TP_l + FN_l`` (the
    paper's wF1); ``macro_f1`` averages the classes with ``2TP + FP + FN > 0``. With
    ``keep_items`` the per-item counts are kept for :meth:`bootstrap`.
    """

    key = "weighted_f1"

    def __init__(self, num_classes: int, keep_items: bool = False) -> None:
        self.counts = torch.zeros(3, num_classes, dtype=torch.float64)  # TP, FP, FN
        self.keep_items = keep_items
        self.items: list[np.ndarray] = []
        self.groups: list[np.ndarray] = []  # per batch: the items' tiles (-1: unknown)

    def update(
        self, logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor | None = None
    ) -> None:
        """Add a batch: logits ``(B, K)``, target ``(B, K)`` in {0, 1}; ``groups`` ``(B,)``
        the items' tiles (bootstrap draws whole tiles)."""
        pred = torch.sigmoid(logits.detach().float()) > 0.5  # as IGNF/MAESTRO (not >=)
        true = target.detach() > 0.5
        per_item = torch.stack([pred & true, pred & ~true, ~pred & true], 1).cpu()  # [B, 3, K]
        self.counts += per_item.sum(0).double()
        if self.keep_items:
            self.items.append(per_item.numpy().astype(np.uint8))
            self.groups.append(_groups(groups, len(per_item)))

    def reduce(self, d: Dist) -> None:
        """Sum the counts of every rank (after each rank saw its share of the split)."""
        self.counts = sum_(self.counts, d)
        if self.keep_items:
            self.items = [np.concatenate(parts) for parts in gather(self.items, d) if parts]
            self.groups = [np.concatenate(parts) for parts in gather(self.groups, d) if parts]

    def compute(self) -> dict[str, float]:
        """``weighted_f1``, ``macro_f1`` and per-class ``f1``."""
        s = f1_scores(*self.counts.numpy())
        if float(self.counts[0].sum() + self.counts[2].sum()) == 0:
            raise ValueError(_NO_LABEL.format(what="no positive label"))
        return {
            "weighted_f1": float(s["weighted_f1"]),
            "macro_f1": float(s["macro_f1"]),
            "f1": s["f1"].tolist(),
        }

    def bootstrap(self, n: int = 1000, seed: int = 0) -> dict:
        """95 % interval of wF1 over test items resampled with replacement."""
        items = np.concatenate(self.items)
        reps = bootstrap(
            items, lambda c: f1_scores(c[:, 0], c[:, 1], c[:, 2])["weighted_f1"], n, seed,
            groups=_tiles(self.groups),
        )  # fmt: skip
        return _interval(reps)


class SegmentationMetric:
    """Confusion matrix over valid pixels; IoU and F1 per class.

    ``miou`` averages IoU over the classes present in the ground truth (TP + FN > 0);
    pixels labelled ``ignore_index`` are excluded; predictions of classes absent from the
    ground truth still count as false positives of those classes and errors of the true class.
    With ``keep_items`` one confusion matrix per item is kept for :meth:`bootstrap`.
    """

    key = "miou"

    def __init__(self, num_classes: int, ignore_index: int = -1, keep_items: bool = False) -> None:
        self.k = num_classes
        self.ignore_index = ignore_index
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)  # [true, pred]
        self.keep_items = keep_items
        self.items: list[np.ndarray] = []
        self.groups: list[np.ndarray] = []  # per batch: the items' tiles (-1: unknown)

    def update(
        self, logits: torch.Tensor, target: torch.Tensor, groups: torch.Tensor | None = None
    ) -> None:
        """Add a batch: logits ``(B, K, H, W)``, target ``(B, H, W)`` class ids; ``groups``
        ``(B,)`` the items' tiles (bootstrap draws whole tiles)."""
        k = self.k
        pred = logits.detach().argmax(1).flatten(1).cpu()
        true = target.detach().flatten(1).cpu()
        valid = true != self.ignore_index
        item = torch.arange(len(true))[:, None].expand_as(true)
        idx = (item * k * k + true.clamp(min=0) * k + pred)[valid]
        per_item = torch.bincount(idx, minlength=len(true) * k * k).reshape(len(true), k, k)
        self.confusion += per_item.sum(0)
        if self.keep_items:
            self.items.append(per_item.numpy().astype(np.int32))
            self.groups.append(_groups(groups, len(per_item)))

    def reduce(self, d: Dist) -> None:
        """Sum the confusion matrices of every rank."""
        self.confusion = sum_(self.confusion, d)
        if self.keep_items:
            self.items = [np.concatenate(parts) for parts in gather(self.items, d) if parts]
            self.groups = [np.concatenate(parts) for parts in gather(self.groups, d) if parts]

    def compute(self) -> dict[str, float]:
        """``miou``, ``overall_accuracy``, ``mean_f1`` and per-class ``iou``."""
        s = iou_scores(self.confusion.numpy())
        if not s["present"].any():
            raise ValueError(_NO_LABEL.format(what="no labelled pixel"))
        return {
            "miou": float(s["miou"]),
            "overall_accuracy": float(s["overall_accuracy"]),
            "mean_f1": float(s["mean_f1"]),
            "iou": [float(v) if p else None for v, p in zip(s["iou"], s["present"], strict=True)],
        }

    def bootstrap(self, n: int = 1000, seed: int = 0) -> dict:
        """95 % interval of mIoU over test items (crops) resampled with replacement."""
        present = iou_scores(self.confusion.numpy())["present"]  # the split's classes
        reps = bootstrap(
            np.concatenate(self.items), lambda c: iou_scores(c, present)["miou"], n, seed,
            groups=_tiles(self.groups),
        )  # fmt: skip
        return _interval(reps)


def make_metric(
    kind: str, num_classes: int, keep_items: bool = False
) -> MultiLabelMetric | SegmentationMetric:
    """The metric accumulator of a task kind ("multilabel" or "segmentation")."""
    if kind == "multilabel":
        return MultiLabelMetric(num_classes, keep_items=keep_items)
    if kind == "segmentation":
        return SegmentationMetric(num_classes, keep_items=keep_items)
    raise ValueError(f"unknown task kind {kind!r}")
