"""``maestro`` command line: one subcommand per workflow rule.

Each subcommand parses its arguments, builds the package objects from the job configuration
(``--job``: JSON text, or ``@path`` to a JSON/YAML file), calls one package function, and writes
a provenance record next to model outputs. The package runs without Snakemake.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from maestro.data.errors import BusyError

log = logging.getLogger("maestro")


def _job(text: str) -> dict[str, Any]:
    """Parse and validate ``--job``: inline JSON or ``@file`` (``.json`` as JSON, else YAML)."""
    from maestro.jobs import validate_job

    if text.startswith("@"):
        path = Path(text[1:])
        where = str(path)
        try:
            raw = path.read_text()
            if path.suffix == ".json":
                value = json.loads(raw) if raw.strip() else {}
            else:
                value = yaml.safe_load(raw) or {}
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as err:
            raise SystemExit(f"--job {path}: cannot read a JSON/YAML mapping ({err})") from err
    else:
        where = "the --job text"
        try:
            value = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as err:
            raise SystemExit(f"--job: invalid JSON ({err})") from err
    if not isinstance(value, dict):
        raise SystemExit(f"--job: {where}: expected a mapping, found {type(value).__name__}")
    _not_workflow_config(value, where)
    try:
        validate_job(value, source=f"job configuration ({where})")
    except ValueError as err:
        raise SystemExit(f"--job: {err}") from err
    return value


def _not_workflow_config(value: dict[str, Any], where: str) -> None:
    """A workflow config is not a job config: its phases would be ignored silently."""
    from maestro.jobs import WORKFLOW_KEYS

    found = sorted(WORKFLOW_KEYS & set(value))
    if found:
        raise SystemExit(
            f"--job: {where} is a workflow configuration (it has {', '.join(found)}), not the "
            "job configuration of one step; print the job the pipeline would pass with "
            "`maestro job --config <config.yaml> --step <step> --dataset <dataset>` and pass "
            "that (`--job @job.json`)"
        )


def _runtime(args: argparse.Namespace, job: dict[str, Any]):
    from maestro.train.runtime import make_runtime

    rt = job.get("runtime") or {}
    return make_runtime(
        device=args.device or rt.get("device", "auto"),
        gpus=args.gpus,
        threads=args.threads or rt.get("threads"),
        compile=bool(rt.get("compile", False)),
        tensorboard=bool(rt.get("tensorboard", False)),
        precision=args.precision or rt.get("precision"),
    )


# --- data -------------------------------------------------------------------------------


def cmd_generate_demo(args: argparse.Namespace) -> None:
    """Write a demo raw dataset in the real distribution format."""
    from maestro.data.demo import DemoConfig, generate, is_demo_root
    from maestro.experiment import job_catalog
    from maestro.utils.atomic import atomic_path, check_replaceable

    job = _job(args.job)
    store = job_catalog(job).store(args.store)
    if "demo" not in job:
        raise SystemExit(
            "the job configuration has no `demo` section (tiles per split, acquisitions per "
            'year, ...); pass the one the pipeline uses: --job "$(maestro job --config '
            f'config/config.yaml --step generate-demo --store {args.store})"'
        )
    cfg = DemoConfig(**job["demo"])
    check_replaceable(args.out, is_demo_root, "demo dataset written by maestro generate-demo")
    with atomic_path(args.out) as tmp:
        generate(store, tmp, cfg)
    log.info("demo %s written to %s", args.store, args.out)


def cmd_convert(args: argparse.Namespace) -> None:
    """Convert a raw distribution into the store's Zarr layout."""
    from maestro.data.readers import get_reader
    from maestro.experiment import job_catalog
    from maestro.store.convert import convert

    job = _job(args.job)
    store = job_catalog(job).store(args.store)
    options = job.get("convert") or {}
    summary = convert(
        get_reader(store, args.raw),
        Path(args.out),
        shard_samples=options.get("shard_samples", 32),
        workers=args.workers,
    )
    log.info("converted %s: %s", args.store, summary)


def cmd_analyze_bands(args: argparse.Namespace) -> None:
    """Band correlations and groups of every modality of a store."""
    from maestro.analysis.band_groups import analyze_store

    job = _job(args.job)
    analyze_store(args.store_path, args.out_json, args.out_png, **(job.get("analysis") or {}))


# --- training -----------------------------------------------------------------------------


def _norm_groups(path: str | None, job: dict[str, Any]) -> dict | None:
    """Normalization groups from the band-group analysis, when the cell asks for them."""
    cell = job.get("cell") or {}
    if cell.get("groups", "spec") != "analysis":
        return None
    if not path:
        raise SystemExit("cell uses groups=analysis: pass --band-groups <band_groups.json>")
    data = json.loads(Path(path).read_text())
    return {m: tuple(tuple(g) for g in d["groups"]) for m, d in data["modalities"].items()}


def _meta(job: dict[str, Any], args: argparse.Namespace, dataset: Any) -> dict[str, Any]:
    """Labels stored in metrics.json for the reports."""
    return {
        "cell": job.get("cell"),
        "seed": args.seed,
        "title": dataset.title,
        "model_size": (job.get("model") or {}).get("size", "tiny"),
        "model_overrides": {k: v for k, v in (job.get("model") or {}).items() if k != "size"},
        "transfer_from": job.get("transfer_from"),
        "released": job.get("released"),
    }


def _fingerprint(config: dict[str, Any], inputs: dict[str, str | None]) -> str:
    """What a resumed ``.work/last.pt`` must match: the job and the content of its inputs.

    A killed job whose store or init checkpoint was rebuilt in the meantime starts afresh
    instead of resuming with the old weights (docs/decisions.md T16).
    """
    from maestro import provenance

    hashes = {k: provenance.path_hash(v) for k, v in inputs.items() if v}
    return provenance.config_hash({"config": config, "inputs": hashes})


def cmd_pretrain(args: argparse.Namespace) -> None:
    """Pretrain one (dataset, cell, seed)."""
    from maestro import provenance
    from maestro.experiment import job_catalog, job_phase, model_config
    from maestro.train.pretrain import run_pretrain

    t0 = time.time()
    job = _job(args.job)
    dataset = job_catalog(job).dataset(args.dataset)
    runtime = _runtime(args, job)
    groups = _norm_groups(args.band_groups, job)
    if groups:
        groups = {m: g for m, g in groups.items() if m in dataset.inputs}
    fingerprint = _fingerprint(
        {"job": job, "dataset": args.dataset, "seed": args.seed},
        {"store": args.store_path, "band_groups": args.band_groups},
    )
    metrics = run_pretrain(
        args.store_path, dataset, model_config(job), job_phase("pretrain", job), args.seed,
        args.out_dir, runtime, norm_groups=groups, work_dir=Path(args.out_dir) / ".work",
        fingerprint=fingerprint, meta=_meta(job, args, dataset),
    )  # fmt: skip
    inputs = {"store": args.store_path} | (
        {"band_groups": args.band_groups} if args.band_groups else {}
    )
    if runtime.dist.is_main:
        rec = provenance.record(
            "pretrain", {"job": job, "dataset": args.dataset, "seed": args.seed}, inputs, t0,
            runtime.describe(),
            {"metrics": metrics, "outputs": provenance.output_hashes(args.out_dir)},
        )  # fmt: skip
        provenance.write(Path(args.out_dir) / "provenance.json", rec)


def cmd_downstream(args: argparse.Namespace) -> None:
    """Probe, fine-tune or train from scratch on one (dataset, cell, seed)."""
    from maestro import provenance
    from maestro.experiment import job_catalog, job_phase, model_config
    from maestro.train.downstream import run_downstream

    t0 = time.time()
    job = _job(args.job)
    dataset = job_catalog(job).dataset(args.dataset)
    runtime = _runtime(args, job)
    phase = job_phase("probe" if args.mode == "probe" else "finetune", job)
    config = {"job": job, "dataset": args.dataset, "seed": args.seed, "mode": args.mode}
    if args.random_init:
        config["random_init"] = True
    baseline = None
    if args.baseline:
        from maestro.baselines.build import spec_from

        baseline = spec_from(json.loads(args.baseline))
        config["baseline"] = json.loads(args.baseline)
    metrics = run_downstream(
        args.mode, args.store_path, dataset, phase, args.seed, args.out_dir, runtime,
        init=args.init, model_cfg=model_config(job), work_dir=Path(args.out_dir) / ".work",
        fingerprint=_fingerprint(config, {"store": args.store_path, "init": args.init}),
        meta=_meta(job, args, dataset),
        random_init=args.random_init, baseline=baseline,
    )  # fmt: skip
    inputs = {"store": args.store_path} | ({"init": args.init} if args.init else {})
    if runtime.dist.is_main:
        extra = {"metrics": metrics, "outputs": provenance.output_hashes(args.out_dir)}
        rec = provenance.record(args.mode, config, inputs, t0, runtime.describe(), extra)
        provenance.write(Path(args.out_dir) / "provenance.json", rec)


def cmd_reference(args: argparse.Namespace) -> None:
    """A reference row of a dataset: trivial predictor or linear model on raw inputs."""
    from maestro import provenance
    from maestro.experiment import job_catalog
    from maestro.train.reference import run_reference

    t0 = time.time()
    job = _job(args.job)
    dataset = job_catalog(job).dataset(args.dataset)
    meta = {"seed": 0, "cell": None, "title": dataset.title}
    metrics = run_reference(args.kind, args.store_path, dataset, args.out, meta=meta)
    config = {"job": job, "dataset": args.dataset, "kind": args.kind}
    out = Path(args.out)
    extra = {"metrics": metrics, "outputs": provenance.output_hashes(out.parent)}
    rec = provenance.record(
        f"reference_{args.kind}", config, {"store": args.store_path}, t0, {}, extra
    )
    provenance.write(out.parent / "provenance.json", rec)


def cmd_params(args: argparse.Namespace) -> None:
    """Print parameter counts of a model size on a dataset's inputs."""
    from maestro.experiment import job_catalog, model_config
    from maestro.train.build import build_mae

    job = _job(args.job)
    job.setdefault("model", {})["size"] = args.size
    dataset = job_catalog(job).dataset(args.dataset)
    counts = build_mae(model_config(job), dataset).num_params()
    print(json.dumps({"size": args.size, "dataset": args.dataset, **counts}))


def cmd_import_checkpoint(args: argparse.Namespace) -> None:
    """Convert a released IGNF/MAESTRO checkpoint into a pretrained ``model.pt``."""
    from maestro.experiment import job_catalog
    from maestro.train import checkpoint
    from maestro.train.build import model_record
    from maestro.train.official import import_checkpoint

    job = _job(args.job)
    dataset = job_catalog(job).dataset(args.dataset)
    ckpt = Path(args.ckpt)
    if ckpt.is_dir():  # a downloaded folder: its one .ckpt file
        found = sorted(ckpt.rglob("*.ckpt"))
        if len(found) != 1:
            raise FileNotFoundError(f"{ckpt}: expected one .ckpt file in the folder, found {found}")
        ckpt = found[0]
    model, cfg = import_checkpoint(ckpt, dataset, trust_pickle=args.trust_pickle)
    record = model_record(model, "mae", cfg, dataset, None)
    record["imported_from"] = str(ckpt)
    checkpoint.save(args.out, record)
    log.info("imported %s as %s (%s, %d tensors)", ckpt, args.out, dataset.name,
             len(record["state_dict"]))  # fmt: skip


def _workflow_config(paths: list[str]) -> dict[str, Any]:
    """Workflow config files (later ones update earlier ones), validated, with defaults."""
    from maestro.jobs import load_config

    try:
        config = load_config(paths)
    except ValueError as err:
        raise SystemExit(str(err)) from err
    config["variants"] = str(_sheet_path(config["variants"], Path(paths[-1])))
    if config.get("baselines"):  # the baselines sheet resolves the same way
        config["baselines"] = str(_sheet_path(config["baselines"], Path(paths[-1])))
    return config


def _sheet_path(sheet: str, config_file: Path) -> Path:
    """The variants sheet of a config: as written when it exists from the working directory
    (where snakemake runs), else beside the config file, else in the folder above it (a
    ``config/`` folder of a project run from elsewhere)."""
    path = Path(sheet)
    if path.is_absolute():
        return path
    here = config_file.resolve().parent
    tried = [path, here / path, here.parent / path]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise SystemExit(
        f"{config_file}: variants sheet {sheet!r} not found (tried {', '.join(map(str, tried))})"
    )


def cmd_cells(args: argparse.Namespace) -> None:
    """Print the cells of a workflow configuration: id, datasets, supervised baseline."""
    from maestro.grid import make_plan

    plan = make_plan(_workflow_config(args.config))
    print("cell\tdatasets\tscratch")
    for cell in plan.cells:
        print(f"{cell.id}\t{','.join(cell.datasets)}\t{'yes' if cell.scratch else 'no'}")


def cmd_job(args: argparse.Namespace) -> None:
    """Print the job configuration (``--job``) the workflow passes to one step."""
    from maestro.grid import step_job
    from maestro.jobs import job_json

    config = _workflow_config(args.config)
    try:
        job = step_job(config, args.step, dataset=args.dataset, store=args.store, cell_id=args.cell)
    except (KeyError, ValueError) as err:
        raise SystemExit(str(err)) from err
    print(job_json(job))


# --- report -------------------------------------------------------------------------------


def cmd_check_signal(args: argparse.Namespace) -> None:
    """Margins a run must show (pretraining, baselines, dates), with paired intervals."""
    from maestro.datasets import catalog
    from maestro.grid import make_plan
    from maestro.report.signal import markdown, run_margins, write_report

    if args.config_json:
        config = json.loads(args.config_json)
        config.setdefault("variants", "config/variants.tsv")
    else:
        config = _workflow_config(args.config)
    plan = make_plan(config)
    titles = {d: catalog().dataset(d).title for d in plan.datasets}
    margins = run_margins(args.results, plan)
    if args.out:
        write_report(margins, args.out, titles)
    print(markdown(margins, titles), end="")
    failed = [m for m in margins if not m.ok]
    if failed and not args.no_fail:
        log.error("check-signal: %d required margin(s) missing", len(failed))
        raise SystemExit(1)


def cmd_report_tables(args: argparse.Namespace) -> None:
    """Table 1, Table 2, the ablation tables (.md, .html, .csv, .tex) and the per-class
    results of the reference cell (.md, .html, .csv) from metrics files."""
    from maestro.grid import parse_cell_id
    from maestro.report.build import write_all
    from maestro.report.per_class import write_per_class
    from maestro.report.tables import load_metrics

    reference = parse_cell_id(args.reference)
    write_all(args.metrics, reference, args.out_dir)
    write_per_class(load_metrics(args.metrics), reference, Path(args.out_dir) / "per_class")


def cmd_report_compute(args: argparse.Namespace) -> None:
    """The compute-cost table from the run's benchmark records."""
    from maestro.report.compute import write_compute_table

    write_compute_table(args.results, args.out)


def cmd_report_figures(args: argparse.Namespace) -> None:
    """Draw a figure of results/figures/ from the files training wrote."""
    from maestro.report import figures, maps

    if args.kind == "loss":
        figures.loss_curves(args.inputs, args.out)
    elif args.kind == "downstream":
        figures.downstream_curves(args.inputs, args.out)
    elif args.kind == "ablation":
        figures.ablation_bars(args.inputs, args.out)
    elif args.kind == "table1":
        figures.table1_bars(args.inputs[0], args.out)
    elif args.kind == "segmentation":
        maps.segmentation_maps(args.inputs[0], args.out, title=args.title)
    else:
        maps.reconstruction_figure(args.inputs[0], args.out, title=args.title)


def cmd_report_rulegraph(args: argparse.Namespace) -> None:
    """Write ``snakemake --rulegraph dot`` output (file or stdin) as a Mermaid flowchart into
    the marked block of a Markdown file (``--check``: exit 1 if that block is stale)."""
    from maestro.report.rulegraph import replace_block
    from maestro.utils.atomic import write_text

    text = sys.stdin.read() if args.dot == "-" else Path(args.dot).read_text()
    old = Path(args.markdown).read_text(encoding="utf-8")
    new = replace_block(old, text)
    if args.check:
        if new != old:
            raise SystemExit(f"{args.markdown}: the rule graph is stale; run `make dag`")
        return
    write_text(args.markdown, new)


# --- DVC ------------------------------------------------------------------------------------


def cmd_dvc_metrics(args: argparse.Namespace) -> None:
    """The DVC metrics file: every table cell's mean (dvc metrics show / diff)."""
    from maestro.report.dvc_metrics import write_summary

    write_summary(args.tables, args.out)


def cmd_dvc_sync(args: argparse.Namespace) -> None:
    """After dvc pull / checkout: snakemake --touch, then a dry run that must schedule nothing."""
    from maestro.provenance.dvc_sync import sync

    result = sync(args.root, args.profile, args.configfile, args.targets or ["all"])
    if result.touch_rc != 0:
        raise SystemExit(result.touch_rc)
    if result.pending and not args.no_check:
        raise SystemExit(1)


def cmd_audit(args: argparse.Namespace) -> None:
    """Trace a table cell to its checkpoints, store and raw data, checking every hash."""
    from maestro.provenance.audit_run import run

    code = run(args)
    if code:
        raise SystemExit(code)


def _version() -> str:
    from maestro import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``maestro`` command."""
    p = argparse.ArgumentParser(prog="maestro", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, func: Any, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        return sp

    def job_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--job", default="{}", help="job config: JSON text or @file.(json|yaml)")

    def train_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--dataset",
            required=True,
            help="dataset id: treesatai_ts, pastis_hd, flair2, flair_hub, s2_naip",
        )
        sp.add_argument(
            "--store-path",
            required=True,
            help="the converted Zarr store, e.g. results/data/<store>.zarr",
        )
        sp.add_argument(
            "--out-dir",
            required=True,
            help="folder of the outputs (model.pt, metrics.json, ...); .work/ holds resume state",
        )
        sp.add_argument(
            "--seed", type=int, default=0, help="training seed (data order, masks, initialisation)"
        )
        sp.add_argument("--device", default=None, help="auto | cpu | cuda[:i]")
        sp.add_argument("--gpus", type=int, default=None, help="GPUs granted to the job (0: CPU)")
        sp.add_argument(
            "--threads", type=int, default=None, help="CPU threads of torch (default: torch's own)"
        )
        sp.add_argument(
            "--precision",
            choices=("auto", "fp32", "bf16"),
            default=None,
            help="replaces the job's runtime.precision (default: bf16 on CUDA, fp32 on CPU)",
        )
        job_arg(sp)

    sp = add("generate-demo", cmd_generate_demo, "write a demo raw dataset in the real format")
    sp.add_argument("--store", required=True, help="store id (maestro.datasets), e.g. treesatai_ts")
    sp.add_argument(
        "--out", required=True, help="demo root to write (replaced only if this program wrote it)"
    )
    job_arg(sp)

    sp = add("convert", cmd_convert, "convert a raw distribution to a Zarr store")
    sp.add_argument("--store", required=True, help="store id (maestro.datasets), e.g. treesatai_ts")
    sp.add_argument(
        "--raw", required=True, help="root of the raw distribution, laid out as published"
    )
    sp.add_argument(
        "--out",
        required=True,
        help="the <store>.zarr to write (replaced only if this program wrote it)",
    )
    sp.add_argument("--workers", type=int, default=1, help="processes converting shards")
    job_arg(sp)

    from maestro.data.download.cli import (
        add_download_arguments,
        add_pin_arguments,
        download_cmd,
        pin_cmd,
    )

    sp = add("download", download_cmd, "download and verify a dataset from its manifest")
    add_download_arguments(sp)
    sp = add("pin-manifest", pin_cmd, "pin a manifest's revision, files and sha256 (online)")
    add_pin_arguments(sp)

    sp = add("analyze-bands", cmd_analyze_bands, "band correlations and groups of a store")
    sp.add_argument("--store-path", required=True, help="the converted Zarr store")
    sp.add_argument("--out-json", required=True, help="band groups found (JSON)")
    sp.add_argument("--out-png", required=True, help="correlation matrix and dendrogram (PNG)")
    job_arg(sp)

    sp = add("pretrain", cmd_pretrain, "pretrain the masked autoencoder")
    train_args(sp)
    sp.add_argument(
        "--band-groups", default=None, help="band_groups.json (cells with groups=analysis)"
    )

    sp = add("downstream", cmd_downstream, "probe / fine-tune / train from scratch")
    train_args(sp)
    sp.add_argument(
        "--mode",
        required=True,
        choices=["probe", "finetune", "scratch"],
        help="probe (frozen encoder), finetune, or scratch (supervised, no pretraining)",
    )
    sp.add_argument("--init", default=None, help="model.pt to start from (probe, finetune)")
    sp.add_argument(
        "--random-init", action="store_true",
        help="probe a randomly initialised encoder (the reference a pretrained probe must beat)",
    )  # fmt: skip
    sp.add_argument(
        "--baseline", default=None,
        help='a baseline foundation model instead of MAESTRO, as JSON, e.g. \'{"model": "dinov2", '
        '"size": "demo"}\' (maestro.baselines.build.BaselineSpec; docs/baselines.md)',
    )  # fmt: skip

    sp = add("reference", cmd_reference, "reference row: trivial predictor or linear raw model")
    sp.add_argument(
        "--kind",
        required=True,
        choices=["trivial", "linear"],
        help="trivial: constant predictors; linear: a linear model on raw input features",
    )
    sp.add_argument("--dataset", required=True, help="benchmark dataset id")
    sp.add_argument("--store-path", required=True, help="the converted Zarr store")
    sp.add_argument("--out", required=True, help="the metrics.json to write")
    job_arg(sp)

    sp = add("params", cmd_params, "print parameter counts")
    sp.add_argument("--size", default="tiny", help="model size preset: tiny | small | base | large")
    sp.add_argument(
        "--dataset", default="treesatai_ts", help="dataset whose inputs size the tokenizers"
    )
    job_arg(sp)

    sp = add(
        "import-checkpoint", cmd_import_checkpoint, "a released MAESTRO checkpoint as model.pt"
    )
    sp.add_argument("--ckpt", required=True, help="the official .ckpt file (or a folder with one)")
    sp.add_argument("--dataset", required=True, help="the dataset it was pretrained on")
    sp.add_argument("--out", required=True, help="the model.pt to write (kind mae)")
    sp.add_argument(
        "--trust-pickle", action="store_true",
        help="read Python objects beyond tensors (only for a file from a source you trust)",
    )  # fmt: skip
    job_arg(sp)

    sp = add("cells", cmd_cells, "list the ablation cells of a workflow configuration")
    sp.add_argument(
        "--config", nargs="+", default=["config/config.yaml"], help="config file(s), merged"
    )

    from maestro.jobs import STEPS

    sp = add("job", cmd_job, "print the job configuration the workflow passes to one step")
    sp.add_argument(
        "--config", nargs="+", default=["config/config.yaml"], help="config file(s), merged"
    )
    sp.add_argument("--step", required=True, choices=sorted(STEPS), help="the subcommand")
    sp.add_argument("--dataset", default=None, help="dataset (training steps, reference)")
    sp.add_argument("--store", default=None, help="store (generate-demo, convert, analyze-bands)")
    sp.add_argument("--cell", default=None, help="cell id (default: the reference cell)")

    sp = add("report-tables", cmd_report_tables, "Tables 1 and 2 and the ablation tables")
    sp.add_argument("--metrics", nargs="+", required=True, help="downstream metrics.json files")
    sp.add_argument("--reference", required=True, help="cell id of the reference cell")
    sp.add_argument("--out-dir", required=True, help="folder of the tables (table*.md/csv/tex)")

    sp = add("check-signal", cmd_check_signal, "margins a finished run must show, with intervals")
    sp.add_argument("--config", nargs="+", default=["config/config.yaml"], help="config file(s)")
    sp.add_argument("--config-json", default=None, help="the run's configuration as JSON text")
    sp.add_argument("--results", default="results", help="the results folder of the run")
    sp.add_argument("--out", default=None, help="also write <out>.md and <out>.json")
    sp.add_argument("--no-fail", action="store_true", help="exit 0 even when a margin is missing")

    sp = add("report-compute", cmd_report_compute, "compute-cost table from benchmark records")
    sp.add_argument("--results", default="results", help="the results folder (with benchmarks/)")
    sp.add_argument("--out", required=True, help="output stem, e.g. results/tables/compute")

    sp = add("report-figures", cmd_report_figures, "a figure of results/figures/")
    sp.add_argument(
        "--kind",
        choices=["loss", "downstream", "reconstruction", "ablation", "segmentation", "table1"],
        required=True,
        help="which figure",
    )
    sp.add_argument(
        "--inputs",
        nargs="+",
        required=True,
        help="input files (histories, metrics.json or reconstruction.npz, by --kind)",
    )
    sp.add_argument("--out", required=True, help="the PNG to write")
    sp.add_argument("--title", default="", help="figure title")

    sp = add("report-rulegraph", cmd_report_rulegraph, "the workflow's rule graph (Mermaid)")
    sp.add_argument("--dot", default="-", help="`snakemake --rulegraph dot` text file, or -")
    sp.add_argument(
        "--markdown", default="README.md", help="Markdown file whose marked block is replaced"
    )
    sp.add_argument("--check", action="store_true", help="only check that the block is current")

    sp = add("dvc-metrics", cmd_dvc_metrics, "DVC metrics file of the tables (JSON)")
    sp.add_argument("--tables", default="results/tables", help="folder of the table CSVs")
    sp.add_argument("--out", default="results/tables/summary.json", help="the JSON to write")

    sp = add("dvc-sync", cmd_dvc_sync, "after dvc pull/checkout: mark restored outputs up to date")
    sp.add_argument("targets", nargs="*", help="snakemake targets (default: all)")
    sp.add_argument("--profile", default=None, help="default: the profile var of dvc.yaml")
    sp.add_argument("--configfile", default=None, help="default: the configfile var of dvc.yaml")
    sp.add_argument("--root", default=".", help="the repository (snakemake's working directory)")
    sp.add_argument("--no-check", action="store_true", help="exit 0 even if jobs stay scheduled")

    sp = add("audit", cmd_audit, "trace a table cell to its data, checking every recorded hash")
    sp.add_argument("--table", help="table1, table2, ablation_<axis>, or a table CSV")
    sp.add_argument(
        "--row", action="append", default=[],
        help="table row: index, a label value, or COLUMN=VALUE (repeatable, all must match)",
    )  # fmt: skip
    sp.add_argument("--dataset", help="the table column / run dataset (id or title)")
    sp.add_argument(
        "--stage",
        choices=["pretrain", "probe", "finetune", "scratch"],
        help="one training stage of the runs (default: every stage)",
    )
    sp.add_argument("--cell", help="cell id (with --stage)")
    sp.add_argument("--seed", type=int, default=None, help="one seed (default: every seed)")
    sp.add_argument("--source", default=None, help="pretraining dataset of a transfer run")
    sp.add_argument("--metrics", nargs="+", help="metrics.json files to audit")
    sp.add_argument("--configfile", default=None, help="default: the configfile var of dvc.yaml")
    sp.add_argument("--root", default=".", help="the repository the paths are relative to")
    sp.add_argument(
        "--quick", action="store_true",
        help="trust store manifests and raw records instead of re-hashing data files",
    )  # fmt: skip
    sp.add_argument("--json", action="store_true", help="JSON report")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``maestro`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        args.func(args)
    except (ValueError, KeyError, FileNotFoundError, BusyError) as err:
        if args.verbose:
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        log.error("%s: %s", args.command, msg)
        return 2
    except SystemExit as err:
        if not isinstance(err.code, str) or args.verbose:
            raise
        log.error("%s: %s", args.command, err.code)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
