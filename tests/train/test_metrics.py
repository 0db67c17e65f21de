"""Metrics against scikit-learn on random cases."""

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, jaccard_score

from maestro.train.metrics import MultiLabelMetric, SegmentationMetric, make_metric


@pytest.mark.parametrize("seed", range(5))
def test_weighted_f1_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = 7
    target = (rng.random((200, k)) < rng.uniform(0.02, 0.6, k)).astype(np.float32)
    target[:, 3] = 0  # a class without support
    logits = rng.normal(size=(200, k)) + 2.0 * (target - 0.5)
    metric = MultiLabelMetric(k)
    for part in np.array_split(np.arange(200), 3):  # accumulated over batches
        metric.update(torch.from_numpy(logits[part]), torch.from_numpy(target[part]))
    pred = (1 / (1 + np.exp(-logits))) > 0.5
    got = metric.compute()
    expected = f1_score(target, pred, average="weighted", zero_division=0)
    assert got["weighted_f1"] == pytest.approx(expected, abs=1e-12)
    per_class = f1_score(target, pred, average=None, zero_division=0)
    np.testing.assert_allclose(got["f1"], per_class, atol=1e-12)
    # macro F1 over the classes seen in labels or predictions (IGNF/MAESTRO: 2TP + FP + FN > 0)
    seen = (target.sum(0) + pred.sum(0)) > 0
    assert seen[3] and got["macro_f1"] == pytest.approx(per_class[seen].mean(), abs=1e-12)


def test_a_probability_of_exactly_one_half_is_not_a_positive():
    metric = MultiLabelMetric(2)
    metric.update(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 1.0]]))  # sigmoid(0) = 0.5
    got = metric.compute()
    np.testing.assert_allclose(got["f1"], [0.0, 1.0])  # as IGNF/MAESTRO: p > 0.5, not >=


@pytest.mark.parametrize("seed", range(5))
def test_miou_matches_sklearn_on_present_classes(seed):
    rng = np.random.default_rng(seed)
    k = 6
    target = rng.integers(0, k, size=(4, 12, 12))
    target[target == 4] = 0  # class 4 absent from the ground truth
    target[rng.random(target.shape) < 0.1] = -1  # ignored pixels
    logits = rng.normal(size=(4, k, 12, 12))
    logits += (
        3.0
        * np.eye(k)[np.clip(target, 0, None)].transpose(0, 3, 1, 2)
        * (rng.random((4, 1, 12, 12)) < 0.7)
    )
    metric = SegmentationMetric(k)
    metric.update(torch.from_numpy(logits[:2]), torch.from_numpy(target[:2]))
    metric.update(torch.from_numpy(logits[2:]), torch.from_numpy(target[2:]))
    got = metric.compute()
    valid = target >= 0
    y, p = target[valid], logits.argmax(1)[valid]
    present = np.unique(y)
    per_class = jaccard_score(y, p, labels=list(range(k)), average=None, zero_division=0)
    assert got["miou"] == pytest.approx(per_class[present].mean(), abs=1e-12)
    assert got["overall_accuracy"] == pytest.approx((y == p).mean(), abs=1e-12)
    assert got["iou"][4] is None  # absent class is not averaged


def test_predicting_an_absent_class_still_costs():
    metric = SegmentationMetric(3)
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 2, 0, 0] = 5.0  # one pixel predicted as class 2, absent from the truth
    metric.update(logits, target)
    assert metric.compute()["miou"] == pytest.approx(0.75)  # class 0: 3 / (3 + 1)


def test_make_metric_rejects_unknown_kind():
    with pytest.raises(ValueError, match="unknown task kind"):
        make_metric("regression", 3)


def test_per_item_counts_add_up_to_the_totals():
    rng = np.random.default_rng(7)
    target = rng.integers(-1, 4, size=(6, 5, 5))
    logits = rng.normal(size=(6, 4, 5, 5))
    metric = SegmentationMetric(4, keep_items=True)
    metric.update(torch.from_numpy(logits), torch.from_numpy(target))
    items = np.concatenate(metric.items)
    assert items.shape == (6, 4, 4)
    np.testing.assert_array_equal(items.sum(0), metric.confusion.numpy())


@pytest.mark.parametrize("kind", ["multilabel", "segmentation"])
def test_bootstrap_interval(kind):
    rng = np.random.default_rng(3)

    def fill(n):
        metric = make_metric(kind, 5, keep_items=True)
        if kind == "multilabel":
            target = (rng.random((n, 5)) < 0.4).astype(np.float32)
            logits = rng.normal(size=(n, 5)) + 2.5 * (target - 0.5)
        else:
            target = rng.integers(0, 5, size=(n, 6, 6))
            logits = rng.normal(size=(n, 5, 6, 6)) + 2.0 * np.eye(5)[target].transpose(0, 3, 1, 2)
        metric.update(torch.from_numpy(logits), torch.from_numpy(target))
        return metric

    small, large = fill(40), fill(640)
    a, b = small.bootstrap(500, seed=1), small.bootstrap(500, seed=1)
    assert a == b and a["n"] == 500 and len(a["replicates"]) == 500  # reproducible
    point = small.compute()[small.key]
    lo, hi = a["ci95"]
    assert lo <= point <= hi and lo < hi
    wide = hi - lo
    lo2, hi2 = large.bootstrap(500, seed=1)["ci95"]
    assert hi2 - lo2 < wide / 2  # 16 x the items: about 4 x narrower


def test_items_without_any_label_are_an_error_not_a_score_of_zero():
    """All val/test fractions below the threshold, or every pixel ignored: no model can
    score, so the evaluation stops instead of writing 0.0."""
    ml = MultiLabelMetric(3)
    ml.update(torch.tensor([[5.0, -5.0, 0.0]]), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="no positive label: every model would score 0"):
        ml.compute()
    seg = SegmentationMetric(3, ignore_index=-1)
    seg.update(torch.randn(2, 3, 4, 4), torch.full((2, 4, 4), -1))
    with pytest.raises(ValueError, match="no labelled pixel"):
        seg.compute()


def test_miou_replicates_average_the_classes_of_the_whole_split():
    """A rare class seen in one item and never predicted (IoU 0) stays in every replicate's
    mean; before, replicates that missed the item dropped it and skewed the interval up."""
    seg = SegmentationMetric(3, keep_items=True)
    logits = torch.zeros(20, 3, 2, 2)
    logits[:, 0] = 1.0  # always class 0
    target = torch.zeros(20, 2, 2, dtype=torch.int64)
    target[:10, 0, 0] = 1  # class 1 in half the items, never predicted
    target[0, 1, 1] = 2  # class 2 in one item only
    seg.update(logits, target)
    point = seg.compute()["miou"]
    reps = np.asarray(seg.bootstrap(n=200)["replicates"])
    assert point == pytest.approx(np.mean([(80 - 11) / 80, 0.0, 0.0]))
    assert reps.max() < 1 / 3 + 1e-9  # three classes in every replicate: IoU_0 / 3 at most


def test_bootstrap_draws_whole_tiles_when_items_are_crops_of_tiles():
    """Crops of one tile share its difficulty: resampled one by one they give an interval
    several times too narrow; with their tiles given, whole tiles are drawn."""
    from maestro.train.metrics import bootstrap

    rng = np.random.default_rng(0)
    n_tiles, crops = 20, 16
    hard = rng.random(n_tiles) < 0.5  # per-tile difficulty
    correct = np.repeat(np.where(hard, 0.2, 0.9), crops) > rng.random(n_tiles * crops)
    items = np.stack([correct, ~correct], 1).astype(np.float64)  # [N, 2] right / wrong

    def acc(c):
        return c[:, 0] / c.sum(1)

    tiles = np.repeat(np.arange(n_tiles), crops)
    loose = bootstrap(items, acc, n=500, seed=0)
    grouped = bootstrap(items, acc, n=500, seed=0, groups=tiles)
    width = lambda r: np.subtract(*np.percentile(r, [97.5, 2.5]))  # noqa: E731
    assert width(grouped) > 2.5 * width(loose)
    # one crop per tile: drawing tiles is drawing items
    np.testing.assert_array_equal(
        bootstrap(items, acc, n=50, seed=1),
        bootstrap(items, acc, n=50, seed=1, groups=np.arange(len(items))),
    )
    seg = SegmentationMetric(2, keep_items=True)
    seg.update(torch.randn(4, 2, 2, 2), torch.randint(0, 2, (4, 2, 2)), torch.tensor([7, 7, 3, 3]))
    assert len(seg.bootstrap(n=10)["replicates"]) == 10
