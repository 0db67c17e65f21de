"""``maestro audit``: audit a table cell, a stage's runs or metrics files (entry points).

The pieces: :mod:`maestro.provenance.audit` follows the chains and compares hashes,
:mod:`maestro.provenance.audit_table` finds the files behind a table cell and
:mod:`maestro.provenance.audit_report` renders the result; this module only joins them (so
none of them imports another's callers: no import cycle).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from maestro.provenance.audit import Auditor, Report
from maestro.provenance.audit_report import failure_message, render
from maestro.provenance.audit_table import cell_metrics, load_config, stage_metrics, table_link
from maestro.provenance.dvcio import dvc_vars


def audit(
    root: str | os.PathLike[str],
    metrics: list[str],
    config: dict | None = None,
    deep: bool = True,
    title: str = "",
    cell: dict | None = None,
) -> Report:
    """Audit the chains of ``metrics`` files (and the table cell they make, if given)."""
    auditor = Auditor(root, config, deep)
    report = Report(title or ", ".join(metrics))
    if cell is not None:
        report.table = table_link(cell, auditor)
    report.chains = [auditor.chain(m) for m in metrics]
    report.data = auditor.data_links()
    return report


def run(args: Any) -> int:
    """``maestro audit``: pick the cell from the arguments, print the report; 1 on failure."""
    root = Path(args.root)
    configfile = Path(args.configfile or dvc_vars(root).get("configfile", "config/config.yaml"))
    configfile = configfile if configfile.is_absolute() else root / configfile
    config = load_config(configfile, root) if configfile.is_file() else {}
    cell, title = None, ""
    if args.table:
        if not args.dataset:
            raise ValueError("--table needs --dataset (the table column: dataset id or title)")
        if not config:
            raise FileNotFoundError(f"{configfile}: the run's config is needed to read a table")
        cell = cell_metrics(root, args.table, args.row, args.dataset, config)
        metrics = [m["path"] for m in cell["metrics"]]
        row = " / ".join(cell["labels"].values())
        title = f"{cell['table']}: row {row}, column {cell['dataset']} = {cell['mean']}"
    elif args.metrics:
        metrics = list(args.metrics)
    elif args.stage and args.dataset and args.cell:
        metrics = stage_metrics(root, args.stage, args.dataset, args.cell, args.seed, args.source)
        title = f"{args.stage} {args.dataset} {args.cell}" + (
            f" from {args.source}" if args.source else ""
        )
    else:
        raise ValueError(
            "choose the cell: --table + --row + --dataset, --metrics, or "
            "--stage + --dataset + --cell [--seed]"
        )
    report = audit(root, metrics, config, deep=not args.quick, title=title, cell=cell)
    print(json.dumps(report.to_dict(), indent=1) if args.json else render(report, root))
    if report.failures:
        print(failure_message(report), file=sys.stderr)
        return 1
    return 0
