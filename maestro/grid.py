"""The experiment grid: the ablation sheet, transfer pairs, and the result paths they imply.

The sheet (``config/variants*.tsv``) has one row per pretraining cell. Identity columns
(:data:`maestro.experiment.CELL_COLUMNS`) make the cell id used in every path, e.g.
``fusion~group_inter~3_spectral~joint_norm~patchgroup_groups~spec_size~base_length~1``;
scheduling columns say where a cell runs (``datasets``: ``all`` or ``+``-joined names) and
whether its architecture is also trained from scratch (``scratch``: ``yes``/``no``). The first
row is the *reference cell*: ablation tables compare every other cell with it, and
cross-dataset transfer uses it.

Paths (``results/``):

- ``pretrain/<dataset>/<cell>/seed~<s>/``            pretraining on a dataset
- ``{probe,finetune,scratch,probe_random}/<dataset>/<cell>/seed~<s>/``  intra-dataset downstream
- ``reference/<dataset>/{trivial,linear}/``           reference rows (no training of a model)
- ``transfer/{probe,finetune}/<target>/from~<source>/<cell>/seed~<s>/``  cross-dataset

This module never imports Snakemake; the workflow asks it for targets.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maestro.baselines.sheet import BaselineRow, read_baselines
from maestro.experiment import (
    CELL_COLUMNS,
    CELL_DEFAULTS,
    SCHEDULE_COLUMNS,
    SCHEDULE_DEFAULTS,
    check_cell,
    model_config,
)
from maestro.jobs import STEPS, job_for, phase_section

DOWNSTREAM = ("probe", "finetune", "scratch", "probe_random")
#: Reference rows computed per dataset (maestro.train.reference).
REFERENCES = ("trivial", "linear")


def cell_id(cell: Mapping[str, Any]) -> str:
    """The path component of a cell: ``col~value`` joined by ``_`` in column order."""
    return "_".join(f"{c}~{cell[c]}" for c in CELL_COLUMNS)


def parse_cell_id(cid: str) -> dict[str, str]:
    """Inverse of :func:`cell_id`."""
    values = dict(part.split("~", 1) for part in cid.split("_") if "~" in part)
    values = {c: values[c] for c in CELL_COLUMNS if c in values} | {
        k: v for k, v in values.items() if k not in CELL_COLUMNS
    }
    if list(values) != list(CELL_COLUMNS):
        raise ValueError(f"not a cell id: {cid!r} (expected columns {list(CELL_COLUMNS)})")
    return values


@dataclass(frozen=True)
class Cell:
    """One row of the sheet."""

    values: dict[str, str]  # identity columns, as strings
    datasets: tuple[str, ...]  # where it runs
    scratch: bool  # also train the architecture from random initialization (and probe it)
    seeds: tuple[int, ...] | None = None  # None: the config's seeds

    @property
    def id(self) -> str:
        """Path component."""
        return cell_id(self.values)


def read_sheet(
    path: str | Path, all_datasets: Iterable[str], model: Mapping[str, Any] | None = None
) -> list[Cell]:
    """Parse and validate the ablation sheet; errors name the file and the row.

    With ``model`` (the configuration's ``model`` section) every row's model configuration
    is built too, so that a setting the model refuses (``inter`` >= the depth) names its row.
    """
    all_datasets = tuple(all_datasets)
    with open(path, newline="") as f:
        numbered = [(n, ln) for n, ln in enumerate(f, 1) if ln.strip() and not ln.startswith("#")]
    reader = csv.DictReader((ln for _, ln in numbered), delimiter="\t")
    rows = list(reader)
    if not rows:
        raise ValueError(f"{path}: the ablation sheet has no row")
    known = {*CELL_COLUMNS, *SCHEDULE_COLUMNS}
    unknown = [c for c in reader.fieldnames or [] if c not in known]
    if unknown:
        raise ValueError(
            f"{path}: unknown columns {unknown}; known: {[*CELL_COLUMNS, *SCHEDULE_COLUMNS]}"
        )
    defaults = {**CELL_DEFAULTS, **SCHEDULE_DEFAULTS}
    cells, seen = [], set()
    for (n, _), row in zip(numbered[1:], rows, strict=True):  # line numbers in the file
        where = f"{path}, line {n}"
        if None in row:
            raise ValueError(f"{where}: more fields than the header's {len(reader.fieldnames)}")
        row = dict(row)
        for c, v in defaults.items():
            if c not in row:
                row[c] = v
        missing = [c for c in (*CELL_COLUMNS, *SCHEDULE_COLUMNS) if not row.get(c)]
        if missing:
            raise ValueError(f"{where}: missing columns {missing}")
        try:
            values = {k: str(v) for k, v in check_cell(row).items()}
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        scratch = row["scratch"].strip().lower()
        if scratch not in ("yes", "no"):
            raise ValueError(f"{where}: scratch must be yes or no, found {row['scratch']!r}")
        names = (
            all_datasets if row["datasets"].strip() == "all" else tuple(row["datasets"].split("+"))
        )
        unknown = [d for d in names if d not in all_datasets]
        if unknown:
            raise ValueError(
                f"{where}: datasets {unknown} are not in the run's datasets {list(all_datasets)}"
            )
        seeds_text = row["seeds"].strip()
        if seeds_text == "all":
            seeds = None
        elif all(p.isdigit() for p in seeds_text.split("+")):
            seeds = tuple(int(p) for p in seeds_text.split("+"))
            if len(set(seeds)) != len(seeds):  # one run would count as two seeds
                raise ValueError(f"{where}: seeds must differ, found {seeds_text!r}")
        else:
            raise ValueError(
                f"{where}: seeds must be 'all' or +-joined seeds, found {seeds_text!r}"
            )
        cell = Cell(values, tuple(names), scratch == "yes", seeds)
        if model is not None:
            try:
                model_config({"model": model, "cell": values})
            except (ValueError, TypeError) as err:
                raise ValueError(f"{where}: {err} (model {dict(model)})") from None
        if cell.id in seen:
            raise ValueError(f"{where}: duplicate cell {cell.id}")
        seen.add(cell.id)
        cells.append(cell)
    return cells


#: Cell id of a transfer that starts from a released checkpoint instead of our pretraining.
RELEASED = "released~"


@dataclass(frozen=True)
class Transfer:
    """Pretrain on ``source`` (reference cell), probe and fine-tune on ``target``; with
    ``weights``, start from that released checkpoint (a ``weights`` entry) instead."""

    source: str
    target: str
    overrides: dict[str, Any] = field(default_factory=dict)  # target-side model settings
    seeds: tuple[int, ...] | None = None  # None: the config's seeds
    weights: str | None = None  # a released MAESTRO checkpoint pretrained on ``source``


def read_transfers(section: list[Mapping[str, Any]] | None) -> list[Transfer]:
    """The ``transfer`` config section: ``[{source, targets: {target: overrides}}]``."""
    out = []
    for entry in section or []:
        seeds = tuple(int(s) for s in entry["seeds"]) if entry.get("seeds") else None
        for target, overrides in (entry.get("targets") or {}).items():
            if target == entry["source"]:
                raise ValueError(f"transfer: {target} is its own source (that is intra-dataset)")
            out.append(
                Transfer(
                    entry["source"], target, dict(overrides or {}), seeds, entry.get("weights")
                )
            )
    return out


@dataclass
class Plan:
    """Every result the run must produce."""

    cells: list[Cell]
    datasets: list[str]
    seeds: list[int]
    transfers: list[Transfer]
    probe: Mapping[str, bool]  # dataset -> whether its probe phase runs (epochs > 0)
    baselines: list[BaselineRow] = field(default_factory=list)  # the baselines sheet

    @property
    def reference(self) -> Cell:
        """The first row: compared with in ablation tables, used for transfer."""
        return self.cells[0]

    def transfer_cell(self, t: Transfer) -> str:
        """The cell path component of a transfer: the reference cell, or ``released~<weights>``
        for a released checkpoint (its runs use the reference cell's downstream settings)."""
        return f"{RELEASED}{t.weights}" if t.weights else self.reference.id

    def released(self) -> dict[str, str]:
        """Released checkpoints used by transfers: weights name -> source dataset."""
        return {t.weights: t.source for t in self.transfers if t.weights}

    def cell(self, cid: str) -> Cell:
        """A cell by id (a released checkpoint's runs: the reference cell)."""
        if cid.startswith(RELEASED):
            return self.reference
        for c in self.cells:
            if c.id == cid:
                return c
        raise KeyError(f"unknown cell {cid!r}")

    @property
    def pretrain_datasets(self) -> list[str]:
        """Datasets pretrained on: the benchmark ones and the transfer sources."""
        return list(dict.fromkeys([*self.datasets, *(t.source for t in self.transfers)]))

    def seeds_of(self, cell: Cell) -> tuple[int, ...]:
        """The seeds a cell runs with."""
        return cell.seeds if cell.seeds is not None else tuple(self.seeds)

    def transfer_seeds(self, t: Transfer) -> tuple[int, ...]:
        """The seeds a transfer pair runs with."""
        return t.seeds if t.seeds is not None else tuple(self.seeds)

    def pretrain(self, filename: str = "model.pt") -> list[str]:
        """Pretraining outputs: each cell on its datasets, the reference on transfer sources."""
        runs = {(d, c.id, s) for c in self.cells for d in c.datasets for s in self.seeds_of(c)}
        runs |= {
            (t.source, self.reference.id, s)
            for t in self.transfers
            if not t.weights
            for s in self.transfer_seeds(t)
        }
        return [f"results/pretrain/{d}/{cid}/seed~{s}/{filename}" for d, cid, s in sorted(runs)]

    def downstream(self, filename: str = "metrics.json") -> list[str]:
        """Intra-dataset probe (when it runs), fine-tune, scratch and random-init probe outputs
        (the last two for cells with ``scratch``)."""
        out = []
        for c in self.cells:
            for d in c.datasets:
                stages = ["finetune"] + (["probe"] if self.probe.get(d, True) else [])
                stages += ["scratch", "probe_random"] if c.scratch else []
                out += [
                    f"results/{st}/{d}/{c.id}/seed~{s}/{filename}"
                    for st in stages
                    for s in self.seeds_of(c)
                ]
        return out

    def baseline(self, bid: str) -> BaselineRow:
        """A baselines-sheet row by id."""
        for b in self.baselines:
            if b.id == bid:
                return b
        raise KeyError(f"unknown baseline {bid!r}")

    def baseline_runs(self, filename: str = "metrics.json") -> list[str]:
        """Probe (when it runs) and fine-tune outputs of every baseline row."""
        out = []
        for b in self.baselines:
            for d in b.datasets:
                stages = ["finetune"] + (["probe"] if self.probe.get(d, True) else [])
                seeds = b.seeds if b.seeds is not None else tuple(self.seeds)
                out += [
                    f"results/baseline/{st}/{d}/{b.id}/seed~{s}/{filename}"
                    for st in stages
                    for s in seeds
                ]
        return out

    def references(self, filename: str = "metrics.json") -> list[str]:
        """Reference rows of every benchmark dataset: trivial predictor, linear raw model."""
        return [f"results/reference/{d}/{k}/{filename}" for d in self.datasets for k in REFERENCES]

    def transfer(self, filename: str = "metrics.json") -> list[str]:
        """Cross-dataset probe (when it runs) and fine-tune outputs."""
        out = []
        for t in self.transfers:
            stages = ["finetune"] + (["probe"] if self.probe.get(t.target, True) else [])
            cid = self.transfer_cell(t)
            out += [
                f"results/transfer/{st}/{t.target}/from~{t.source}/{cid}/seed~{s}/{filename}"
                for st in stages
                for s in self.transfer_seeds(t)
            ]
        return out

    def transfer_overrides(self, source: str, target: str, cid: str = "") -> dict[str, Any]:
        """Target-side model settings of a transfer pair (``cid``: its cell path component,
        which tells a released checkpoint's pair from ours)."""
        weights = cid[len(RELEASED) :] if cid.startswith(RELEASED) else None
        for t in self.transfers:
            if (t.source, t.target, t.weights) == (source, target, weights):
                return t.overrides
        raise KeyError(f"no transfer from {source} to {target}")


def make_plan(config: Mapping[str, Any], sheet: str | Path | None = None) -> Plan:
    """The plan of a (validated) workflow configuration."""
    datasets = list(config["datasets"])
    transfers = read_transfers(config.get("transfer"))
    cells = read_sheet(sheet or config["variants"], datasets, config.get("model") or {})
    probe = {}
    for d in [*datasets, *(t.target for t in transfers)]:
        probe[d] = int(phase_section(config, "probe", d).get("epochs", 10)) > 0
    baselines = (
        read_baselines(config["baselines"], datasets, (config.get("weights") or {}))
        if config.get("baselines")
        else []
    )
    seeds = [int(s) for s in config.get("seeds", [0])]
    for t in transfers:
        if t.weights and t.weights not in (config.get("weights") or {}):
            raise ValueError(
                f"transfer from {t.source}: weights {t.weights!r} is not in the weights section"
            )
    return Plan(cells, datasets, seeds, transfers, probe, baselines)


def step_job(
    config: Mapping[str, Any],
    step: str,
    *,
    dataset: str | None = None,
    store: str | None = None,
    cell_id: str | None = None,
    plan: Plan | None = None,
) -> dict[str, Any]:
    """The job configuration the workflow passes to ``maestro <step>``.

    ``generate-demo``, ``convert`` and ``analyze-bands`` are per store (``store``, or the
    store of ``dataset``); the training steps are per dataset and cell (``cell_id``, default
    the reference cell: the first row of the sheet); ``reference`` is per dataset.
    """
    from maestro.datasets import catalog

    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; one of {sorted(STEPS)}")
    sections, phase = STEPS[step]
    cat = catalog(config.get("overrides") or {})
    if dataset is not None:
        store = cat.dataset(dataset).store.name
    if store is None:
        raise ValueError(f"step {step} needs a dataset or a store")
    if step == "generate-demo":
        source = (config.get("sources") or {}).get(store) or {}
        if source.get("kind") != "demo":
            raise ValueError(f"sources.{store} is not a demo source (kind {source.get('kind')})")
        return job_for(config, store, demo=source.get("demo") or {})
    if step in ("convert", "analyze-bands"):
        return job_for(config, store, sections)
    if dataset is None:
        raise ValueError(f"step {step} needs a dataset")
    if step == "reference":
        return job_for(config, store, dataset=dataset)
    plan = plan or make_plan(config)
    cell = plan.cell(cell_id) if cell_id else plan.cells[0]
    return job_for(config, store, sections, phase=phase, cell=cell.values, dataset=dataset)
