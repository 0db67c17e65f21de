"""Reference rows: constant strategies, the linear raw-feature model, their metrics files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maestro.data.torch_dataset import MaestroDataset
from maestro.train.features import SplitFeatures, split_features
from maestro.train.metrics import bootstrap
from maestro.train.reference import (
    constant_strategies,
    fit_linear,
    run_linear,
    run_reference,
    run_trivial,
)


def _multilabel(n: int, rng: np.random.Generator) -> SplitFeatures:
    """Label 0 almost always on, label 1 set by the sign of feature 0, label 2 rare."""
    x = rng.standard_normal((n, 3)).astype(np.float32)
    y = np.stack([rng.random(n) < 0.9, x[:, 0] > 0, rng.random(n) < 0.05], 1).astype(np.float32)
    return SplitFeatures(x, y, ["a", "b", "c"])


class _Task:
    kind, num_classes, metric = "multilabel", 3, "weighted_f1"


class _Dataset:
    name, task = "toy", _Task()


def test_trivial_strategies_and_the_floor():
    rng = np.random.default_rng(0)
    splits = {s: _multilabel(200, rng) for s in ("train", "val", "test")}
    consts = constant_strategies(splits["train"], _Dataset())
    # the prior strategy predicts exactly the labels seen in more than half of train
    assert (consts["prior"] > 0).tolist() == [True, False, False]
    assert (consts["all"] > 0).all()
    out = run_trivial(splits, _Dataset())
    best_val = max(out["strategies"], key=lambda n: out["strategies"][n]["val"])
    assert out["strategy"] == best_val
    assert out["floor"]["test"]["weighted_f1"] == max(v["test"] for v in out["strategies"].values())
    assert len(out["floor"]["test"]["bootstrap"]["replicates"]) == 1000


def test_linear_model_learns_a_separable_label():
    rng = np.random.default_rng(1)
    splits = {s: _multilabel(300, rng) for s in ("train", "val", "test")}
    out = run_linear(splits, _Dataset())
    trivial = run_trivial(splits, _Dataset())
    assert out["test"]["weighted_f1"] > trivial["floor"]["test"]["weighted_f1"] + 0.1
    assert out["l2"] in (1e-4, 1e-3, 1e-2, 1e-1)


def test_fit_linear_folds_the_standardization_into_the_layer():
    rng = np.random.default_rng(2)
    x = rng.normal(50.0, 10.0, (400, 2)).astype(np.float32)  # far from zero mean, unit scale
    y = (x[:, 0] - 50.0 > 0).astype(np.int64)
    layer = fit_linear(x, y, "segmentation", 2, l2=1e-4)
    import torch

    pred = layer(torch.from_numpy(x)).argmax(1).numpy()
    assert (pred == y).mean() > 0.97


def test_bootstrap_replicates_are_paired_across_runs():
    # two models scored on the same items draw the same resamples (same seed, same count)
    items = np.random.default_rng(3).integers(0, 5, (30, 2)).astype(np.float64)
    a = bootstrap(items, lambda c: c[:, 0], n=50)
    b = bootstrap(items * 2, lambda c: c[:, 0], n=50)
    np.testing.assert_allclose(b, 2 * a)


def test_run_reference_writes_metrics_on_a_store(small_stores, catalog_small, tmp_path):
    ds = catalog_small.dataset("treesatai_ts")
    out = tmp_path / "trivial" / "metrics.json"
    m = run_reference(
        "trivial", small_stores["treesatai_ts"], ds, out, meta={"seed": 0, "cell": None}
    )
    saved = json.loads(out.read_text())
    assert saved["mode"] == "trivial" and saved["cell"] is None
    assert saved["test"]["items"] == len(
        MaestroDataset(small_stores["treesatai_ts"], ds, ("test",), False)
    )
    assert 0.0 <= m["floor"]["test"]["weighted_f1"] <= 1.0
    lin = run_reference("linear", small_stores["treesatai_ts"], ds, tmp_path / "linear.json")
    assert lin["features"] == sum(2 * m.num_dates * len(m.model_bands) for m in ds.modalities)
    with pytest.raises(ValueError, match="unknown reference"):
        run_reference("knn", small_stores["treesatai_ts"], ds, tmp_path / "x.json")


def test_split_features_shapes(small_stores, catalog_small):
    ds = catalog_small.dataset("pastis_hd")
    data = MaestroDataset(small_stores["pastis_hd"], ds, ("val",), train=False)
    sf = split_features(data, "segmentation")
    item = data[0]
    h, w = item["label"].shape
    assert sf.x.shape == (len(data), len(sf.names), h, w)
    assert sf.y.shape == (len(data), h, w)
    one = split_features(data, "segmentation", dates=1)
    assert one.x.shape[1] == sum(len(m.model_bands) for m in ds.modalities)
    with pytest.raises(ValueError, match="evaluation-mode"):
        split_features(
            MaestroDataset(small_stores["pastis_hd"], ds, ("val",), train=True), "segmentation"
        )
