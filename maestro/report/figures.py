"""Figures from training outputs: pretraining loss curves and a reconstruction example."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap

from maestro.report.tables import AXES
from maestro.utils.atomic import atomic_path

#: Bands shown as RGB when present (first match wins), else the first band in grey.
DISPLAY_BANDS = (("R", "G", "B"), ("B4", "B3", "B2"), ("NIR", "R", "G"))


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


def class_colours(k: int) -> list[tuple[float, float, float, float]]:
    """``k`` distinct colours: tab20's saturated half first, then its light half (tab20
    pairs a dark and a light shade of one hue: neighbouring class ids would look alike)."""
    cmap = plt.get_cmap("tab20")
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    return [cmap(order[c % 20]) for c in range(k)]


def _display(img: np.ndarray, bands: list[str], ref: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` -> an ``(H, W, 3)`` or ``(H, W)`` image stretched by ``ref``'s 2-98 %."""
    pick = next((b for b in DISPLAY_BANDS if all(x in bands for x in b)), (bands[0],))
    idx = [bands.index(b) for b in pick]
    x, r = img[idx], ref[idx]
    finite = r[np.isfinite(r)]
    lo, hi = np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0)
    x = np.clip((x - lo) / max(hi - lo, 1e-6), 0, 1)
    x = np.where(np.isnan(x), 0.5, x)  # masked patches in grey
    return np.moveaxis(x, 0, -1) if len(idx) == 3 else x[0]


def reconstruction_figure(npz_path: str | Path, out: str | Path, title: str = "") -> None:
    """Rows = modalities (first date), columns = masked input / reconstruction / target."""
    data = np.load(npz_path, allow_pickle=False)
    mods = sorted(
        {k.split("__")[0] for k in data.files}, key=lambda m: data.files.index(f"{m}__target")
    )
    fig, axes = plt.subplots(len(mods), 3, figsize=(7.5, 2.5 * len(mods)), squeeze=False)
    for row, m in zip(axes, mods, strict=True):
        bands = [str(b) for b in data[f"{m}__bands"]]
        target = data[f"{m}__target"][0]
        for ax, key, name in zip(
            row,
            ("masked_input", "reconstruction", "target"),
            ("masked input", "reconstruction", "target"),
            strict=True,
        ):
            img = _display(data[f"{m}__{key}"][0], bands, target)
            ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{m}: {name}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
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


def segmentation_maps(npz_path: str | Path, out: str | Path, title: str = "") -> None:
    """Rows = test crops; columns = input (reference modality, first date), label, prediction."""
    data = np.load(npz_path, allow_pickle=False)
    classes = [str(c) for c in data["classes"]]
    bands = [str(b) for b in data["bands"]]
    cmap = ListedColormap(class_colours(len(classes)))
    n = len(data["label"])
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n), squeeze=False)
    for row, k in zip(axes, range(n), strict=True):
        img = data["image"][k]
        row[0].imshow(_display(img, bands, img), cmap="gray", vmin=0.0, vmax=1.0)
        for ax, key in zip(row[1:], ("label", "prediction"), strict=True):
            m = np.ma.masked_less(data[key][k], 0)  # ignored pixels stay blank
            ax.imshow(m, cmap=cmap, vmin=-0.5, vmax=len(classes) - 0.5, interpolation="nearest")
        for ax, name in zip(row, ("input", "label", "prediction"), strict=True):
            ax.set_title(f"crop {k}: {name}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    present = sorted(set(np.unique(data["label"])) | set(np.unique(data["prediction"])) - {-1})
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(c)) for c in present if c >= 0]
    fig.legend(
        handles,
        [classes[c] for c in present if c >= 0],
        loc="lower center",
        ncol=4,
        fontsize=7,
        frameon=False,
    )
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(bottom=0.12)
    _save(fig, out)
