# Shared workflow logic: config validation, the experiment plan (maestro.grid), wildcard
# constraints, input functions and the job configurations passed to the `maestro` CLI.

import json
import os
import re
import shlex
import sys

from snakemake.exceptions import WorkflowError

from maestro.datasets import catalog
from maestro.experiment import model_config
from maestro.grid import RELEASED, make_plan
from maestro.jobs import job_for, job_json, validate_config

try:  # every schema violation at once, one line each, before any job is scheduled
    _validated = validate_config(config)  # with the schema's defaults filled in
except ValueError as err:
    raise WorkflowError(str(err))
config.clear()
config.update(_validated)

try:
    CATALOG = catalog(config.get("overrides", {}))
    PLAN = make_plan(config)
    for _cell in PLAN.cells:
        model_config({"model": config["model"], "cell": _cell.values})
except (ValueError, KeyError, TypeError) as err:
    raise WorkflowError(f"invalid configuration: {err}")

DATASETS = PLAN.datasets
SEEDS = PLAN.seeds
CELLS = [c.id for c in PLAN.cells]
#: Every configured raw source is converted; every dataset used must have its store's.
STORES = list(config["sources"])
for _d in PLAN.pretrain_datasets + [t.target for t in PLAN.transfers]:
    _s = CATALOG.dataset(_d).store.name
    if _s not in config["sources"]:
        raise WorkflowError(f"invalid configuration: sources.{_s} is required by dataset {_d}")
    if _d in DATASETS and CATALOG.dataset(_d).task is None:
        raise WorkflowError(f"invalid configuration: {_d} has no task; use it as a transfer source")


#: How the package is invoked: the interpreter running Snakemake (the project's venv).
#: The package's CLI under this interpreter (quoted: a venv path may contain spaces).
def _conda_deployment():
    """Whether rules run in their conda environments (`--sdm conda`)."""
    methods = getattr(getattr(workflow, "deployment_settings", None), "deployment_method", ())
    return any("conda" in str(m).lower() for m in methods or ())


#: The package's CLI: this interpreter's (quoted: a venv path may contain spaces), or the rule
#: environment's `python` under --sdm conda. Rules take it as params.cli (module use).
PYTHON = "python" if _conda_deployment() else shlex.quote(sys.executable)
MAESTRO = f"{PYTHON} -m maestro.cli"
#: Threads of a training job (``runtime.threads``; the demo runs one-thread jobs side by side).
TRAIN_THREADS = int(config.get("runtime", {}).get("threads", 4))


def _one_of(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    store=_one_of(STORES),
    dataset=_one_of(PLAN.pretrain_datasets + [t.target for t in PLAN.transfers]),
    source=_one_of([t.source for t in PLAN.transfers] or ["-"]),
    cell=_one_of(CELLS + [PLAN.transfer_cell(t) for t in PLAN.transfers if t.weights]),
    baseline=_one_of([b.id for b in PLAN.baselines] or ["-"]),
    seed=r"\d+",


# --- job configurations ---------------------------------------------------------------------


def job(store, *sections, phase=None, cell=None, dataset=None, extra_overrides=None, **extra):
    """JSON of the config sections a job depends on (its rerun trigger and provenance);
    built by maestro.jobs, which `maestro job` prints for a step run by hand."""
    return job_json(
        job_for(
            config, store, sections, phase=phase, cell=cell, dataset=dataset,
            extra_overrides=extra_overrides, **extra,
        )  # fmt: skip
    )


def cell_of(wildcards):
    """The identity columns of a cell, as strings."""
    return PLAN.cell(wildcards.cell).values


def store_of(wildcards):
    return CATALOG.dataset(wildcards.dataset).store.name


# --- input functions ------------------------------------------------------------------------


def raw_dir(wildcards):
    """Root of a store's raw distribution."""
    src = config["sources"][wildcards.store]
    by_kind = {
        "demo": f"data/raw/demo/{wildcards.store}",
        "download": f"data/raw/{wildcards.store}",
    }
    return by_kind.get(src["kind"], src.get("root"))


def raw_input(wildcards):
    """What conversion waits for: the generated demo, the download record, or the given root."""
    src = config["sources"][wildcards.store]
    if src["kind"] == "download":
        return f"data/raw/{wildcards.store}/download_manifest.json"
    return raw_dir(wildcards)


def weights_source(wildcards):
    """The configured source of a baseline checkpoint (``weights.<name>``)."""
    name = wildcards.checkpoint
    src = (config.get("weights") or {}).get(name)
    if src is None:
        raise WorkflowError(f"no weights.{name} in the configuration (docs/baselines.md)")
    if src["kind"] != "download":
        raise WorkflowError(f"weights.{name} is a local folder ({src['root']}): nothing to fetch")
    return src


def weights_dir(name):
    """Folder of a baseline checkpoint: fetched under data/weights/<name>, or the given root."""
    src = (config.get("weights") or {})[name]
    return f"data/weights/{name}" if src["kind"] == "download" else src["root"]


def baseline_row(wildcards):
    return PLAN.baseline(wildcards.baseline)


def weights_input(name):
    """What a job using checkpoint ``name`` waits for: its download record, or its local
    folder when it is there. A missing local folder is not an input, so `snakemake -n` still
    lists the jobs (with a warning at start, below); the job itself then stops at once naming
    the folder."""
    src = config["weights"][name]
    if src["kind"] == "download":
        return [f"data/weights/{name}/download_manifest.json"]
    return [src["root"]] if os.path.exists(src["root"]) else []


def baseline_weights(wildcards):
    """A baseline job's checkpoint (none for random weights)."""
    name = baseline_row(wildcards).values["weights"]
    return [] if name == "random" else weights_input(name)


def released_source(wildcards):
    """The dataset a released checkpoint was pretrained on (config ``transfer``)."""
    released = PLAN.released()
    if wildcards.checkpoint not in released:
        raise WorkflowError(f"weights.{wildcards.checkpoint} is not used by a transfer entry")
    return released[wildcards.checkpoint]


_USED_WEIGHTS = {b.values["weights"] for b in PLAN.baselines} | set(PLAN.released())
for _name in sorted(_USED_WEIGHTS - {"random"}):
    _src = (config.get("weights") or {}).get(_name) or {}
    if _src.get("kind") == "path" and not os.path.exists(_src["root"]):
        print(
            f"WARNING: weights.{_name}: {_src['root']} does not exist; its baseline jobs will "
            "fail until the checkpoint is put there (docs/baselines.md, Weights as data)",
            file=sys.stderr,
        )


def baseline_spec(wildcards):
    """The --baseline JSON of a job (the row's spec with its checkpoint folder)."""
    row = baseline_row(wildcards)
    name = row.values["weights"]
    path = None if name == "random" else weights_dir(name)
    head_norm = (config.get("model") or {}).get("head_norm", "none")
    return json.dumps(row.spec(path, head_norm), sort_keys=True)


def _baseline_outputs(stage):
    base = f"results/baseline/{stage}/{{dataset}}/{{baseline}}/seed~{{seed}}"
    return {name.split(".")[0]: f"{base}/{name}" for name in DOWNSTREAM_OUT}


def store_path(wildcards):
    return f"results/data/{store_of(wildcards)}.zarr"


def band_groups_input(wildcards):
    """The band-group analysis, for cells that normalize with the found groups."""
    if cell_of(wildcards)["groups"] == "analysis":
        return {"groups": f"results/analysis/{store_of(wildcards)}/band_groups.json"}
    return {}


def band_groups_arg(wildcards, input):
    return f"--band-groups {shlex.quote(input.groups)}" if "groups" in input.keys() else ""


def finetune_init(wildcards):
    """Fine-tuning starts from the probe result, or from the pretrained model without probe."""
    base = f"{wildcards.dataset}/{wildcards.cell}/seed~{wildcards.seed}"
    if PLAN.probe[wildcards.dataset]:
        return f"results/probe/{base}/model.pt"
    return f"results/pretrain/{base}/model.pt"


def transfer_init(wildcards):
    """The source model of a cross-dataset run: our pretraining of the source (reference
    cell, same seed), or the imported released checkpoint (cell ``released~<weights>``)."""
    if wildcards.cell.startswith(RELEASED):
        return f"results/imported/{wildcards.cell[len(RELEASED):]}/model.pt"
    return f"results/pretrain/{wildcards.source}/{wildcards.cell}/seed~{wildcards.seed}/model.pt"


def transfer_finetune_init(wildcards):
    """Cross-dataset fine-tuning starts from the cross-dataset probe (or the source model)."""
    if PLAN.probe[wildcards.dataset]:
        return (
            f"results/transfer/probe/{wildcards.dataset}/from~{wildcards.source}/"
            f"{wildcards.cell}/seed~{wildcards.seed}/model.pt"
        )
    return transfer_init(wildcards)


# --- targets --------------------------------------------------------------------------------


def data_targets():
    return expand("results/data/{store}.zarr", store=STORES)


def analysis_targets():
    return expand(
        ["results/analysis/{store}/band_groups.json", "results/figures/correlation_{store}.png"],
        store=STORES,
    )


def pretrain_targets():
    return PLAN.pretrain()


def reference_histories():
    """Training histories of the reference cell's downstream runs (every mode, first seed)."""
    tail = [PLAN.reference.id, f"seed~{SEEDS[0]}", "metrics.json"]
    return [
        os.path.join(os.path.dirname(p), "history.csv")
        for p in PLAN.downstream()
        if p.split("/")[-3:] == tail
    ]


def downstream_metrics():
    """Metrics files of every downstream job (intra-dataset and cross-dataset, baselines) and
    of the reference rows (trivial predictor, linear model on raw inputs)."""
    return PLAN.downstream() + PLAN.transfer() + PLAN.baseline_runs() + PLAN.references()


TABLES = [
    "table1",
    "table2",
    "ablation_norm",
    "ablation_spectral",
    "ablation_fusion",
    "ablation_dates",
    "compute",
]
#: Rules whose outputs need no cluster job.
REPORT_RULES = [
    "tables_all",
    "table_compute",
    "signal_check",
    "figure_pretrain_loss",
    "figure_downstream_curves",
    "figure_ablations",
    "figure_table1",
    "dvc_metrics",
]


def table_targets():
    return [
        *expand("results/tables/{table}.{ext}", table=TABLES, ext=["md", "html", "csv", "tex"]),
        *expand("results/tables/per_class.{ext}", ext=["md", "html", "csv"]),
        "results/tables/signal.md",
        "results/tables/signal.html",
        "results/tables/summary.json",
        "results/figures/pretrain_loss.png",
        "results/figures/downstream_curves.png",
        "results/figures/ablations.png",
        "results/figures/table1.png",
        *expand("results/figures/reconstruction_{dataset}.png", dataset=DATASETS),
        *[
            f"results/figures/segmentation_{d}.png"
            for d in DATASETS
            if CATALOG.dataset(d).task.kind == "segmentation"
        ],
    ]


# --- GPU jobs -------------------------------------------------------------------------------


def gpu_count(wildcards, resources):
    """GPUs granted to a job: its ``gpu`` resource, or the count in a ``gres`` (gpu:a100:4)."""
    n = int(resources.get("gpu", 0) or 0)
    gres = str(resources.get("gres", "") or "")
    if n == 0 and gres.split(":")[0] == "gpu":
        last = gres.split(":")[-1]
        n = int(last) if last.isdigit() else 1
    return n


def launcher(wildcards, resources):
    """How a training job starts: one process, or one DDP process per GPU under torchrun."""
    n = gpu_count(wildcards, resources)
    if n <= 1:
        return MAESTRO
    torchrun = f"{PYTHON} -m torch.distributed.run --standalone --nproc_per_node={n}"
    return f"{torchrun} -m maestro.cli"


# --- outputs and helpers of the rule files (every function lives in this file) -------------

DOWNSTREAM_OUT = ["model.pt", "history.csv", "metrics.json", "predictions.npz", "provenance.json"]


def _downstream_outputs(stage):
    base = f"results/{stage}/{{dataset}}/{{cell}}/seed~{{seed}}"
    return {name.split(".")[0]: f"{base}/{name}" for name in DOWNSTREAM_OUT}


TRANSFER_BASE = "results/transfer/{stage}/{dataset}/from~{source}/{cell}/seed~{seed}"


def _transfer_outputs(stage):
    base = TRANSFER_BASE.replace("{stage}", stage)
    return {name.split(".")[0]: f"{base}/{name}" for name in DOWNSTREAM_OUT}


def _transfer_job(wc, phase):
    released = wc.cell[len(RELEASED) :] if wc.cell.startswith(RELEASED) else None
    return job(
        store_of(wc), "model", "runtime", phase=phase, cell=cell_of(wc), dataset=wc.dataset,
        extra_overrides=PLAN.transfer_overrides(wc.source, wc.dataset, wc.cell),
        transfer_from=wc.source, released=released,
    )  # fmt: skip


# Tables and figures: `snakemake --report report.html` collects them with their captions.
def _report(path, caption, category, subcategory=None):
    labels = {"name": os.path.basename(path)}
    return report(
        path,
        caption=f"../report/{caption}.rst",
        category=category,
        subcategory=subcategory,
        labels=labels,
    )
