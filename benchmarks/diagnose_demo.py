"""Diagnostics of the demo suite: is the world learnable, does the MAE learn, do features help?

Measurements behind docs/demo.md, each on a converted store (and a pretrained model):

    python benchmarks/diagnose_demo.py inputs   --dataset treesatai_ts
    python benchmarks/diagnose_demo.py raw      --dataset treesatai_ts
    python benchmarks/diagnose_demo.py mae      --dataset treesatai_ts --model MODEL
    python benchmarks/diagnose_demo.py features --dataset treesatai_ts --model MODEL [--pool date]
    python benchmarks/diagnose_demo.py blocks   --dataset flair_hub [--block 8]
    python benchmarks/diagnose_demo.py targets  --dataset flair2
    python benchmarks/diagnose_demo.py pretrain --dataset flair2 --inputs s2 [--epochs 100]

(``MODEL``: a pretrained ``model.pt``, e.g. under results/pretrain/treesatai_ts/<cell>/seed~0/.)

- ``inputs``: per-band mean / std of the model inputs (after scaling) over the train split.
- ``raw``: linear model on raw features (maestro.train.reference) with every date, one date,
  and per modality; and the trivial predictors.
- ``mae``: reconstruction loss of the model on the train split against predicting 0 in the
  normalized-target space (= each patch-group's own mean), masked vs visible tokens.
- ``pretrain``: pretrain the reference cell of the demo config on some inputs only
  (``--inputs s2``; ``--no-structured`` drops the whole-modality and whole-location masks),
  then the ``mae`` figures of that model.
- ``features``: frozen-encoder features (mean-pooled, or per location for segmentation) of
  the model and of a random-init encoder of the same architecture, scored by the same linear
  model on test; also the mean pairwise cosine similarity of the pooled features.

``--config`` (default config/config.yaml) gives the store overrides; ``--store`` defaults to
results/data/<store>.zarr. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from maestro.data.torch_dataset import MaestroDataset
from maestro.datasets import catalog
from maestro.model import MAESTRO
from maestro.model.config import build_config
from maestro.train import reference
from maestro.train.build import build_mae, load_mae
from maestro.train.features import SplitFeatures, split_features
from maestro.train.runtime import seed_everything


def _dataset(args: argparse.Namespace):
    cfg = yaml.safe_load(Path(args.config).read_text())
    ds = catalog(cfg.get("overrides") or {}).dataset(args.dataset)
    store = args.store or f"results/data/{ds.store.name}.zarr"
    return ds, store


def _splits(ds, store, dates=None) -> dict[str, SplitFeatures]:
    return {
        s: split_features(MaestroDataset(store, ds, (s,), train=False), ds.task.kind, dates)
        for s in ("train", "val", "test")
    }


def _select(splits: dict[str, SplitFeatures], prefix: tuple[str, ...]) -> dict:
    out = {}
    for s, sf in splits.items():
        keep = [i for i, n in enumerate(sf.names) if n.split(":")[0] in prefix]
        out[s] = SplitFeatures(sf.x[:, keep], sf.y, [sf.names[i] for i in keep])
    return out


def cmd_inputs(args: argparse.Namespace) -> None:
    ds, store = _dataset(args)
    data = MaestroDataset(store, ds, ("train",), train=False)
    acc: dict[str, list[np.ndarray]] = {}
    for k in range(min(len(data), 64)):
        for m, x in data[k]["inputs"].items():
            acc.setdefault(m, []).append(x.numpy())
    for m, xs in acc.items():
        x = np.stack(xs)  # [N, T, C, H, W]
        bands = ds.store.modality(m).model_bands
        mean, std = x.mean((0, 1, 3, 4)), x.std((0, 1, 3, 4))
        print(
            f"{m:8s} "
            + "  ".join(f"{b}:{a:+.3f}/{s:.3f}" for b, a, s in zip(bands, mean, std, strict=True))
        )


def cmd_raw(args: argparse.Namespace) -> None:
    ds, store = _dataset(args)
    key = ds.task.metric
    every = _splits(ds, store)
    triv = reference.run_trivial(every, ds)
    scores = {n: round(100 * v["test"], 1) for n, v in triv["strategies"].items()}
    print(f"trivial: {json.dumps(scores)}")
    rows = {"all modalities, every date": every, "all modalities, one date": _splits(ds, store, 1)}
    for m in ds.modalities:
        rows[f"{m.name} only, every date"] = _select(every, (m.name,))
    for name, splits in rows.items():
        r = reference.run_linear(splits, ds)
        lo, hi = r["test"]["bootstrap"]["ci95"]
        score = f"{100 * r['test'][key]:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
        print(f"linear, {name}: {score} (l2 {r['l2']})")


@torch.no_grad()
def cmd_mae(args: argparse.Namespace) -> None:
    ds, store = _dataset(args)
    model, _ = load_mae(args.model, ds)
    print_mae_ratios(model, ds, store, args.batches)


@torch.no_grad()
def print_mae_ratios(model: MAESTRO, ds, store: str, batches: int) -> dict[str, float]:
    """Masked L1 vs predicting each patch-group's mean, per modality, on train items."""
    model.eval()
    seed_everything(0)
    data = MaestroDataset(store, ds, ds.pretrain_splits, train=True, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=False)
    from maestro.model.loss import masked_loss

    sums: dict[str, np.ndarray] = {}
    for i, b in enumerate(loader):
        if i >= batches:
            break
        out = model(b)
        for m, p in model.plans.items():
            target = b["inputs"][m][:, :, list(p.perm)]
            mask = out.masks[m]
            vals = [
                masked_loss(out.preds[m], target, mask, p.token_sizes, p.patch, p.norm_groups)[0],
                masked_loss(
                    torch.zeros_like(target), target, mask, p.token_sizes, p.patch, p.norm_groups
                )[0],
                masked_loss(out.preds[m], target, ~mask, p.token_sizes, p.patch, p.norm_groups)[0],
            ]
            sums[m] = sums.get(m, 0) + np.array([float(v) for v in vals])
    print("modality  masked-L1  predict-0(mean)  ratio  visible-L1")
    ratios = {}
    for m, s in sums.items():
        s = s / min(batches, len(loader))
        ratios[m] = s[0] / s[1]
        print(f"{m:8s}  {s[0]:.4f}     {s[1]:.4f}          {ratios[m]:.3f}  {s[2]:.4f}")
    return ratios


def cmd_pretrain(args: argparse.Namespace) -> None:
    """Pretrain the demo's reference cell on some of the inputs, then print the MAE ratios."""
    import dataclasses

    from maestro.experiment import job_catalog, job_phase, model_config
    from maestro.grid import step_job
    from maestro.jobs import load_config
    from maestro.train.pretrain import run_pretrain
    from maestro.train.runtime import make_runtime

    job = step_job(load_config([args.config]), "pretrain", dataset=args.dataset)
    if args.no_structured:  # no whole-modality or whole-location masks
        job["model"] = {**job["model"], "mask_mod": 0.0, "mask_loc": 0.0}
    ds = job_catalog(job).dataset(args.dataset)
    inputs = tuple(args.inputs.split(",")) if args.inputs else ds.inputs
    ds = dataclasses.replace(ds, inputs=inputs, task=None)  # pretraining only
    store = args.store or f"results/data/{ds.store.name}.zarr"
    phase = job_phase("pretrain", job)
    phase = dataclasses.replace(phase, epochs=args.epochs or phase.epochs)
    out = Path(args.out or f"results/diagnose/pretrain_{args.dataset}_{'-'.join(inputs)}")
    run_pretrain(store, ds, model_config(job), phase, args.seed, out, make_runtime("cpu"))
    print(f"{args.dataset}, inputs {', '.join(inputs)}, {phase.epochs} epochs, seed {args.seed}"
          + (", no structured masks" if args.no_structured else ""))  # fmt: skip
    print_mae_ratios(load_mae(out / "model.pt", ds)[0], ds, store, args.batches)


@torch.no_grad()
def encoder_features(
    model: MAESTRO,
    ds,
    store: str,
    split: str,
    kind: str,
    pool: str = "modality",
    inputs: tuple[str, ...] | None = None,
) -> SplitFeatures:
    """Frozen features of a split, concatenated over modalities.

    ``pool="modality"``: one mean vector per modality (over groups, dates and locations);
    ``pool="date"``: one per (modality, group, date). Classification averages the locations;
    segmentation keeps them (resampled to the reference grid, then to the label grid).
    ``inputs``: the modalities whose features are kept (the encoder still sees every input).
    """
    model.eval()
    data = MaestroDataset(store, ds, (split,), train=False)
    xs, ys = [], []
    for b in torch.utils.data.DataLoader(data, batch_size=16, shuffle=False):
        feats = model.encode(b)  # {m: [B, G, T, L, D]}
        feats = {m: f for m, f in feats.items() if inputs is None or m in inputs}
        if kind == "multilabel":
            dims = (1, 2, 3) if pool == "modality" else (3,)
            xs.append(torch.cat([f.mean(dims).flatten(1) for f in feats.values()], 1).numpy())
        else:
            ref = model.plans[ds.task.ref_modality].grid
            parts = []
            for f in feats.values():
                side = round(f.shape[3] ** 0.5)
                g = f.mean((1, 2), keepdim=True) if pool == "modality" else f
                img = g.flatten(1, 2).permute(0, 1, 3, 2)  # [B, slots, D, L]
                img = img.reshape(f.shape[0], -1, side, side)
                parts.append(F.interpolate(img, size=(ref, ref), mode="bilinear"))
            hw = tuple(b["label"].shape[-2:])
            xs.append(F.interpolate(torch.cat(parts, 1), size=hw, mode="nearest").numpy())
        ys.append(b["label"].numpy())
    x = np.concatenate(xs)
    return SplitFeatures(x, np.concatenate(ys), [f"f{i}" for i in range(x.shape[1])])


def cmd_features(args: argparse.Namespace) -> None:
    ds, store = _dataset(args)
    key = ds.task.metric
    trained, _ = load_mae(args.model, ds)
    inputs = tuple(args.inputs.split(",")) if args.inputs else None
    seed_everything(args.seed)
    random = build_mae(trained.cfg, ds)
    for name, model in (("pretrained", trained), ("random-init", random)):
        model = copy.deepcopy(model)
        splits = {
            s: encoder_features(model, ds, store, s, ds.task.kind, args.pool, inputs)
            for s in ("train", "val", "test")
        }
        x = splits["test"].x
        if x.ndim == 2:
            z = x / np.linalg.norm(x, axis=1, keepdims=True)
            cos = float((z @ z.T)[np.triu_indices(len(z), 1)].mean())
        else:
            cos = float("nan")
        r = reference.run_linear(splits, ds)
        lo, hi = r["test"]["bootstrap"]["ci95"]
        score = f"{100 * r['test'][key]:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
        print(f"{name}: linear on frozen features {score}  mean cosine {cos:.4f}")


def _block_mean(sf: SplitFeatures, block: int) -> SplitFeatures:
    x = torch.from_numpy(sf.x)
    pooled = F.avg_pool2d(x, block)
    return SplitFeatures(F.interpolate(pooled, scale_factor=block).numpy(), sf.y, sf.names)


def _block_oracle(y: np.ndarray, block: int, k: int) -> np.ndarray:
    """``(N, h, w)`` labels -> ``(N, K, h, w)`` logits: each block's majority true class."""
    n, h, w = y.shape
    one = np.zeros((n, k, h, w), np.float32)
    idx = np.where(y >= 0, y, 0)
    np.put_along_axis(one, idx[:, None], (y >= 0)[:, None].astype(np.float32), axis=1)
    votes = F.avg_pool2d(torch.from_numpy(one), block)  # [N, K, h/b, w/b]
    best = votes.argmax(1, keepdim=True)
    logits = torch.zeros_like(votes).scatter_(1, best, reference.CONSTANT_LOGIT)
    return F.interpolate(logits, scale_factor=block).numpy()


def cmd_blocks(args: argparse.Namespace) -> None:
    ds, store = _dataset(args)
    if ds.task.kind != "segmentation":
        raise SystemExit(f"blocks: {ds.name} is not a segmentation dataset")
    key, b = ds.task.metric, args.block
    splits = _splits(ds, store)
    y = splits["test"].y
    oracle = _block_oracle(y, b, ds.task.num_classes)
    r = reference.score(lambda s, e: torch.from_numpy(oracle[s:e]), y, ds)
    print(f"block oracle ({b} x {b} px, majority true class): {100 * r[key]:.1f}")
    rows = {
        "linear, each pixel's own values": splits,
        f"linear, {b} x {b} block means": {s: _block_mean(sf, b) for s, sf in splits.items()},
    }
    for name, sp in rows.items():
        r = reference.run_linear(sp, ds)
        lo, hi = r["test"]["bootstrap"]["ci95"]
        print(f"{name}: {100 * r['test'][key]:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]")


def _token_classes(label: torch.Tensor, side: int, k: int) -> torch.Tensor:
    """``(B, H, W)`` labels -> ``(B, side*side)`` majority class of each token footprint."""
    one = F.one_hot(label.clamp(min=0).long(), k).permute(0, 3, 1, 2).float()
    votes = F.adaptive_avg_pool2d(one * (label >= 0)[:, None], side)  # [B, K, side, side]
    return votes.argmax(1).flatten(1)


def target_shares(g: torch.Tensor) -> tuple[float, float, float]:
    """Shares of the energy of normalized targets ``(..., P, g)`` (zero mean per token
    group) in the band pattern (mean over pixels), the spatial pattern (mean over bands) and
    the rest; the three parts are orthogonal, so the shares sum to 1."""
    band = g.mean(-2, keepdim=True)
    spatial = g.mean(-1, keepdim=True)
    rest = g - band - spatial
    total = max(float((g**2).mean()), 1e-12)
    return tuple(float((v.expand_as(g) ** 2).mean()) / total for v in (band, spatial, rest))


@torch.no_grad()
def cmd_targets(args: argparse.Namespace) -> None:
    """Where the variance of the normalized reconstruction targets lies, per modality group.

    After patch-group normalization each (token, group) holds P pixels x g bands of zero mean
    and unit variance, split here into a *band pattern* (the mean over the token's pixels of
    each band: spectral shape), a *spatial pattern* (the mean over the group's bands of each
    pixel) and the rest (per-band, per-pixel noise). ``class oracle`` is the share of the band
    pattern explained by the mean pattern of the token's majority class at that date index
    (fitted on the same split: an upper bound of what knowing the class predicts);
    ``date-mean`` the share explained by the mean pattern of each date index alone (the
    class-independent part: band gains common to every class).
    """
    from maestro.model.patchify import patches
    from maestro.model.target_norm import normalize_patches

    ds, store = _dataset(args)
    if ds.task.kind != "segmentation":
        raise SystemExit(f"targets: {ds.name} is not a segmentation dataset")
    model = build_mae(build_config(args.size), ds)
    data = MaestroDataset(store, ds, ("train",), train=False)
    batches = list(torch.utils.data.DataLoader(data, batch_size=16, shuffle=False))
    k = ds.task.num_classes
    print("modality group  bands  band-pattern  spatial  rest   class-oracle  date-mean")
    for m, p in model.plans.items():
        parts = []
        for b in batches:
            x = patches(b["inputs"][m][:, :, list(p.perm)], p.patch)  # [B, T, L, P, C]
            z = normalize_patches(x, p.norm_groups)
            cls = _token_classes(b["label"], round(x.shape[2] ** 0.5), k)  # [B, L]
            parts.append((z, cls))
        z = torch.cat([a for a, _ in parts])
        cls = torch.cat([c for _, c in parts])
        for gi, idx in enumerate(p.norm_groups or (tuple(range(z.shape[-1])),)):
            g = z[..., list(idx)]  # [N, T, L, P, g]
            shares = target_shares(g)
            bp = g.mean(3)  # band pattern [N, T, L, g]
            oracle = torch.zeros_like(bp)
            key = cls[:, None, :].expand(bp.shape[:3])  # [N, T, L]
            for t in range(bp.shape[1]):
                for c in key[:, t].unique():
                    sel = key[:, t] == c
                    oracle[:, t][sel] = bp[:, t][sel].mean(0)
            energy = max(float((bp**2).mean()), 1e-12)
            explained = 1 - float(((bp - oracle) ** 2).mean()) / energy
            common = 1 - float(((bp - bp.mean((0, 2), keepdim=True)) ** 2).mean()) / energy
            print(
                f"{m:8s} {gi:5d}  {len(idx):5d}  {shares[0]:12.3f}  {shares[1]:7.3f}  "
                f"{shares[2]:5.3f}  {explained:.3f}  {common:.3f}"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "what", choices=["inputs", "raw", "mae", "features", "blocks", "targets", "pretrain"]
    )
    p.add_argument("--dataset", default="treesatai_ts")
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--store", default=None)
    p.add_argument("--model", default=None, help="a pretrained model.pt (mae, features)")
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--block", type=int, default=8, help="label px per token side (blocks)")
    p.add_argument("--size", default="tiny", help="model size of the token plans (targets)")
    p.add_argument("--pool", choices=["modality", "date"], default="modality")
    p.add_argument("--inputs", help="comma-separated modalities (pretrain: inputs; features: kept)")
    p.add_argument("--epochs", type=int, default=None, help="pretraining epochs (pretrain)")
    p.add_argument("--no-structured", action="store_true", help="no modality/location masks")
    p.add_argument("--out", default=None, help="output folder of the pretraining (pretrain)")
    args = p.parse_args()
    torch.set_num_threads(2)
    cmds = {"inputs": cmd_inputs, "raw": cmd_raw, "mae": cmd_mae, "features": cmd_features}
    cmds["blocks"] = cmd_blocks
    cmds["targets"] = cmd_targets
    cmds["pretrain"] = cmd_pretrain
    cmds[args.what](args)


if __name__ == "__main__":
    main()
