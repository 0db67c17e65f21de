"""Compute cost of a run, from Snakemake's per-job benchmark files.

Each rule writes ``results/benchmarks/<rule>/<wildcards>.tsv`` (wall time ``s``, ``cpu_time``,
``max_rss`` in MiB...). GPU-hours are wall hours x the GPUs the job used, read from the
``provenance.json`` next to its outputs (device and DDP world size); CPU-only jobs count 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from maestro.report.html import write_markdown
from maestro.report.tables import latex, markdown
from maestro.utils.atomic import write_text

#: Benchmark folder of a rule -> the results folder holding its outputs (None: no provenance).
RULE_OUTPUTS = {
    "pretrain": "pretrain",
    "probe": "probe",
    "finetune": "finetune",
    "scratch": "scratch",
    "probe_random": "probe_random",
    "transfer_probe": "transfer/probe",
    "transfer_finetune": "transfer/finetune",
}


def _gpus(results: Path, rule: str, rel: Path) -> int:
    """GPUs a job used: from its provenance (0 on CPU, world size under DDP)."""
    folder = RULE_OUTPUTS.get(rule)
    if folder is None:
        return 0
    prov = results / folder / rel.with_suffix("") / "provenance.json"
    if not prov.is_file():
        return 0
    device = json.loads(prov.read_text()).get("device", {})
    return (
        int(device.get("world_size", 1)) if str(device.get("device", "")).startswith("cuda") else 0
    )


def collect(results: str | Path) -> pd.DataFrame:
    """One row per job: rule, the job's wildcards path, wall/CPU hours, GPU-hours, peak RSS."""
    results = Path(results)
    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        rule_dir = tsv.relative_to(results / "benchmarks").parts[0]
        rel = tsv.relative_to(results / "benchmarks" / rule_dir)
        bench = pd.read_csv(tsv, sep="\t")
        if bench.empty:
            continue
        last = bench.iloc[-1]
        wall_h = float(last["s"]) / 3600
        gpus = _gpus(results, rule_dir, rel)
        rows.append(
            {
                "rule": rule_dir,
                "job": rel.with_suffix("").as_posix(),
                "dataset": rel.parts[0] if len(rel.parts) > 1 else rel.stem,
                # training jobs: <dataset>/[from~<source>/]<cell>/seed~<s>.tsv
                "cell": rel.parts[-2] if rule_dir in RULE_OUTPUTS and len(rel.parts) > 2 else "",
                "wall_h": wall_h,
                "cpu_h": float(last.get("cpu_time", 0.0) or 0.0) / 3600,
                "gpus": gpus,
                "gpu_h": wall_h * gpus,
                "max_rss_gib": float(last.get("max_rss", 0.0) or 0.0) / 1024,
            }
        )
    return pd.DataFrame(rows)


def per_cell(jobs: pd.DataFrame) -> pd.DataFrame:
    """Training cost of each ablation cell: all its jobs over datasets, seeds and stages."""
    cells = jobs[jobs["cell"] != ""]
    return (
        cells.groupby("cell", sort=True)
        .agg(
            jobs=("job", "count"),
            wall_h=("wall_h", "sum"),
            cpu_h=("cpu_h", "sum"),
            gpu_h=("gpu_h", "sum"),
        )
        .reset_index()
    )


def _cell_markdown(cells: pd.DataFrame) -> str:
    header = ["Cell", "Jobs", "Wall h", "CPU h", "GPU h"]
    body = [
        [f"`{r.cell}`", str(r.jobs), f"{r.wall_h:.3f}", f"{r.cpu_h:.3f}", f"{r.gpu_h:.3f}"]
        for r in cells.itertuples()
    ]
    note = "Per ablation cell (pretraining, probe, fine-tune, supervised baseline, transfers):"
    return f"\n{note}\n\n" + markdown(header, body)


def write_compute_table(results: str | Path, out_stem: str | Path) -> pd.DataFrame:
    """Per rule and dataset, then per cell: jobs, wall, CPU and GPU hours (peak RSS per rule).

    Writes ``out_stem``.md/.html/.tex (the summaries) and ``out_stem``.csv (one row per job).
    """
    jobs = collect(results)
    if jobs.empty:
        raise ValueError(f"{results}/benchmarks: no benchmark file found")
    agg = (
        jobs.groupby(["rule", "dataset"], sort=True)
        .agg(
            jobs=("job", "count"),
            wall_h=("wall_h", "sum"),
            cpu_h=("cpu_h", "sum"),
            gpu_h=("gpu_h", "sum"),
            max_rss_gib=("max_rss_gib", "max"),
        )
        .reset_index()
    )
    total = {"rule": "total", "dataset": "", "jobs": int(agg["jobs"].sum())}
    total |= {k: agg[k].sum() for k in ("wall_h", "cpu_h", "gpu_h")}
    total["max_rss_gib"] = agg["max_rss_gib"].max()
    agg = pd.concat([agg, pd.DataFrame([total])], ignore_index=True)
    header = ["Rule", "Dataset", "Jobs", "Wall h", "CPU h", "GPU h", "Peak RSS GiB"]
    body = [
        [
            r.rule,
            r.dataset,
            str(r.jobs),
            f"{r.wall_h:.3f}",
            f"{r.cpu_h:.3f}",
            f"{r.gpu_h:.3f}",
            f"{r.max_rss_gib:.2f}",
        ]
        for r in agg.itertuples()
    ]
    out_stem = Path(out_stem)
    note = (
        "Sums of the Snakemake benchmark records of every job (wall time, CPU time, peak "
        "resident memory); GPU-hours = wall hours x GPUs used (from each job's provenance)."
    )
    cells = per_cell(jobs)
    md = f"# Compute cost\n\n{note}\n\n" + markdown(header, body)
    write_markdown(out_stem.with_suffix(".md"), md + (_cell_markdown(cells) if len(cells) else ""))
    write_text(out_stem.with_suffix(".tex"), latex(header, body, f"Compute cost. {note}", 2))
    write_text(out_stem.with_suffix(".csv"), jobs.round(6).to_csv(index=False))
    return agg
