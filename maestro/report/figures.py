"""Figures from training outputs: loss and validation curves, ablation and Table 1 bars.
The image panels (reconstructions, segmentation maps) are in :mod:`maestro.report.maps`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from maestro.report.tables import AXES
from maestro.utils.atomic import atomic_path


def _save(fig: plt.Figure, out: str | Path) -> None:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _run(history: Path) -> tuple[str, dict, str]:
    """(dataset title, cell, seed) of a pretraining history, from its metrics.json."""
    meta = json.loads((history.parent / "metrics.json").read_text())
    return meta.get("title", meta["dataset"]), dict(meta.get("cell") or {}), meta.get("seed", "?")


def _tags(cells: list[dict]) -> list[str]:
    """A label per cell of a panel: the cell fields that differ between the panel's cells
    (``reference cell`` where a cell has the panel's most common value of each)."""
    keys = [k for k in dict.fromkeys(k for c in cells for k in c)]
    varying = [k for k in keys if len({str(c.get(k)) for c in cells}) > 1]
    common = {k: max({str(c.get(k)) for c in cells}, key=[str(c.get(k)) for c in cells].count)
              for k in varying}  # fmt: skip
    out = []
    for c in cells:
        diff = [f"{k}={c.get(k)}" for k in varying if str(c.get(k)) != common[k]]
        out.append(", ".join(diff) or "reference cell")
    return out


def loss_curves(histories: Sequence[str | Path], out: str | Path) -> None:
    """One panel per dataset: pretraining loss per epoch relative to each run's first epoch
    (cells with other target normalizations have losses on other scales), one line per cell
    and seed, labelled by the cell fields that differ within the panel."""
    by_dataset: dict[str, list[tuple[dict, str, pd.DataFrame]]] = {}
    for h in map(Path, histories):
        dataset, cell, seed = _run(h)
        by_dataset.setdefault(dataset, []).append((cell, f"seed {seed}", pd.read_csv(h)))
    n = len(by_dataset)
    fig, axes = plt.subplots(1, n, figsize=(4.4 * n, 4.4), squeeze=False)
    for i, (ax, (dataset, runs)) in enumerate(zip(axes[0], by_dataset.items(), strict=True)):
        tags = _tags([cell for cell, _, _ in runs])
        for tag, (_, seed, df) in zip(tags, runs, strict=True):
            rel = df["loss"] / df["loss"].iloc[0]
            ax.plot(df["epoch"] + 1, rel, marker="o", ms=2, lw=1, label=f"{tag}, {seed}")
        ax.set_title(dataset, fontsize=10)
        ax.set_xlabel("epoch")
        if i == 0:
            ax.set_ylabel("masked reconstruction loss ÷ first-epoch loss")
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1,
                  frameon=False)  # fmt: skip
        ax.grid(alpha=0.3)
    _save(fig, out)


def ablation_bars(tables: Sequence[str | Path], out: str | Path) -> None:
    """One panel per ablation table: bars = variants, groups = datasets, whiskers = 95 % CI."""
    frames = [(Path(t).stem.replace("ablation_", ""), pd.read_csv(t)) for t in tables]
    frames = [(name, df) for name, df in frames if len(df)]
    if not frames:
        raise ValueError("no ablation results to plot")
    fig, axes = plt.subplots(1, len(frames), figsize=(5.0 * len(frames), 4.2), squeeze=False)
    for ax, (name, df) in zip(axes[0], frames, strict=True):
        datasets = list(dict.fromkeys(df["dataset"]))
        variants = list(dict.fromkeys(df["Variant"]))
        width = 0.8 / len(variants)
        for i, v in enumerate(variants):
            sub = df[df["Variant"] == v].set_index("dataset").reindex(datasets)
            x = np.arange(len(datasets)) + (i - (len(variants) - 1) / 2) * width
            err = np.stack([sub["mean"] - sub["ci_low"], sub["ci_high"] - sub["mean"]])
            ax.bar(x, sub["mean"], width, yerr=np.nan_to_num(err), capsize=2, label=v)
        titles = df.drop_duplicates("dataset").set_index("dataset")
        ax.set_xticks(
            np.arange(len(datasets)),
            [f"{titles.loc[d, 'title']}\n({titles.loc[d, 'metric']})" for d in datasets],
            fontsize=8,
        )
        axis = AXES.get(name, (name.replace("_", " "),))[0]
        ax.set_title(f"{axis} (fine-tuned)", fontsize=10)
        ax.set_ylabel("test metric (%)")
        ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    _save(fig, out)


#: Table 1 rows drawn as floors (grey): what a number must beat.
FLOOR_ROWS = ("Random-init encoder (probe)", "ViT (supervised)", "Linear model on raw inputs",
              "Trivial predictor")  # fmt: skip


def table1_bars(table_csv: str | Path, out: str | Path) -> None:
    """Table 1 as bars: one panel per dataset (each with its own metric), one bar per row
    (model and fusion mode), whiskers = 95 % interval, floor rows in grey."""
    df = pd.read_csv(table_csv)
    if df.empty:
        raise ValueError(f"{table_csv}: no rows to plot")
    fusion = df["Fusion mode"].fillna("–").astype(str)
    df["row"] = df["Model"] + np.where(fusion.isin(["–", "-"]), "", " · " + fusion)
    rows = list(dict.fromkeys(df["row"]))
    datasets = list(dict.fromkeys(df["dataset"]))
    fig, axes = plt.subplots(
        1, len(datasets), figsize=(3.6 * len(datasets), 0.32 * len(rows) + 1.6), squeeze=False,
        sharey=True,
    )  # fmt: skip
    for ax, d in zip(axes[0], datasets, strict=True):
        sub = df[df["dataset"] == d].set_index("row").reindex(rows)
        y = np.arange(len(rows))
        err = np.stack([sub["mean"] - sub["ci_low"], sub["ci_high"] - sub["mean"]])
        floor = [any(r.startswith(f) for f in FLOOR_ROWS) for r in rows]
        colours = ["0.65" if f else "tab:blue" for f in floor]
        ax.barh(y, sub["mean"], xerr=np.nan_to_num(err), color=colours, capsize=2)
        first = sub.dropna(subset=["title"]).iloc[0]
        ax.set_title(f"{first['title']} ({first['metric']}, %)", fontsize=9)
        ax.set_yticks(y, rows, fontsize=7)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Table 1 (test, mean over seeds; grey: floors)", fontsize=10)
    _save(fig, out)


#: Line styles of the downstream modes in :func:`downstream_curves` (floors dashed).
MODE_STYLES = {
    "finetune": ("MAESTRO fine-tuned", "-"),
    "probe": ("MAESTRO probe", "-"),
    "scratch": ("ViT from scratch", "--"),
    "probe_random": ("random-init probe", "--"),
}


def downstream_curves(histories: Sequence[str | Path], out: str | Path) -> None:
    """One panel per dataset: the validation metric per epoch of each downstream run (mode
    and seed from the metrics.json beside each history), floors dashed. A curve still rising
    at its last epoch is an undertrained run; a flat one at the trivial level learns nothing."""
    by_dataset: dict[str, list[tuple[str, str, str, pd.DataFrame]]] = {}
    for h in map(Path, histories):
        meta = json.loads((h.parent / "metrics.json").read_text())
        title = meta.get("title", meta["dataset"])
        by_dataset.setdefault(title, []).append(
            (meta["mode"], meta["metric"], str(meta.get("seed", "?")), pd.read_csv(h))
        )
    if not by_dataset:
        raise ValueError("no downstream history to plot")
    n = len(by_dataset)
    fig, axes = plt.subplots(1, n, figsize=(4.0 * n, 3.8), squeeze=False)
    for ax, (title, runs) in zip(axes[0], by_dataset.items(), strict=True):
        for mode, metric, seed, df in sorted(runs, key=lambda r: list(MODE_STYLES).index(r[0])):
            label, style = MODE_STYLES.get(mode, (mode, ":"))
            ax.plot(df["epoch"] + 1, 100 * df[f"val_{metric}"], style, marker="o", ms=2, lw=1,
                    label=f"{label}, seed {seed}")  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {runs[0][1].replace('_', ' ')} (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    _save(fig, out)
