"""From a table cell to the metrics files that make it.

A table CSV (``maestro report-tables``, long format) has label columns (every column before
``dataset``), then ``dataset``, ``mean``, ``n_seeds``... The metrics files behind one cell are
found by running the table's own builder (:mod:`maestro.report.build`) on each metrics file
of the configured run alone: a file belongs to the cell when it lands on the cell's labels
and dataset. The cell's value is then recomputed from those files (:func:`table_link`).
:func:`stage_metrics` finds a run's metrics files from its stage, dataset, cell and seed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from maestro.grid import make_plan, parse_cell_id
from maestro.provenance.audit import Auditor, Check, Link
from maestro.report import build
from maestro.report.tables import AXES, load_metrics

Builder = Callable[[pd.DataFrame], pd.DataFrame]


def table_csv(root: Path, table: str) -> tuple[str, Path]:
    """``(name, csv path)`` of ``table1`` / ``ablation_norm`` / ``results/tables/x.csv``."""
    if table.endswith(".csv"):
        path = Path(table) if Path(table).is_absolute() else root / table
        return path.stem, path
    return table, root / "results" / "tables" / f"{table}.csv"


def builder(name: str, reference: Mapping[str, str], titles: Mapping[str, str]) -> Builder:
    """The long-format summary of table ``name`` for a metrics DataFrame."""
    if name == "table1":
        return lambda df: build.table1(df, reference)[2]
    if name == "table2":
        return lambda df: build.table2(df, titles)[2]
    axis = name.removeprefix("ablation_")
    if name.startswith("ablation_") and axis in AXES:
        return lambda df: build.ablation(df, reference, axis)[2]
    raise ValueError(f"{name}: no table cell to audit (table1, table2, ablation_<axis>)")


def label_columns(df: pd.DataFrame) -> list[str]:
    """The label columns of a long-format table."""
    if "dataset" not in df.columns:
        raise ValueError("not a long-format table (no dataset column)")
    return list(df.columns[: list(df.columns).index("dataset")])


def select_row(df: pd.DataFrame, selectors: Sequence[str]) -> tuple[str, ...]:
    """The label tuple picked by ``selectors`` (index, label value, or ``COLUMN=VALUE``)."""
    labels = label_columns(df)
    rows = list(dict.fromkeys(tuple(str(r[c]) for c in labels) for _, r in df.iterrows()))
    keep = list(range(len(rows)))
    for sel in selectors:
        if sel.isdigit():
            keep = [i for i in keep if i == int(sel)]
        elif "=" in sel and sel.split("=", 1)[0] in labels:
            col, value = sel.split("=", 1)
            keep = [i for i in keep if rows[i][labels.index(col)] == value]
        else:
            keep = [i for i in keep if sel in rows[i]]
    if len(keep) != 1:
        listed = "\n".join(f"  {i}: {' / '.join(rows[i])}" for i in range(len(rows)))
        found = "no row" if not keep else f"{len(keep)} rows"
        raise ValueError(
            f"--row {list(selectors)} matches {found}; pick one by index, label value or "
            f"COLUMN=VALUE (columns {labels}):\n{listed}"
        )
    return rows[keep[0]]


def load_config(path: str | os.PathLike[str], root: Path) -> dict[str, Any]:
    """A workflow config with its variants sheet resolved against ``root``."""
    import yaml

    config = yaml.safe_load(Path(path).read_text()) or {}
    sheet = Path(config.get("variants", "config/variants.tsv"))
    config["variants"] = str(sheet if sheet.is_absolute() else root / sheet)
    return config


def cell_metrics(
    root: Path,
    table: str,
    selectors: Sequence[str],
    dataset: str,
    config: Mapping[str, Any],
) -> dict[str, Any]:
    """The table cell (labels, CSV values) and the run's metrics files behind it."""
    name, csv = table_csv(root, table)
    if not csv.is_file():
        raise FileNotFoundError(f"{csv}: no such table (build the tables phase first)")
    df = pd.read_csv(csv, dtype={"seeds": str})
    labels = select_row(df, selectors)
    cols = label_columns(df)
    keep = [
        tuple(str(r[c]) for c in cols) == labels and dataset in (r["dataset"], r["title"])
        for _, r in df.iterrows()
    ]
    match = df[keep]
    if match.empty:
        present = sorted(set(df["dataset"]))
        raise ValueError(f"{csv}: row {' / '.join(labels)} has no {dataset!r} cell ({present})")
    row = match.iloc[0]
    files = row.get("files")
    if isinstance(files, str) and files.strip():
        found = listed_metrics(root, files.split())
    else:  # a table written before it listed its files: rebuild the cell from the run's files
        found = _rebuilt_metrics(root, name, row, cols, labels, config)
    return {
        "expected_seeds": configured_seeds(found, config),
        "table": name,
        "csv": csv,
        "labels": dict(zip(cols, labels, strict=True)),
        "dataset": str(row["dataset"]),
        "metric": str(row["metric"]),
        "mean": float(row["mean"]),
        "n_seeds": int(row["n_seeds"]),
        "metrics": sorted(found, key=lambda f: f["seed"]),
    }


def configured_seeds(
    found: Sequence[Mapping[str, Any]], config: Mapping[str, Any]
) -> list[int] | None:
    """The seeds the configured run has for the cell of ``found`` (its paths with every
    ``seed~<s>`` alike), or None when the configuration cannot say (no plan, no match)."""
    try:
        plan = make_plan(config)
        paths = plan.downstream() + plan.transfer() + plan.baseline_runs()
    except (ValueError, OSError, KeyError, TypeError):
        return None
    templates = {re.sub(r"seed~\d+", "seed~*", f["path"]) for f in found}
    seeds = {
        int(m.group(1))
        for p in paths
        if re.sub(r"seed~\d+", "seed~*", p) in templates and (m := re.search(r"seed~(\d+)", p))
    }
    return sorted(seeds) or None


def listed_metrics(root: Path, paths: Sequence[str]) -> list[dict[str, Any]]:
    """Seed and test value (in %) of each metrics file a table cell lists; a missing or
    unreadable file is left out (the cell's check then fails on the count)."""
    found = []
    for rel in paths:
        path = Path(rel) if Path(rel).is_absolute() else root / rel
        try:
            m = json.loads(path.read_text())
            value = 100.0 * float(m["test"][m["metric"]])
            found.append({"path": rel, "seed": int(m["seed"]), "value": value} | {
                "dataset": m.get("dataset"), "cell": m.get("cell"),
                "transfer_from": m.get("transfer_from"), "job": _job_of(path.parent),
            })  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def _job_of(folder: Path) -> str | None:
    """The hash of a run's recorded configuration without its seed (None: no record)."""
    from maestro.provenance.record import config_hash

    try:
        config = json.loads((folder / "provenance.json").read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(config, dict):
        return None
    return config_hash({k: v for k, v in config.items() if k != "seed"})


def path_mismatches(found: Sequence[Mapping[str, Any]], dataset: str) -> list[str]:
    """What the metrics files of one table cell say against their paths and each other: the
    cell's dataset, the ``seed~<s>``, ``from~<source>`` and cell-id components of each path,
    one file per seed. Returns one line per disagreement (empty: consistent)."""
    out = []
    seeds = [f["seed"] for f in found]
    if len(set(seeds)) != len(seeds):
        out.append(f"seeds {sorted(seeds)}: a seed counted twice")
    for f in found:
        parts = Path(f["path"]).parts
        if f.get("dataset") not in (None, dataset):
            out.append(f"{f['path']}: dataset {f['dataset']!r}, the cell's is {dataset!r}")
        for part in parts:
            if part.startswith("seed~") and part != f"seed~{f['seed']}":
                out.append(f"{f['path']}: seed {f['seed']} under {part}")
            if part.startswith("from~") and part != f"from~{f.get('transfer_from')}":
                out.append(f"{f['path']}: transfer_from {f.get('transfer_from')!r} under {part}")
            if "~" in part and part.count("~") > 3 and f.get("cell"):
                try:
                    path_cell = parse_cell_id(part)
                except ValueError:
                    continue
                cell = {k: str(v) for k, v in f["cell"].items() if k in path_cell}
                if cell != path_cell:
                    diff = {k: v for k, v in cell.items() if path_cell.get(k) != v}
                    out.append(f"{f['path']}: cell {diff} under {part}")
        if f.get("dataset") and f["dataset"] not in parts:
            out.append(f"{f['path']}: dataset {f['dataset']!r} is not in its path")
    jobs = {f["path"]: f.get("job") for f in found if f.get("job")}
    if len(set(jobs.values())) > 1:  # seeds of one cell differ only in their seed
        first = next(iter(jobs.values()))
        other = [p for p, j in jobs.items() if j != first]
        out.append(f"seeds recorded with other configurations than the first: {other}")
    return out


def _rebuilt_metrics(
    root: Path,
    name: str,
    row: pd.Series,
    cols: list[str],
    labels: tuple[str, ...],
    config: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """The run's metrics files whose single-row table maps to ``labels``."""
    plan = make_plan(config)
    reference = parse_cell_id(plan.reference.id)
    candidates = [p for p in plan.downstream() + plan.transfer() if (root / p).is_file()]
    if not candidates:
        raise FileNotFoundError(f"{root}: none of the configured run's metrics files exists")
    every = load_metrics([root / p for p in candidates])
    titles = dict(zip(every["dataset"], every["title"], strict=False)) | {
        "s2_naip": "S2-NAIP urban"
    }
    make = builder(name, reference, titles)
    found = []
    for rel, (_, one) in zip(candidates, every.iterrows(), strict=True):
        if one["dataset"] != row["dataset"]:
            continue
        try:
            summary = make(pd.DataFrame([one]))
        except KeyError:  # a run the table does not hold (e.g. a transfer run in Table 1)
            continue
        if not summary.empty and tuple(str(v) for v in summary.iloc[0][cols]) == labels:
            found.append({"path": rel, "seed": int(one["seed"]), "value": float(one["value"])})
    return found


def table_link(cell: dict[str, Any], auditor: Auditor) -> Link:
    """The table cell: its value recomputed from its metrics files, and dvc.lock."""
    values = [m["value"] for m in cell["metrics"]]
    link = Link("table", str(cell["csv"]), {k: cell[k] for k in ("dataset", "metric", "mean")})
    if not values:
        what = "no metrics file of the configured run maps to this cell"
        link.checks.append(Check(what, False, str(cell["csv"])))
        return link
    mean = sum(values) / len(values)
    wrong = path_mismatches(cell["metrics"], cell["dataset"])
    link.checks.append(
        Check(
            "its metrics files: one per seed, each of the cell's dataset, seed, cell and source",
            not wrong,
            str(cell["csv"]),
            "consistent",
            "; ".join(wrong) or "consistent",
        )
    )
    expected = cell.get("expected_seeds")
    seeds = sorted(m["seed"] for m in cell["metrics"])
    link.checks.append(
        Check(
            "its seeds are the configured run's",
            None if expected is None else seeds == expected,
            str(cell["csv"]),
            " ".join(map(str, expected or [])) or None,
            " ".join(map(str, seeds)),
        )
    )
    link.checks.append(
        Check(
            f"value = mean of its {len(values)} metrics file(s)",
            abs(round(mean, 4) - cell["mean"]) <= 1e-4 and len(values) == cell["n_seeds"],
            str(cell["csv"]),
            f"{cell['mean']} ({cell['n_seeds']} seeds)",
            f"{round(mean, 4)} ({len(values)} seeds)",
        )
    )
    link.checks += auditor.dvc_file(Path(cell["csv"]))
    return link


def stage_metrics(
    root: Path, stage: str, dataset: str, cell: str, seed: int | None, source: str | None = None
) -> list[str]:
    """metrics.json paths of a run given by stage, dataset, cell (and seed, source)."""
    base = (
        f"results/transfer/{stage}/{dataset}/from~{source}/{cell}"
        if source
        else f"results/{stage}/{dataset}/{cell}"
    )
    if seed is not None:
        return [f"{base}/seed~{seed}/metrics.json"]
    found = sorted(
        p.relative_to(root).as_posix() for p in (root / base).glob("seed~*/metrics.json")
    )
    if not found:
        raise FileNotFoundError(f"{root / base}: no seed~*/metrics.json")
    return found
