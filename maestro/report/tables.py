"""Aggregate downstream ``metrics.json`` files into a table shaped like the paper's Table 1.

Rows are models (MAESTRO fine-tuned, MAESTRO probed, ViT trained from scratch) per ablation
cell; columns are datasets; cells are the test metric in %, mean ± std over seeds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from maestro.report.paper import TABLE1, TABLE1_DATASETS
from maestro.utils.atomic import write_text

MODEL_NAMES = {"finetune": "MAESTRO", "probe": "MAESTRO (probe)", "scratch": "ViT (supervised)"}
MODE_ORDER = ("finetune", "probe", "scratch")
METRIC_NAMES = {"weighted_f1": "wF1", "miou": "mIoU"}
SIZE_NAMES = {"tiny": "Tiny", "small": "Small", "base": "Base", "large": "Large"}
NORM_NAMES = {"none": "none", "patch": "patch", "patchgroup": "patch-group"}


def fusion_name(cell: dict[str, Any]) -> str:
    """The paper's fusion-mode label of a cell."""
    return f"inter-{cell['fusion']}" if int(cell["inter"]) else str(cell["fusion"])


def size_label(size: str, overrides: dict[str, Any]) -> str:
    """``Tiny``, or ``Tiny (depth 6)`` when the preset was overridden."""
    name = SIZE_NAMES.get(size, size)
    if overrides:
        name += " (" + ", ".join(f"{k} {v}" for k, v in sorted(overrides.items())) + ")"
    return name


def load_metrics(paths: Sequence[str | Path]) -> pd.DataFrame:
    """One row per metrics file: model labels, dataset, seed and the test metric (in %)."""
    rows = []
    for path in paths:
        m = json.loads(Path(path).read_text())
        missing = [k for k in ("dataset", "mode", "metric", "test", "cell", "seed") if k not in m]
        if missing:
            raise ValueError(f"{path}: not a downstream metrics file (missing {missing})")
        cell = m["cell"]
        rows.append(
            {
                "model": MODEL_NAMES[m["mode"]],
                "mode": m["mode"],
                "size": size_label(m.get("model_size", ""), m.get("model_overrides") or {}),
                "fusion": fusion_name(cell),
                "norm": NORM_NAMES.get(cell["norm"], cell["norm"]),
                "spectral": cell["spectral"],
                "groups": cell["groups"],
                "dataset": m["dataset"],
                "title": m.get("title", m["dataset"]),
                "metric": METRIC_NAMES.get(m["metric"], m["metric"]),
                "seed": int(m["seed"]),
                "value": 100.0 * float(m["test"][m["metric"]]),
                "source": str(path),
            }
        )
    if not rows:
        raise ValueError("no metrics files given")
    return pd.DataFrame(rows)


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and seed count per (row labels, dataset)."""
    keys = [
        "mode",
        "model",
        "size",
        "fusion",
        "norm",
        "spectral",
        "groups",
        "dataset",
        "title",
        "metric",
    ]
    agg = df.groupby(keys, sort=False)["value"].agg(["mean", "std", "count"]).reset_index()
    agg["std"] = agg["std"].fillna(0.0)
    seeds = df.groupby(keys, sort=False)["seed"].apply(lambda s: " ".join(map(str, sorted(s))))
    return agg.merge(seeds.rename("seeds").reset_index(), on=keys)


def _fmt(mean: float, std: float, n: int) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.1f} ± {std:.1f}" if n > 1 else f"{mean:.1f}"


def table1_markdown(summary: pd.DataFrame) -> str:
    """The Markdown table: our rows, then the paper's reference rows for the same datasets."""
    datasets = [d for d in TABLE1_DATASETS if d in set(summary["dataset"])]
    datasets += [d for d in dict.fromkeys(summary["dataset"]) if d not in datasets]
    titles = dict(zip(summary["dataset"], summary["title"], strict=False))
    metrics = dict(zip(summary["dataset"], summary["metric"], strict=False))
    row_keys = ["mode", "model", "size", "fusion", "norm", "spectral", "groups"]
    order = {m: i for i, m in enumerate(MODE_ORDER)}
    rows = summary[row_keys].drop_duplicates()
    rows = (
        rows.assign(_o=rows["mode"].map(order))
        .sort_values(["_o", "fusion", "norm"])
        .drop(columns="_o")
    )

    head = ["Model", "Size", "Fusion mode", "Target norm", "Spectral", "Groups"]
    lines = [
        "| " + " | ".join(head + [f"{titles[d]} ({metrics[d]})" for d in datasets]) + " |",
        "|" + "---|" * (len(head) + len(datasets)),
    ]
    for _, r in rows.iterrows():
        cells = []
        for d in datasets:
            hit = summary[
                (summary[row_keys] == r[row_keys]).all(axis=1) & (summary["dataset"] == d)
            ]
            cells.append(_fmt(*hit[["mean", "std", "count"]].iloc[0]) if len(hit) else "–")
        lines.append(
            "| "
            + " | ".join(
                [r["model"], r["size"], r["fusion"], r["norm"], r["spectral"], r["groups"], *cells]
            )
            + " |"
        )

    ref = ["", "Published reference (MAESTRO paper, Table 1; Base models, full datasets):", ""]
    ref.append("| Model | Size | Fusion mode | " + " | ".join(titles[d] for d in datasets) + " |")
    ref.append("|" + "---|" * (3 + len(datasets)))
    for (model, size, fusion), values in TABLE1.items():
        vals = dict(zip(TABLE1_DATASETS, values, strict=True))
        ref.append(
            f"| {model} | {size} | {fusion} | "
            + " | ".join("–" if vals.get(d) is None else f"{vals[d]:.1f}" for d in datasets)
            + " |"
        )
    return "\n".join(lines + ref) + "\n"


def write_table1(
    paths: Sequence[str | Path], out_md: str | Path, out_csv: str | Path
) -> pd.DataFrame:
    """Write the Markdown table and the long-format CSV (one row per model x dataset)."""
    summary = summarize(load_metrics(paths))
    note = (
        "# Table 1: downstream test results\n\n"
        "Test-split metric in % (mean ± std over seeds when several). Rows: MAESTRO = pretrained, "
        "probed, then fine-tuned; MAESTRO (probe) = frozen encoder; ViT (supervised) = the same "
        "architecture trained from scratch. Generated by `maestro report-table` from the "
        "metrics.json files listed in the CSV.\n\n"
    )
    write_text(out_md, note + table1_markdown(summary))
    write_text(out_csv, summary.round(4).to_csv(index=False))
    return summary
