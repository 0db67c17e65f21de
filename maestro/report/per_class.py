"""Per-class test results of the reference cell: IoU per class (segmentation) or F1 per
class (multi-label), for MAESTRO and its floors, from the metrics.json files.

A mean over classes hides which classes a model gets and which it never predicts; this table
shows them beside the same class's value for the floors (ViT from scratch, random-init probe,
linear model, trivial predictor), mean over seeds, "–" where a class is absent from the test
labels (its IoU is undefined and excluded from the mIoU).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from maestro.report import paper
from maestro.report.build import REFERENCE_NAMES, REFERENCES, _cell, _intra
from maestro.report.html import write_markdown
from maestro.report.tables import markdown
from maestro.utils.atomic import write_text

#: Columns of the table, in order: mode -> header.
COLUMNS = {
    "finetune": "MAESTRO",
    "probe": "MAESTRO (probe)",
    **REFERENCE_NAMES,
}
#: The per-class list of each task kind's metrics.
PER_CLASS = {"miou": ("iou", "IoU"), "weighted_f1": ("f1", "F1")}


def _classes(dataset: str, n: int, metrics: Mapping) -> list[str]:
    names = metrics.get("classes")
    if names and len(names) == n:
        return [str(c) for c in names]
    try:  # metrics written before class names were recorded: the declaration
        from maestro.datasets import catalog

        names = catalog().dataset(dataset).task.classes
        return list(names) if len(names) == n else [str(k) for k in range(n)]
    except (KeyError, AttributeError):
        return [str(k) for k in range(n)]


def per_class(df: pd.DataFrame, reference: Mapping[str, str]) -> dict[str, pd.DataFrame]:
    """``{dataset: frame}``: rows = classes, columns = :data:`COLUMNS` present, values = the
    class's test metric in % (mean over seeds; NaN where undefined)."""
    reference = {"dates": "all"} | dict(reference)  # ids of older runs have no dates column
    runs = _intra(df)
    runs = runs[
        runs.apply(lambda r: all(_cell(r).get(c) == reference[c] for c in reference), axis=1)
    ]
    rows = pd.concat([runs, df[df["mode"].isin(REFERENCES)]], ignore_index=True)
    order = {d: i for i, d in enumerate(paper.TABLE1_DATASETS)}
    rows = rows.sort_values("dataset", key=lambda s: s.map(order).fillna(len(order)), kind="stable")
    out = {}
    for dataset, g in rows.groupby("dataset", sort=False):
        values: dict[str, list[np.ndarray]] = {}
        classes: list[str] = []
        metric = ""
        for _, r in g.iterrows():
            m = json.loads(Path(r["path"]).read_text())
            metric = m["metric"]
            key, _ = PER_CLASS[metric]
            if key not in m["test"] or r["mode"] not in COLUMNS:
                continue
            v = np.array([np.nan if x is None else x for x in m["test"][key]], np.float64)
            classes = classes or _classes(str(dataset), len(v), m)
            values.setdefault(r["mode"], []).append(100.0 * v)
        if not values:
            continue
        frame = pd.DataFrame(
            {
                COLUMNS[mode]: np.mean(np.stack(values[mode]), axis=0)
                for mode in COLUMNS
                if mode in values
            },
            index=classes,
        )
        frame.attrs = {"title": g["title"].iloc[0], "metric": metric}
        out[str(dataset)] = frame
    return out


def _fmt(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{x:.1f}"


def write_per_class(
    df: pd.DataFrame, reference: Mapping[str, str], stem: str | Path
) -> dict[str, pd.DataFrame]:
    """``stem``.md/.html (one section per dataset) and ``stem``.csv (long format)."""
    tables = per_class(df, reference)
    md = (
        "# Per-class test results of the reference cell\n\n"
        "IoU per class (segmentation) or F1 per class (TreeSatAI-TS), in %, mean over seeds; "
        "– = class absent from the test labels. Floors beside MAESTRO: a class the floors get "
        "as well as MAESTRO is not evidence for the method.\n"
    )
    long = []
    for dataset, t in tables.items():
        _, name = PER_CLASS[t.attrs["metric"]]
        body = [[c, *(_fmt(v) for v in row)] for c, row in zip(t.index, t.to_numpy(), strict=True)]
        md += f"\n## {t.attrs['title']} ({name} per class)\n\n" + markdown(["Class", *t], body)
        for col in t:
            long += [
                {"dataset": dataset, "class": c, "row": col, "value": round(float(v), 4)}
                for c, v in t[col].items()
            ]
    if not tables:
        md += "\n(no run)\n"
    stem = Path(stem)
    write_markdown(stem.with_suffix(".md"), md)
    cols = ["dataset", "class", "row", "value"]
    write_text(stem.with_suffix(".csv"), pd.DataFrame(long, columns=cols).to_csv(index=False))
    return tables
