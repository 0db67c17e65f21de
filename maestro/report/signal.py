"""Does a finished run show the method? The margins every table must show, with intervals.

For each benchmark dataset of a run (and the reference cell of its sheet):

========================================  =========================================  ========
margin                                    compares                                   required
========================================  =========================================  ========
pretrained probe over random-init probe   probe vs probe_random (reference cell)     > 0 (CI)
random-init probe over the trivial floor  probe_random vs the best constant on test  >= 0
pretrained probe over the trivial floor   probe vs the best constant on test         > 0 (CI)
MAESTRO fine-tuned over ViT from scratch  finetune vs scratch (reference cell)       > 0 (CI)
every date over N date(s)                 finetune of the reference vs a cell that   > 0 (CI)
                                          differs only by ``dates`` (when present)
linear raw model over MAESTRO fine-tuned  reference/linear vs finetune               reported
========================================  =========================================  ========

A margin's value is the difference of the means over seeds; its 95 % interval is that of the
same difference, from a paired hierarchical bootstrap (:mod:`maestro.report.resample`): a draw
resamples the seeds of each side with replacement and picks one bootstrap replicate index,
the same for every seed of both sides. Every job resampled the same test items with the same
seed (:func:`maestro.train.metrics.bootstrap`, same items in the same order), so replicate
``r`` of one run and replicate ``r`` of another are computed on the same resample: the
interval is that of the difference on shared items, much tighter than two separate intervals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maestro.report.html import write_markdown
from maestro.report.resample import seed_mean_draws, stack_replicates
from maestro.utils.atomic import write_json

DRAWS = 4000
#: Gap (points) above which "linear raw model over MAESTRO fine-tuned" is flagged.
LINEAR_GAP_FLAG = 10.0


@dataclass
class Margin:
    """One margin: ``a - b`` in points (%), its 95 % interval, and whether it holds."""

    dataset: str
    name: str
    a: str
    b: str
    value: float
    low: float
    high: float
    required: str  # "ci" (low > 0), "mean" (value >= 0) or "info"
    ok: bool
    seeds: str


@dataclass
class Run:
    """Test metric (in %) and bootstrap replicates of one or more seeds of one row."""

    label: str
    values: list[float]
    replicates: list[np.ndarray]
    items: int
    paths: list[str]


def load_run(paths: list[Path], label: str, floor: bool = False) -> Run:
    """The test metric of metrics files (``floor``: the trivial floor strategy's)."""
    values, reps, items = [], [], set()
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (has the run finished?)")
        m = json.loads(path.read_text())
        test = m["floor"]["test"] if floor else m["test"]
        boot = (test.get("bootstrap") or {}).get("replicates")
        if not boot:
            raise ValueError(f"{path}: no bootstrap replicates of the test metric")
        values.append(100.0 * float(test[m["metric"]]))
        reps.append(100.0 * np.asarray(boot, dtype=np.float64))
        items.add(int(test["items"]))
    if len(items) != 1:
        raise ValueError(f"{label}: runs tested on different item counts {sorted(items)}")
    return Run(label, values, reps, items.pop(), [str(p) for p in paths])


def paired_margin(a: Run, b: Run, draws: int = DRAWS) -> tuple[float, float, float]:
    """``mean(a) - mean(b)`` and its paired hierarchical 95 % interval (module docstring)."""
    if a.items != b.items:
        raise ValueError(f"{a.label} and {b.label} were tested on {a.items} vs {b.items} items")
    ra, rb = stack_replicates(a.replicates), stack_replicates(b.replicates)
    n_rep = min(ra.shape[1], rb.shape[1])
    rng = np.random.default_rng(0)
    r = rng.integers(0, n_rep, draws)  # one item resample per draw, shared by both sides
    diff = seed_mean_draws(ra, r, rng) - seed_mean_draws(rb, r, rng)
    lo, hi = np.percentile(diff, [2.5, 97.5])
    return float(np.mean(a.values) - np.mean(b.values)), float(lo), float(hi)


def _margin(dataset: str, name: str, a: Run, b: Run, required: str) -> Margin:
    value, lo, hi = paired_margin(a, b)
    ok = {"ci": lo > 0, "mean": value >= 0, "info": True}[required]
    seeds = f"{len(a.values)} vs {len(b.values)}"
    return Margin(dataset, name, a.label, b.label, value, lo, hi, required, ok, seeds)


def run_margins(results: str | Path, plan: Any) -> list[Margin]:
    """Every margin of the module docstring for the datasets of ``plan`` (a grid.Plan)."""
    results = Path(results)
    ref = plan.reference
    out = []
    for d in plan.datasets:

        def runs(stage: str, cell: Any = ref, d: str = d) -> list[Path]:
            return [
                results / stage / d / cell.id / f"seed~{s}" / "metrics.json"
                for s in plan.seeds_of(cell)
            ]

        probe = load_run(runs("probe"), "pretrained probe")
        rand = load_run(runs("probe_random"), "random-init probe")
        trivial = load_run(
            [results / "reference" / d / "trivial" / "metrics.json"], "trivial floor", floor=True
        )
        ft = load_run(runs("finetune"), "MAESTRO fine-tuned")
        scratch = load_run(runs("scratch"), "ViT from scratch")
        linear = load_run(
            [results / "reference" / d / "linear" / "metrics.json"], "linear raw model"
        )
        out += [
            _margin(d, "pretrained probe > random-init probe", probe, rand, "ci"),
            _margin(d, "random-init probe >= trivial floor", rand, trivial, "mean"),
            _margin(d, "pretrained probe > trivial floor", probe, trivial, "ci"),
            _margin(d, "MAESTRO fine-tuned > ViT from scratch", ft, scratch, "ci"),
        ]
        for cell in plan.cells:
            differs = [c for c in ref.values if cell.values[c] != ref.values[c]]
            if differs == ["dates"] and d in cell.datasets:
                few = load_run(runs("finetune", cell), f"{cell.values['dates']} date(s) fine-tuned")
                out.append(
                    _margin(
                        d, f"every date > {cell.values['dates']} date(s), fine-tuned", ft, few, "ci"
                    )
                )
        out.append(_margin(d, "linear raw model - MAESTRO fine-tuned (gap)", linear, ft, "info"))
    return out


def _verdict(m: Margin) -> str:
    if m.required == "info":
        return "flag: see docs/demo.md" if m.value > LINEAR_GAP_FLAG else "info"
    return "ok" if m.ok else "MISSING"


def markdown(margins: list[Margin], titles: Mapping[str, str] | None = None) -> str:
    """The margins as a Markdown table."""
    titles = titles or {}
    lines = [
        "| dataset | margin | points [95 % interval] | seeds | required | verdict |",
        "|---|---|---|---|---|---|",
    ]
    need = {"ci": "interval > 0", "mean": ">= 0", "info": "reported"}
    for m in margins:
        lines.append(
            f"| {titles.get(m.dataset, m.dataset)} | {m.name} | {m.value:+.1f} "
            f"[{m.low:+.1f}, {m.high:+.1f}] | {m.seeds} | {need[m.required]} | {_verdict(m)} |"
        )
    return "\n".join(lines) + "\n"


def write_report(
    margins: list[Margin], out: str | Path, titles: Mapping[str, str] | None = None
) -> None:
    """``out``.md (the table) with its ``.html`` page, and ``out``.json (every margin)."""
    out = Path(out)
    failed = [m for m in margins if not m.ok]
    head = "# Signal check: does the run show the method?\n\n"
    head += (
        "Every required margin holds.\n\n"
        if not failed
        else f"{len(failed)} required margin(s) missing: a defect to find, not a result.\n\n"
    )
    write_markdown(out.with_suffix(".md"), head + markdown(margins, titles))
    write_json(
        out.with_suffix(".json"), {"ok": not failed, "margins": [asdict(m) for m in margins]}
    )
