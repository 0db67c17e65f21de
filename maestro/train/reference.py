"""Reference rows that every table shows beside the models: what a number must beat.

- ``trivial``: constant predictors fitted on the train labels. Multi-label: the labels whose
  train prior exceeds 0.5 (the majority strategy) and every label; segmentation: the majority
  class of the train pixels. The headline is the strategy that scores best on val; the test
  score of every strategy is recorded (``strategies``), and the largest one is the floor a
  model must beat.
- ``linear``: a linear model on raw input features (:mod:`maestro.train.features`): logistic
  regression per tile (multi-label, one sigmoid per class) or per pixel (softmax), on
  standardized features, L2 strength chosen on val from :data:`L2_GRID`, fitted full-batch
  with L-BFGS (deterministic).

Test metrics use the same metric code and the same bootstrap draws (same items, same order,
same seed) as the trained models, so a model's replicates and a reference's are paired.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from maestro.data.torch_dataset import MaestroDataset
from maestro.datasets.spec import DatasetSpec
from maestro.train.features import SplitFeatures, split_features
from maestro.train.metrics import make_metric
from maestro.utils.atomic import write_json

log = logging.getLogger(__name__)

KINDS = ("trivial", "linear")
#: L2 strengths tried for the linear model (chosen on val).
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
#: Train pixels the per-pixel linear model is fitted on (a seeded subsample).
MAX_TRAIN_PIXELS = 200_000
BOOTSTRAP_SAMPLES = 1000
#: Logit magnitude of a constant prediction.
CONSTANT_LOGIT = 10.0


def score(
    logits_of: Callable[[int, int], torch.Tensor],
    y: np.ndarray,
    dataset: DatasetSpec,
    bootstrap: int = 0,
    batch: int = 64,
    tiles: np.ndarray | None = None,
) -> dict[str, Any]:
    """Metrics of the logits ``logits_of(start, stop)`` of items ``start:stop`` against ``y``
    (``tiles``: each item's tile, so that the bootstrap draws whole tiles as the models')."""
    task = dataset.task
    metric = make_metric(task.kind, task.num_classes, keep_items=bootstrap > 0)
    for s in range(0, len(y), batch):
        e = min(s + batch, len(y))
        groups = None if tiles is None else torch.from_numpy(tiles[s:e])
        metric.update(logits_of(s, e), torch.from_numpy(y[s:e]), groups)
    out = {**metric.compute(), "items": len(y)}
    if bootstrap:
        out["bootstrap"] = metric.bootstrap(bootstrap)
    return out


# --- trivial ------------------------------------------------------------------------------


def constant_strategies(train: SplitFeatures, dataset: DatasetSpec) -> dict[str, np.ndarray]:
    """Constant logits per strategy: ``(K,)`` (multi-label) or ``(K,)`` class scores."""
    k = dataset.task.num_classes
    if dataset.task.kind == "multilabel":
        prior = train.y.mean(0)
        return {
            "prior": np.where(prior > 0.5, CONSTANT_LOGIT, -CONSTANT_LOGIT),
            "all": np.full(k, CONSTANT_LOGIT),
        }
    labels = train.y[train.y >= 0].astype(np.int64)
    counts = np.bincount(labels, minlength=k)
    return {"majority": np.where(np.arange(k) == counts.argmax(), CONSTANT_LOGIT, 0.0)}


def _constant_logits(const: np.ndarray, y: np.ndarray, kind: str) -> Callable:
    c = torch.from_numpy(np.asarray(const, dtype=np.float32))

    def logits_of(s: int, e: int) -> torch.Tensor:
        if kind == "multilabel":
            return c.expand(e - s, -1)
        return c[None, :, None, None].expand(e - s, -1, *y.shape[1:])

    return logits_of


def run_trivial(splits: dict[str, SplitFeatures], dataset: DatasetSpec) -> dict[str, Any]:
    """Every constant strategy on val and test; the headline is the best on val."""
    kind = dataset.task.kind
    results = {}
    for name, const in constant_strategies(splits["train"], dataset).items():
        results[name] = {
            split: score(
                _constant_logits(const, splits[split].y, kind),
                splits[split].y,
                dataset,
                bootstrap=BOOTSTRAP_SAMPLES if split == "test" else 0,
                tiles=splits[split].tiles,
            )
            for split in ("val", "test")
        }
    key = dataset.task.metric
    best = max(results, key=lambda n: results[n]["val"][key])
    floor = max(results, key=lambda n: results[n]["test"][key])
    return {
        "strategy": best,
        "val": results[best]["val"],
        "test": results[best]["test"],
        "strategies": {
            n: {"val": r["val"][key], "test": r["test"][key]} for n, r in results.items()
        },
        # the strongest constant on test: the floor every model must clear (a conservative check)
        "floor": {"strategy": floor, "test": results[floor]["test"]},
    }


# --- linear -------------------------------------------------------------------------------


def _pixels(sf: SplitFeatures) -> tuple[np.ndarray, np.ndarray]:
    """``(N, F, h, w)`` features and ``(N, h, w)`` labels -> valid pixels ``(P, F)``, ``(P,)``."""
    x = np.moveaxis(sf.x, 1, -1).reshape(-1, sf.x.shape[1])
    y = sf.y.reshape(-1)
    keep = y >= 0
    return x[keep], y[keep]


def fit_linear(
    x: np.ndarray, y: np.ndarray, kind: str, num_classes: int, l2: float, max_iter: int = 200
) -> torch.nn.Linear:
    """Logistic regression on standardized ``x`` ``(N, F)`` (the layer includes the scaling).

    Multi-label ``y`` ``(N, K)``: one sigmoid per class; else class ids ``(N,)``: softmax.
    """
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
    mean, std = xt.mean(0), xt.std(0).clamp(min=1e-6)
    z = (xt - mean) / std
    yt = torch.from_numpy(y)
    layer = torch.nn.Linear(z.shape[1], num_classes)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    opt = torch.optim.LBFGS(
        layer.parameters(), lr=1.0, max_iter=max_iter, history_size=20,
        line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure() -> torch.Tensor:
        opt.zero_grad()
        out = layer(z)
        if kind == "multilabel":
            loss = F.binary_cross_entropy_with_logits(out, yt.float())
        else:
            loss = F.cross_entropy(out, yt.long())
        loss = loss + l2 * layer.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    # fold the standardization into the layer: W (x - m) / s + b
    with torch.no_grad():
        w = layer.weight / std
        layer.bias -= (w * mean).sum(1)
        layer.weight.copy_(w)
    return layer


def _linear_logits(layer: torch.nn.Linear, sf: SplitFeatures, kind: str) -> Callable:
    def logits_of(s: int, e: int) -> torch.Tensor:
        with torch.no_grad():
            x = torch.from_numpy(sf.x[s:e])
            if kind == "multilabel":
                return layer(x)
            return torch.einsum("bfhw,kf->bkhw", x, layer.weight) + layer.bias[:, None, None]

    return logits_of


def run_linear(
    splits: dict[str, SplitFeatures], dataset: DatasetSpec, seed: int = 0
) -> dict[str, Any]:
    """Fit for every L2 strength of :data:`L2_GRID`, keep the best on val, test it."""
    task = dataset.task
    if task.kind == "multilabel":
        x, y = splits["train"].x, splits["train"].y
    else:
        x, y = _pixels(splits["train"])
        if len(y) > MAX_TRAIN_PIXELS:
            keep = np.random.default_rng(seed).choice(len(y), MAX_TRAIN_PIXELS, replace=False)
            x, y = x[np.sort(keep)], y[np.sort(keep)]
    key = task.metric
    best: dict[str, Any] = {}
    for l2 in L2_GRID:
        layer = fit_linear(x, y, task.kind, task.num_classes, l2)
        val = score(_linear_logits(layer, splits["val"], task.kind), splits["val"].y, dataset)
        log.info("linear %s: l2 %g -> val %s %.4f", dataset.name, l2, key, val[key])
        if not best or val[key] > best["val"][key]:
            best = {"l2": l2, "val": val, "layer": layer}
    test = score(
        _linear_logits(best["layer"], splits["test"], task.kind), splits["test"].y, dataset,
        bootstrap=BOOTSTRAP_SAMPLES, tiles=splits["test"].tiles,
    )  # fmt: skip
    return {
        "l2": best["l2"],
        "val": best["val"],
        "test": test,
        "features": len(splits["train"].names),
        "train_samples": len(y),
    }


def run_reference(
    kind: str,
    store_path: str | Path,
    dataset: DatasetSpec,
    out: str | Path,
    meta: dict[str, Any] | None = None,
    dates: int | None = None,
) -> dict[str, Any]:
    """Compute a reference row (``trivial`` or ``linear``) and write its ``metrics.json``."""
    if kind not in KINDS:
        raise ValueError(f"unknown reference {kind!r}; known: {KINDS}")
    if dataset.task is None:
        raise ValueError(f"{dataset.name} has no task: no reference row")
    splits = {}
    for split in ("train", "val", "test"):
        ds = MaestroDataset(store_path, dataset, (split,), train=False)
        if len(ds) == 0:
            raise ValueError(f"{store_path}: the {split} split of {dataset.name} is empty")
        splits[split] = split_features(ds, dataset.task.kind, dates=dates)
    body = run_trivial(splits, dataset) if kind == "trivial" else run_linear(splits, dataset)
    metrics = {
        "dataset": dataset.name,
        "mode": kind,
        "metric": dataset.task.metric,
        **body,
        "train_items": len(splits["train"].y),
    } | dict(meta or {})
    write_json(out, metrics)
    return metrics
