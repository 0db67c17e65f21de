"""Probing, fine-tuning and supervised training from scratch on a task (IGNF/MAESTRO recipe).

- ``probe``: encoder frozen (no gradients, not in the optimizer), head trained; last epoch kept.
- ``finetune``: everything trained from the probe result; evaluation with EMA weights;
  early stopping on the validation metric; the best epoch is tested.
- ``scratch``: the supervised ViT baseline: same architecture and recipe as ``finetune``,
  from random initialization.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from maestro.baselines.build import BaselineSpec, baseline_record, build_baseline, load_baseline
from maestro.data.torch_dataset import MaestroDataset
from maestro.datasets.spec import DatasetSpec
from maestro.model import DownstreamModel, MAEConfig
from maestro.train import checkpoint, distributed
from maestro.train.build import build_mae, label_px, load_for_downstream, model_record
from maestro.train.config import PhaseConfig
from maestro.train.ema import EMA, ema_momentum
from maestro.train.feature_cache import CachedSplit, FeatureCache, encode_split
from maestro.train.loop import Resume, check_loss, progress, steps_per_epoch, write_csv
from maestro.train.metrics import make_metric
from maestro.train.optim import build_optimizer, build_scheduler, scaled_lr
from maestro.train.runtime import Runtime, seed_everything, to_device
from maestro.train.tensorboard import ScalarLog
from maestro.train.transfer import check_init_labels
from maestro.utils.atomic import atomic_path, write_json

log = logging.getLogger(__name__)

MODES = ("probe", "finetune", "scratch")
#: Bootstrap resamples of the test items behind each test metric's 95 % interval.
BOOTSTRAP_SAMPLES = 1000
#: Test items whose predictions are saved (``predictions.npz``), for the figures and audits.
PREDICTION_EXAMPLES = 4
#: Outputs of a downstream job, relative to its output directory.
OUTPUTS = ("model.pt", "history.csv", "metrics.json", "predictions.npz")


def task_loss(logits: torch.Tensor, label: torch.Tensor, kind: str) -> torch.Tensor:
    """BCE-with-logits (multi-label) or cross-entropy ignoring label -1 (segmentation)."""
    if kind == "multilabel":
        return F.binary_cross_entropy_with_logits(logits.float(), label.float())
    return F.cross_entropy(logits.float(), label.long(), ignore_index=-1)


@torch.no_grad()
def evaluate(
    model: DownstreamModel,
    ds: MaestroDataset,
    dataset: DatasetSpec,
    batch: int,
    runtime: Runtime,
    bootstrap: int = 0,
    cached: CachedSplit | None = None,
) -> dict:
    """Metrics of ``model`` over a whole split (every item once, in order, deterministic crops);
    under DDP each rank evaluates its share and the counts are summed. ``bootstrap > 0`` adds
    a 95 % interval of the headline metric from that many resamples of the items. ``cached``
    (the split's frozen-encoder features) evaluates only the head on them."""
    model.eval()
    d = runtime.dist
    metric = make_metric(dataset.task.kind, dataset.task.num_classes, keep_items=bootstrap > 0)
    totals = torch.zeros(2, dtype=torch.float64)  # loss sum, items

    def outputs():
        if cached is not None:
            for s in range(0, len(cached), batch):
                feats, label = cached.batch(
                    torch.arange(s, min(s + batch, len(cached))), runtime.device
                )
                with runtime.autocast():
                    yield model.head(feats), label, None
            return
        for b in distributed.eval_loader(ds, batch, d):
            b = to_device(b, runtime.device)
            with runtime.autocast():
                yield model(b), b["label"], b["tile"]

    for logits, label, tiles in outputs():
        n = len(label)
        totals += torch.tensor([float(task_loss(logits, label, dataset.task.kind)) * n, n])
        metric.update(logits, label, tiles)  # the bootstrap draws whole tiles
    metric.reduce(d)
    loss_sum, n = distributed.sum_(totals, d).tolist()
    out = {**metric.compute(), "loss": loss_sum / max(n, 1), "items": int(n)}
    if bootstrap:
        out["bootstrap"] = metric.bootstrap(bootstrap)
    return out


@torch.no_grad()
def prediction_examples(
    model: DownstreamModel, ds: MaestroDataset, dataset: DatasetSpec, n: int, runtime: Runtime
) -> dict[str, np.ndarray]:
    """The first ``n`` test items' labels and predictions, with the reference modality's first
    date ``image (n, C, H, W)`` (segmentation; else the first input modality), its ``bands``
    and the task's ``classes``.

    Segmentation: ``label`` and ``prediction`` class maps ``(n, h, w)``. Multi-label
    classification: ``label`` multi-hot ``(n, K)``, ``score`` sigmoid probabilities ``(n, K)``
    and ``prediction`` = score > 0.5 ``(n, K)``.
    """
    model.eval()
    items = [ds[k] for k in range(min(n, len(ds)))]
    batch = to_device(torch.utils.data.default_collate(items), runtime.device)
    ref = dataset.task.ref_modality or next(iter(batch["inputs"]))
    with runtime.autocast():
        logits = model(batch).float()
    spec = dataset.store.modality(ref)
    out = {
        "image": batch["inputs"][ref][:, 0].float().cpu().numpy(),
        "bands": np.array(spec.model_bands),
        "classes": np.array(dataset.task.classes),
    }
    if dataset.task.colours is not None:  # the dataset's legend colours, for the maps
        out["colours"] = np.array(dataset.task.colours)
    if dataset.task.kind == "segmentation":
        out["label"] = batch["label"].cpu().numpy().astype(np.int16)
        out["prediction"] = logits.argmax(1).cpu().numpy().astype(np.int16)
    else:
        score = torch.sigmoid(logits)
        out["label"] = batch["label"].cpu().numpy().astype(np.int8)
        out["score"] = score.cpu().numpy().astype(np.float32)
        out["prediction"] = (score > 0.5).cpu().numpy().astype(np.int8)
    return out


def _train_batches(
    step_model: torch.nn.Module,
    train_ds: MaestroDataset,
    batch: int,
    seed: int,
    epoch: int,
    phase: PhaseConfig,
    runtime: Runtime,
    frozen: bool,
    cache: FeatureCache | None,
) -> Iterator[tuple[Callable[[], torch.Tensor], torch.Tensor]]:
    """Training batches of an epoch as ``(forward, label)``: the model on dataset batches, or
    the head alone on cached frozen features (probe with ``feature_cache``)."""
    gen_seed = seed * 100_003 + epoch
    if cache is not None:
        head = step_model.head
        for feats, label in cache.batches(epoch, batch, gen_seed, runtime.device):
            yield partial(head, feats), label
        return
    d = runtime.dist
    loader = distributed.train_loader(train_ds, batch, seed, epoch, phase.num_workers, d, gen_seed)
    for b in loader:
        b = to_device(b, runtime.device)
        yield partial(step_model, b, frozen=frozen), b["label"]


def build_model(
    mode: str,
    dataset: DatasetSpec,
    init: str | Path | None,
    model_cfg: MAEConfig | None,
    random_init: bool = False,
) -> tuple[DownstreamModel, dict]:
    """The starting model of a mode: a pretrained MAE with a new head (probe, or fine-tune
    without probe), a probe result (fine-tune) or random weights (scratch, and the probe of a
    random-init encoder with ``random_init``). Returns the model and its architecture record."""
    if mode == "scratch" or random_init:
        if model_cfg is None:
            raise ValueError(f"{mode} from random weights needs a model config")
        if init is not None:
            raise ValueError(f"{mode} from random weights takes no initial checkpoint")
        model = DownstreamModel(build_mae(model_cfg, dataset), dataset.task, label_px(dataset))
        return model, {"model_cfg": model_cfg, "norm_groups": None}
    if init is None:
        raise ValueError(f"{mode} needs an initial checkpoint")
    model, record = load_for_downstream(init, dataset, head_cfg=model_cfg)
    cfg = MAEConfig(**record["model_cfg"])
    groups = {k: tuple(tuple(g) for g in v) for k, v in record.get("norm_groups", {}).items()}
    return model, {
        "model_cfg": cfg,
        "norm_groups": groups or None,
        "init_load": record.get("init_load"),
        "pretrained_on": record.get("dataset") if record.get("kind") == "mae" else None,
    }


def run_downstream(
    mode: str,
    store_path: str | Path,
    dataset: DatasetSpec,
    phase: PhaseConfig,
    seed: int,
    out_dir: str | Path,
    runtime: Runtime,
    init: str | Path | None = None,
    model_cfg: MAEConfig | None = None,
    work_dir: str | Path | None = None,
    fingerprint: str = "",
    meta: Mapping[str, Any] | None = None,
    random_init: bool = False,
    baseline: BaselineSpec | None = None,
) -> dict[str, Any]:
    """Train ``mode`` on the train split, select on val, test; write :data:`OUTPUTS`.

    ``random_init`` (probe only) probes a randomly initialised encoder of ``model_cfg``'s
    architecture: the floor that pretraining must lift a probe above. ``baseline`` trains a
    baseline foundation model instead of MAESTRO (probe: from its spec; fine-tune: from the
    probe's ``init``, or from the spec without one).

    Under torchrun every rank trains on its share of each epoch (DDP); rank 0 writes.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; known: {MODES}")
    d = runtime.dist
    seed_everything(seed)
    out_dir = Path(out_dir)
    if random_init and mode != "probe":
        raise ValueError(f"random_init applies to the probe, not to {mode!r}")
    if baseline is not None:
        if mode == "scratch" or random_init:
            raise ValueError(f"a baseline runs probe and finetune only, not {mode!r}")
        if init is not None:
            model, baseline = load_baseline(init, dataset)
        else:
            model = build_baseline(baseline, dataset)
        rec: dict[str, Any] = {}
    else:
        model, rec = build_model(mode, dataset, init, model_cfg, random_init)
        if meta is not None and init is not None:
            check_init_labels(init, rec, dataset, model_cfg, meta)
    model.to(runtime.device)
    frozen = mode == "probe"
    if frozen:
        for p in model.encoder.parameters():
            p.requires_grad_(False)

    mem = phase.in_memory
    train_ds = MaestroDataset(store_path, dataset, ("train",), True, seed, in_memory=mem)
    val_ds = MaestroDataset(store_path, dataset, ("val",), False, seed, in_memory=mem)
    test_ds = MaestroDataset(store_path, dataset, ("test",), False, seed, in_memory=mem)
    train_ds.require(d.world, f"{mode} (one training item per rank)")
    val_ds.require(1, f"{mode} (the epoch kept is the best on val)")
    test_ds.require(1, f"{mode} (the test metrics)")
    batch = min(phase.batch_size, len(train_ds) // d.world)
    eval_batch = phase.eval_batch_size or batch
    steps = steps_per_epoch(len(train_ds) // d.world, batch, phase.max_steps_per_epoch)
    lr_max = scaled_lr(phase.base_lr, batch * d.world)
    opt = build_optimizer(model, lr_max, phase.betas, phase.weight_decay)
    sched = build_scheduler(
        opt, phase.epochs * steps, phase.warmup_frac, phase.warmup_div, phase.final_factor
    )
    ema = EMA(model, ema_momentum(phase.epochs)) if phase.ema else None
    if runtime.compile and hasattr(model.encoder, "compile_blocks"):
        # after the EMA copy: a compiled module must not be deep-copied
        model.encoder.compile_blocks()
    step_model = distributed.wrap(model, runtime.device, d)
    kind, key = dataset.task.kind, dataset.task.metric
    cache, val_cache = None, None
    if frozen and phase.feature_cache and not d.active:
        cache = FeatureCache(model.encoder, train_ds, phase.feature_cache, eval_batch, runtime)
        val_cache = encode_split(model.encoder, val_ds, eval_batch, runtime)
    log.info(
        "%s %s: %d train items, batch %d x %d ranks, %d steps/epoch, lr_max %.3g",
        mode, dataset.name, len(train_ds), batch, d.world, steps, lr_max,
    )  # fmt: skip

    resume = Resume(work_dir, fingerprint, d)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"score": -1.0, "epoch": -1, "state": None, "val": None}
    start, bad_epochs = 0, 0
    if (state := resume.load()) is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        resume.restore_rng(state)
        history, best, bad_epochs = state["history"], state["best"], state["bad_epochs"]
        start = state["epoch"] + 1

    tb = ScalarLog(out_dir) if runtime.tensorboard and d.is_main else None
    for epoch in range(start, phase.epochs):
        t0 = time.time()
        train_ds.set_epoch(epoch)
        loss_sum = 0.0
        step_model.train()
        for i, (forward, label) in enumerate(
            progress(
                _train_batches(
                    step_model, train_ds, batch, seed, epoch, phase, runtime, frozen, cache
                ),
                steps,
                f"{mode} {epoch}",
            )
        ):
            if i >= steps:
                break
            with runtime.autocast():
                logits = forward()
            loss = task_loss(logits, label, kind)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            value = float(loss.detach())
            check_loss(value, f"{mode} {epoch}", i)
            loss_sum += value
        train_loss = float(distributed.sum_(torch.tensor([loss_sum / steps]), d)[0]) / d.world
        if ema is not None:
            ema.update(model)
        eval_model = ema.model if ema is not None else model
        val = evaluate(eval_model, val_ds, dataset, eval_batch, runtime, cached=val_cache)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val["loss"],
            f"val_{key}": val[key],
        }
        row |= {"lr": sched.get_last_lr()[0], "time_s": round(time.time() - t0, 3)}
        history.append(row)
        log.info(
            "epoch %d/%d: train loss %.4f, val %s %.4f", epoch, phase.epochs, train_loss, key,
            val[key],
        )  # fmt: skip
        if d.is_main:  # the curve so far, readable while the job runs
            write_csv(out_dir / "history.csv", history)
        if tb is not None:
            tb.add(row)
        # probe keeps the last epoch; finetune/scratch keep the best validation epoch
        if phase.patience is None or val[key] > best["score"]:
            state_copy = copy.deepcopy(eval_model.state_dict())
            best = {"score": val[key], "epoch": epoch, "state": state_copy, "val": val}
            bad_epochs = 0
        else:
            bad_epochs += 1
        resume.save(
            {
                "epoch": epoch, "history": history, "best": best, "bad_epochs": bad_epochs,
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "ema": ema.state_dict() if ema else None,
            }
        )  # fmt: skip
        if phase.patience is not None and bad_epochs >= phase.patience:
            log.info("early stop after epoch %d (best %d)", epoch, best["epoch"])
            break

    if tb is not None:
        tb.close()
    distributed.check_in_sync(model, d)
    model.load_state_dict(best["state"])  # training is over: the model now holds the selection
    test = evaluate(model, test_ds, dataset, eval_batch, runtime, bootstrap=BOOTSTRAP_SAMPLES)
    metrics = {
        "dataset": dataset.name,
        "mode": "probe_random" if random_init else mode,
        "metric": key,
        "best_epoch": best["epoch"],
        "epochs_run": len(history),
        "world_size": d.world,
        "val": best["val"],
        "test": test,
        "train_items": len(train_ds),
        "classes": list(dataset.task.classes),
        **({"init_load": rec["init_load"]} if rec.get("init_load") else {}),
    } | dict(meta or {})
    if baseline is not None:
        metrics |= {"baseline": dataclasses.asdict(baseline), "row": baseline.label}
    if d.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_csv(out_dir / "history.csv", history)
        if baseline is not None:
            record = baseline_record(model, baseline, dataset)
        else:
            record = model_record(
                model, "downstream", rec["model_cfg"], dataset, rec["norm_groups"]
            )
        checkpoint.save(out_dir / "model.pt", record)
        examples = prediction_examples(model, test_ds, dataset, PREDICTION_EXAMPLES, runtime)
        with atomic_path(out_dir / "predictions.npz") as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **examples)
        write_json(out_dir / "metrics.json", metrics)
    resume.clear()
    return metrics
