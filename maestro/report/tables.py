"""Tables from downstream ``metrics.json`` files (never recomputes a metric).

- Table 1: intra-dataset results of the MAESTRO recipe per fusion mode, size and pretraining
  length (MAESTRO, MAESTRO†), the frozen-encoder probe, and the supervised ViT, with the
  paper's published numbers beside ours.
- Table 2: cross-dataset results (pretrained on one dataset, fine-tuned on another).
- One table per ablation axis (target normalization, spectral fusion, fusion mode): the
  reference cell and every cell that differs from it on that axis only.

A table cell is the test metric in %, mean ± std over seeds, and the 95 % interval of that
mean from a hierarchical bootstrap (:mod:`maestro.report.resample`): a draw resamples the
seeds with replacement and picks one of the bootstrap replicates their jobs stored (which
resampled the same test items), the same replicate for every seed.
Every table is written as Markdown, CSV and LaTeX.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from maestro.report import paper
from maestro.report.html import write_markdown
from maestro.report.resample import seed_mean_draws, stack_replicates
from maestro.utils.atomic import write_text

METRIC_NAMES = {"weighted_f1": "wF1", "miou": "mIoU"}
SIZE_NAMES = {"tiny": "Tiny", "small": "Small", "base": "Base", "large": "Large"}
NORM_NAMES = {"none": "none", "patch": "patch-wise", "patchgroup": "patch-group-wise"}
HIERARCHICAL_DRAWS = 4000
#: Ablation axes: the cell columns that define each.
AXES = {
    "norm": ("Target normalization", ("norm", "groups")),
    "spectral": ("Spectral fusion", ("spectral",)),
    "fusion": ("Fusion mode", ("fusion", "inter")),
    "dates": ("Input dates", ("dates",)),
}


def fusion_name(cell: Mapping[str, Any]) -> str:
    """The paper's fusion-mode label of a cell."""
    return f"inter-{cell['fusion']}" if int(cell["inter"]) else str(cell["fusion"])


def norm_name(cell: Mapping[str, Any]) -> str:
    """Target normalization label (with the source of the groups when patch-group-wise)."""
    name = NORM_NAMES.get(str(cell["norm"]), str(cell["norm"]))
    if cell["norm"] == "patchgroup":
        name += " (found groups)" if cell.get("groups") == "analysis" else " (spec groups)"
    return name


#: Overrides a size label spells out (the others are counted; the CSV keeps the config).
SIZE_KEYS = {"embed_dim": "width", "depth": "depth"}


def size_label(size: str, overrides: Mapping[str, Any]) -> str:
    """``Tiny``, or ``Tiny (width 64, depth 4, +8 settings)`` when the preset was overridden."""
    name = SIZE_NAMES.get(size, size)
    if overrides:
        parts = [f"{SIZE_KEYS[k]} {overrides[k]}" for k in SIZE_KEYS if k in overrides]
        rest = len([k for k in overrides if k not in SIZE_KEYS])
        parts += [f"+{rest} setting{'s' if rest > 1 else ''}"] if rest else []
        name += " (" + ", ".join(parts) + ")"
    return name


def load_metrics(paths: Iterable[str | Path]) -> pd.DataFrame:
    """One row per downstream metrics file, with its labels and bootstrap replicates (in %)."""
    rows = []
    for path in paths:
        m = json.loads(Path(path).read_text())
        missing = [k for k in ("dataset", "mode", "metric", "test", "cell", "seed") if k not in m]
        if missing:
            raise ValueError(f"{path}: not a downstream metrics file (missing {missing})")
        # reference rows have no cell; cells of older runs have no dates column (all dates)
        cell = {"dates": "all"} | {k: str(v) for k, v in m["cell"].items()} if m["cell"] else {}
        boot = (m["test"].get("bootstrap") or {}).get("replicates") or []
        value = float(m["test"][m["metric"]])
        if not np.isfinite(value) or not np.all(np.isfinite(np.asarray(boot, dtype=float))):
            raise ValueError(
                f"{path}: expected a finite test {m['metric']} and bootstrap replicates, "
                f"found {value} (a diverged or empty evaluation)"
            )
        rows.append(
            {
                **{f"cell_{k}": v for k, v in cell.items()},
                "mode": m["mode"],
                "strategy": m.get("strategy"),
                "source": m.get("transfer_from"),
                "released": m.get("released"),
                "size": size_label(
                    cell.get("size", m.get("model_size", "")), m.get("model_overrides") or {}
                ),
                "dataset": m["dataset"],
                "title": m.get("title", m["dataset"]),
                "metric": METRIC_NAMES.get(m["metric"], m["metric"]),
                "seed": int(m["seed"]),
                "value": 100.0 * value,
                "replicates": 100.0 * np.asarray(boot, dtype=np.float64),
                "path": str(path),
                # baseline foundation models: the table row, size and fusion of the backbone
                "row": m.get("row"),
                "baseline_size": (m.get("baseline") or {}).get("size"),
                "baseline_fusion": (m.get("baseline") or {}).get("fusion"),
                "baseline_model": (m.get("baseline") or {}).get("model"),
                "baseline_weights": (m.get("baseline") or {}).get("weights"),
            }
        )
    if not rows:
        raise ValueError("no metrics files given")
    return pd.DataFrame(rows)


def hierarchical_ci(
    replicates: Sequence[np.ndarray], draws: int = HIERARCHICAL_DRAWS
) -> tuple[float, float]:
    """95 % interval of the mean over seeds: resample the seeds, then one shared replicate."""
    reps = [r for r in replicates if len(r)]
    if not reps:
        return float("nan"), float("nan")
    stack = stack_replicates(reps)  # (seeds, R)
    rng = np.random.default_rng(0)
    r = rng.integers(0, stack.shape[1], size=draws)
    lo, hi = np.percentile(seed_mean_draws(stack, r, rng), [2.5, 97.5])
    return float(lo), float(hi)


def _check_seeds(g: pd.DataFrame, key: Any) -> None:
    """One file per seed in a cell, and bootstrap replicates in all of them or none.

    Raises:
        ValueError: the cell and the files of a repeated seed (one run counted twice, or two
            runs of other configurations filed under one cell), or the files without
            replicates (the interval would cover fewer seeds than the mean).
    """
    dup = g[g["seed"].duplicated(keep=False)]
    if len(dup):
        raise ValueError(
            f"table cell {key}: expected one metrics file per seed, found seed "
            f"{int(dup['seed'].iloc[0])} in {' '.join(dup['path'])}"
        )
    empty = [p for p, r in zip(g["path"], g["replicates"], strict=True) if not len(r)]
    if empty and len(empty) < len(g):
        raise ValueError(
            f"table cell {key}: expected bootstrap replicates in every seed's metrics, "
            f"missing in {' '.join(empty)}"
        )


def summarize(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean, std, seed count, hierarchical 95 % interval and source files per ``keys`` +
    dataset."""
    columns = [
        *keys,
        "dataset",
        "title",
        "metric",
        "mean",
        "std",
        "n_seeds",
        "seeds",
        "ci_low",
        "ci_high",
        "files",
    ]
    if df.empty:
        return pd.DataFrame(columns=columns)
    out = []
    for key, g in df.groupby([*keys, "dataset"], sort=False, dropna=False):
        _check_seeds(g, key)
        lo, hi = hierarchical_ci(list(g["replicates"]))
        out.append(
            dict(zip([*keys, "dataset"], key, strict=True))
            | {
                "title": g["title"].iloc[0],
                "metric": g["metric"].iloc[0],
                "mean": g["value"].mean(),
                "std": g["value"].std(ddof=1) if len(g) > 1 else 0.0,
                "n_seeds": len(g),
                "seeds": " ".join(map(str, sorted(g["seed"]))),
                "ci_low": lo,
                "ci_high": hi,
                # the metrics.json files behind the cell, in seed order (what audit reads)
                "files": " ".join(g.sort_values("seed", kind="stable")["path"]),
            }
        )
    return pd.DataFrame(out)


def fmt(row: Mapping[str, Any] | None) -> str:
    """``55.0 ± 7.1 [41.2, 66.3]`` (std only with several seeds), or ``–``."""
    if row is None:
        return "–"
    text = f"{row['mean']:.1f}"
    if row["n_seeds"] > 1:
        text += f" ± {row['std']:.1f}"
    if np.isfinite(row["ci_low"]):
        text += f" [{row['ci_low']:.1f}, {row['ci_high']:.1f}]"
    return text


def _datasets(summary: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(summary["dataset"]))
    return [d for d in paper.TABLE1_DATASETS if d in present] + [
        d for d in present if d not in paper.TABLE1_DATASETS
    ]


def pivot(
    summary: pd.DataFrame, label_cols: list[str]
) -> tuple[list[str], list[list[str]], pd.DataFrame]:
    """Rows of formatted cells: header, body, and the long table for the CSV."""
    if summary.empty:
        return list(label_cols), [], summary
    datasets = _datasets(summary)
    titles = dict(zip(summary["dataset"], summary["title"], strict=False))
    metrics = dict(zip(summary["dataset"], summary["metric"], strict=False))
    header = [*label_cols, *(f"{titles[d]} ({metrics[d]})" for d in datasets)]
    body = []
    for labels, g in summary.groupby(label_cols, sort=False, dropna=False):
        labels = labels if isinstance(labels, tuple) else (labels,)
        by_ds = {r["dataset"]: r for _, r in g.iterrows()}
        body.append([*(str(v) for v in labels), *(fmt(by_ds.get(d)) for d in datasets)])
    return header, body, summary


def markdown(header: list[str], body: list[list[str]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body]) + "\n"


_LATEX = {
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "_": r"\_",
    "±": r"$\pm$",
    "†": r"$^\dagger$",
    "–": "--",
}


def _esc(s: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in s)


def latex(header: list[str], body: list[list[str]], caption: str, n_labels: int) -> str:
    """A booktabs LaTeX table: ``n_labels`` left-aligned label columns, centred values."""
    esc = _esc
    cols = "l" * n_labels + "c" * (len(header) - n_labels)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{esc(caption)}}}"]
    lines += [rf"\begin{{tabular}}{{{cols}}}", r"\toprule"]
    lines.append(" & ".join(esc(h) for h in header) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(esc(c) for c in row) + r" \\" for row in body]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(
    stem: str | Path,
    title: str,
    note: str,
    table: tuple[list[str], list[list[str]], pd.DataFrame],
    n_labels: int,
    extra_md: str = "",
) -> None:
    """``stem``.md (title, note, table) with its ``.html`` page, ``stem``.csv (long format)
    and ``stem``.tex."""
    stem = Path(stem)
    header, body, long = table
    md = f"# {title}\n\n{note}\n\n" + (markdown(header, body) if body else "(no run)\n") + extra_md
    write_markdown(stem.with_suffix(".md"), md)
    long = long.drop(columns=[c for c in ("replicates",) if c in long.columns])
    write_text(stem.with_suffix(".csv"), long.round(4).to_csv(index=False))
    write_text(stem.with_suffix(".tex"), latex(header, body, f"{title}. {note}", n_labels))


def reference_table(
    rows: Mapping[tuple[str, ...], tuple[float | None, ...]],
    datasets: list[str],
    head: list[str],
    titles: Mapping[str, str],
) -> str:
    """The paper's published numbers for ``datasets`` (Markdown), labelled as such."""
    body = []
    for labels, values in rows.items():
        by_ds = dict(zip(paper.TABLE1_DATASETS, values, strict=True))
        body.append(
            [*labels, *("–" if by_ds.get(d) is None else f"{by_ds[d]:.1f}" for d in datasets)]
        )
    head = [*head, *(titles.get(d, d) for d in datasets)]
    return "\nPublished reference (MAESTRO paper; Base models, full datasets):\n\n" + markdown(
        head, body
    )
