"""The DVC metrics file: every table cell's mean, per table, row and dataset.

``results/tables/summary.json`` is declared in ``dvc.yaml`` (top-level ``metrics``), so that
``dvc metrics show`` lists the tables' numbers and ``dvc metrics diff <rev>`` compares them
across revisions. It is built from the long-format CSV tables (``maestro report-tables``):

.. code-block:: json

    {"table1": {"MAESTRO / Tiny / inter-group": {"treesatai_ts": 28.5714, "n_seeds": 1}}}

A row key joins the table's label columns (every column before ``dataset``) with `` / ``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from maestro.utils.atomic import write_json

#: Tables summarized, in this order (those absent from the folder are skipped).
TABLES = ("table1", "table2", "ablation_norm", "ablation_spectral", "ablation_fusion")


def _value(x: Any) -> float | None:
    v = float(x)
    return None if math.isnan(v) else round(v, 4)


def table_summary(csv_path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """``{row label: {dataset: mean, ..., "n_seeds": min seeds}}`` of one long-format table."""
    df = pd.read_csv(csv_path, dtype={"seeds": str})
    if df.empty or "dataset" not in df.columns:
        return {}
    labels = list(df.columns[: list(df.columns).index("dataset")])
    out: dict[str, dict[str, Any]] = {}
    for _, row in df.iterrows():
        key = " / ".join(str(row[c]) for c in labels)
        entry = out.setdefault(key, {})
        entry[str(row["dataset"])] = _value(row["mean"])
        n = int(row["n_seeds"])
        entry["n_seeds"] = min(n, entry.get("n_seeds", n))
    return out


def summary(tables_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The summary of every table of :data:`TABLES` present in ``tables_dir``."""
    folder = Path(tables_dir)
    return {
        n: table_summary(folder / f"{n}.csv") for n in TABLES if (folder / f"{n}.csv").is_file()
    }


def write_summary(tables_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict:
    """Write :func:`summary` as JSON to ``out``; return it."""
    folder = Path(tables_dir)
    if not (folder / "table1.csv").is_file():
        raise FileNotFoundError(f"{folder / 'table1.csv'}: build the tables first (tables phase)")
    data = summary(folder)
    out = Path(out)
    old = out.read_text() if out.is_file() else None
    if old is None or json.loads(old) != data:  # unchanged: keep the file (and its mtime)
        write_json(out, data)
    return data
