"""Masked-autoencoder pretraining of one (dataset, variant, seed) cell (IGNF/MAESTRO recipe)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange

from maestro.data.torch_dataset import MaestroDataset
from maestro.datasets.spec import DatasetSpec
from maestro.model import MAESTRO, MAEConfig
from maestro.model.fusion import BandGroups
from maestro.model.loss import channel_mask
from maestro.model.patchify import patches
from maestro.model.target_norm import denormalize_patches
from maestro.train import checkpoint, distributed
from maestro.train.build import build_mae, model_record
from maestro.train.config import PhaseConfig
from maestro.train.loop import Resume, check_loss, progress, steps_per_epoch, write_csv
from maestro.train.optim import build_optimizer, build_scheduler, scaled_lr
from maestro.train.runtime import Runtime, seed_everything, to_device
from maestro.train.tensorboard import ScalarLog
from maestro.utils.atomic import atomic_path, write_json

log = logging.getLogger(__name__)

#: Outputs of a pretraining job, relative to its output directory.
OUTPUTS = ("model.pt", "history.csv", "metrics.json", "reconstruction.npz")


def run_pretrain(
    store_path: str | Path,
    dataset: DatasetSpec,
    model_cfg: MAEConfig,
    phase: PhaseConfig,
    seed: int,
    out_dir: str | Path,
    runtime: Runtime,
    norm_groups: Mapping[str, BandGroups] | None = None,
    work_dir: str | Path | None = None,
    fingerprint: str = "",
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Pretrain on ``dataset.pretrain_splits`` and write :data:`OUTPUTS` to ``out_dir``.

    Under torchrun every rank trains on its share of each epoch (DDP); rank 0 writes.
    Returns the metrics written to ``metrics.json``.
    """
    d = runtime.dist
    seed_everything(seed)
    out_dir = Path(out_dir)
    train_ds = MaestroDataset(
        store_path, dataset, dataset.pretrain_splits, train=True, seed=seed,
        in_memory=phase.in_memory,
    )  # fmt: skip
    train_ds.require(d.world, "pretraining (one item per rank)")
    model = build_mae(model_cfg, dataset, norm_groups).to(runtime.device)
    if runtime.compile:
        model.compile_blocks()
    step_model = distributed.wrap(model, runtime.device, d)
    if d.active:
        torch.manual_seed(seed + 7919 * d.rank)  # one masking stream per rank
    batch = min(phase.batch_size, len(train_ds) // d.world)
    steps = steps_per_epoch(len(train_ds) // d.world, batch, phase.max_steps_per_epoch)
    lr_max = scaled_lr(phase.base_lr, batch * d.world)
    opt = build_optimizer(model, lr_max, phase.betas, phase.weight_decay)
    sched = build_scheduler(
        opt, phase.epochs * steps, phase.warmup_frac, phase.warmup_div, phase.final_factor
    )
    log.info(
        "pretrain %s: %d items, batch %d x %d ranks, %d steps/epoch, lr_max %.3g, params %s",
        dataset.name, len(train_ds), batch, d.world, steps, lr_max, model.num_params(),
    )  # fmt: skip

    resume = Resume(work_dir, fingerprint, d)
    history: list[dict[str, Any]] = []
    start = 0
    if (state := resume.load()) is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        resume.restore_rng(state)
        history, start = state["history"], state["epoch"] + 1

    tb = ScalarLog(out_dir) if runtime.tensorboard and d.is_main else None
    for epoch in range(start, phase.epochs):
        t0 = time.time()
        train_ds.set_epoch(epoch)
        loader = distributed.train_loader(
            train_ds, batch, seed, epoch, phase.num_workers, d, seed * 100_003 + epoch
        )
        sums = _train_epoch(step_model, opt, sched, loader, steps, runtime, f"pretrain {epoch}")
        row = {"epoch": epoch, "step": (epoch + 1) * steps, "lr": sched.get_last_lr()[0]}
        row |= {k: v / steps for k, v in sums.items()} | {"time_s": round(time.time() - t0, 3)}
        history.append(row)
        log.info("epoch %d/%d: loss %.4f (%.1fs)", epoch, phase.epochs, row["loss"], row["time_s"])
        if d.is_main:  # the curve so far, readable while the job runs
            write_csv(out_dir / "history.csv", history)
        if tb is not None:
            tb.add(row)
        resume.save(
            {
                "epoch": epoch, "history": history, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            }
        )  # fmt: skip

    if tb is not None:
        tb.close()
    distributed.check_in_sync(model, d)
    metrics = {
        "dataset": dataset.name,
        "phase": "pretrain",
        "epochs": phase.epochs,
        "steps": phase.epochs * steps,
        "world_size": d.world,
        "final_loss": history[-1]["loss"] if history else None,
        "final_losses": {
            k[5:]: v for k, v in (history[-1] if history else {}).items() if k.startswith("loss_")
        },
        "params": model.num_params(),
        "train_items": len(train_ds),
    } | dict(meta or {})
    if d.is_main:
        recon = reconstruction_example(model, store_path, dataset, seed, runtime)
        out_dir.mkdir(parents=True, exist_ok=True)
        arrays = {f"{m}__{k}": v for m, parts in recon.items() for k, v in parts.items()}
        with atomic_path(out_dir / "reconstruction.npz") as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        write_csv(out_dir / "history.csv", history)
        record = model_record(model, "mae", model_cfg, dataset, norm_groups)
        checkpoint.save(out_dir / "model.pt", record)
        write_json(out_dir / "metrics.json", metrics)
    resume.clear()
    return metrics


def _train_epoch(
    step_model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    loader: Any,
    steps: int,
    runtime: Runtime,
    desc: str,
) -> dict[str, float]:
    """One epoch of masked reconstruction; returns the loss sums (averaged over ranks)."""
    step_model.train()
    names: list[str] = []
    sums: torch.Tensor | None = None
    for i, b in enumerate(progress(loader, steps, desc)):
        if i >= steps:
            break
        b = to_device(b, runtime.device)
        with runtime.autocast():
            out = step_model(b)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        sched.step()
        losses = {"loss": out.loss, **{f"loss_{m}": x for m, x in out.losses.items()}}
        values = torch.stack([v.detach().float() for v in losses.values()]).cpu().double()
        check_loss(float(values[0]), desc, i)
        names, sums = list(losses), values if sums is None else sums + values
    assert sums is not None
    sums = distributed.sum_(sums, runtime.dist) / runtime.dist.world
    return dict(zip(names, sums.tolist(), strict=True))


@torch.no_grad()
def reconstruction_example(
    model: MAESTRO, store_path: str | Path, dataset: DatasetSpec, seed: int, runtime: Runtime
) -> dict[str, dict[str, np.ndarray]]:
    """Masked input, reconstruction and target of the first test crop (of the first val or
    train crop when the store has no test split), per modality.

    Arrays are ``(T, C, H, W)`` in token channel order (``bands`` gives the names). The
    reconstruction puts the model's prediction, de-normalized with each target patch's own
    statistics (as in MAE figures), on the masked patches and the input on visible ones.
    """
    for split in ("test", "val", "train"):  # the first test crop, else the first of another
        ds = MaestroDataset(store_path, dataset, (split,), train=False, seed=seed)
        if len(ds):
            break
        log.warning("%s: split %s of %s is empty; example from the next", store_path, split,
                    dataset.name)  # fmt: skip
    ds.require(1, "the reconstruction example")
    item = ds[0]
    batch = to_device({k: _unsqueeze(v) for k, v in item.items()}, runtime.device)
    model.eval()
    rng_state = torch.get_rng_state()
    torch.manual_seed(seed)  # a fixed mask, without disturbing the training RNG stream
    out = model(batch)
    torch.set_rng_state(rng_state)
    result = {}
    for m, p in model.plans.items():
        target = batch["inputs"][m][:, :, list(p.perm)].float()
        tp = patches(target, p.patch)  # [1, T, L, P, C]
        pp = patches(out.preds[m].float(), p.patch)
        recon = denormalize_patches(pp, tp, p.norm_groups, model.cfg.norm_eps)
        mask = channel_mask(out.masks[m], p.token_sizes)  # [1, T, L, 1, C]
        shown = torch.where(mask, recon, tp)
        masked_in = torch.where(mask, torch.full_like(tp, float("nan")), tp)
        result[m] = {
            "target": _unpatch(tp, p.grid, p.patch),
            "reconstruction": _unpatch(shown, p.grid, p.patch),
            "masked_input": _unpatch(masked_in, p.grid, p.patch),
            "bands": np.array(_token_bands(dataset, m, p.perm)),
        }
    return result


def _unsqueeze(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _unsqueeze(x) for k, x in v.items()}
    return v[None] if isinstance(v, torch.Tensor) else v


def _unpatch(x: torch.Tensor, grid: int, patch: int) -> np.ndarray:
    img = rearrange(x[0], "t (h w) (p q) c -> t c (h p) (w q)", h=grid, p=patch)
    return img.cpu().numpy().astype(np.float32)


def _token_bands(dataset: DatasetSpec, m: str, perm: tuple[int, ...]) -> list[str]:
    bands = dataset.store.modality(m).model_bands
    return [bands[i] for i in perm]
