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
    pred = (1 / (1 + np.exp(-logits))) >= 0.5
    got = metric.compute()
    expected = f1_score(target, pred, average="weighted", zero_division=0)
    assert got["weighted_f1"] == pytest.approx(expected, abs=1e-12)
    per_class = f1_score(target, pred, average=None, zero_division=0)
    np.testing.assert_allclose(got["f1"], per_class, atol=1e-12)
    assert got["macro_f1"] == pytest.approx(per_class[target.sum(0) > 0].mean(), abs=1e-12)


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
