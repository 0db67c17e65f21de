# Shared workflow logic: config validation, the ablation sheet, wildcard constraints,
# input functions and the job configurations passed to the `maestro` CLI.

import json
import sys

import jsonschema
import pandas as pd
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import Paramspace, validate

from maestro.datasets import catalog
from maestro.experiment import check_cell, model_config


def _check_config(cfg, schema_file):
    """All schema violations at once, one line each, before any job is scheduled."""
    with open(schema_file) as f:
        schema = yaml.safe_load(f)
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(cfg), key=lambda e: list(e.path)
    )
    if errors:
        lines = [f"  {'.'.join(map(str, e.path)) or '<top level>'}: {e.message}" for e in errors]
        raise WorkflowError("invalid configuration:\n" + "\n".join(lines))


_check_config(config, workflow.source_path("../schemas/config.schema.yaml"))
validate(config, "../schemas/config.schema.yaml")  # fills the schema defaults

try:
    CATALOG = catalog(config.get("overrides", {}))
except (ValueError, KeyError) as err:
    raise WorkflowError(f"invalid configuration: overrides: {err}")

DATASETS = list(config["datasets"])
SEEDS = [int(s) for s in config["seeds"]]
#: Every configured raw source is converted; the benchmark datasets must have theirs.
STORES = list(config["sources"])
for _d in DATASETS:
    if CATALOG.dataset(_d).store.name not in config["sources"]:
        _s = CATALOG.dataset(_d).store.name
        raise WorkflowError(f"invalid configuration: sources.{_s} is required by dataset {_d}")

_variants = pd.read_csv(config["variants"], sep="\t", dtype=str, comment="#")
validate(_variants, "../schemas/variants.schema.yaml")
for _, _row in _variants.iterrows():
    try:
        check_cell(_row.to_dict())
        model_config({"model": config["model"], "cell": _row.to_dict()})
    except (ValueError, TypeError) as err:
        raise WorkflowError(f"invalid configuration: {config['variants']}: {err}")
VARIANTS = Paramspace(_variants, filename_params="*", param_sep="~", filename_sep="_")
CELL = VARIANTS.wildcard_pattern  # e.g. fusion~{fusion}_inter~{inter}_spectral~..._groups~{groups}
CELLS = list(VARIANTS.instance_patterns)  # one concrete path component per row

#: How the package is invoked: the interpreter running Snakemake (the project's venv).
MAESTRO = f"{sys.executable} -m maestro.cli"

wildcard_constraints:
    store="|".join(STORES),
    dataset="|".join(DATASETS),
    seed=r"\d+",
    fusion="[a-z]+",
    inter=r"\d+",
    spectral="[a-z]+",
    norm="[a-z]+",
    groups="[a-z]+",


# --- job configurations ---------------------------------------------------------------------


def phase_of(name, dataset):
    """A phase section with the dataset's ``by_dataset`` changes applied."""
    section = dict(config.get(name, {}))
    specific = section.pop("by_dataset", {}).get(dataset, {})
    return section | specific


def job(store, *sections, phase=None, cell=None, dataset=None, **extra):
    """JSON of the config sections a job depends on (its rerun trigger and provenance).

    Only ``store``'s overrides are included, so editing another store reruns nothing here.
    """
    overrides = config.get("overrides", {})
    out = {"overrides": {store: overrides[store]} if store in overrides else {}}
    out |= {s: config[s] for s in sections if s in config}
    if phase is not None:
        out["phase"] = phase_of(phase, dataset)
    out |= extra
    if cell is not None:
        out["cell"] = cell
    return json.dumps(out, sort_keys=True)


def cell_of(wildcards):
    """The ablation row of a cell's wildcards, as strings."""
    return {k: str(v) for k, v in VARIANTS.instance(wildcards).items()}


def store_of(wildcards):
    return CATALOG.dataset(wildcards.dataset).store.name


# --- input functions ------------------------------------------------------------------------


def raw_dir(wildcards):
    """Root of a store's raw distribution."""
    src = config["sources"][wildcards.store]
    return {"demo": f"data/raw/demo/{wildcards.store}", "download": f"data/raw/{wildcards.store}"}.get(
        src["kind"], src.get("root")
    )


def raw_input(wildcards):
    """What conversion waits for: the generated demo, the download record, or the given root."""
    src = config["sources"][wildcards.store]
    if src["kind"] == "download":
        return f"data/raw/{wildcards.store}/download_manifest.json"
    return raw_dir(wildcards)


def store_path(wildcards):
    return f"results/data/{store_of(wildcards)}.zarr"


def band_groups_input(wildcards):
    """The band-group analysis, for cells that normalize with the found groups."""
    if cell_of(wildcards)["groups"] == "analysis":
        return {"groups": f"results/analysis/{store_of(wildcards)}/band_groups.json"}
    return {}


def band_groups_arg(wildcards, input):
    return f"--band-groups {input.groups}" if "groups" in input.keys() else ""


def finetune_init(wildcards):
    """Fine-tuning starts from the probe result, or from the pretrained model without probe."""
    base = f"{wildcards.dataset}/{CELL.format(**wildcards)}/seed~{wildcards.seed}"
    if int(phase_of("probe", wildcards.dataset).get("epochs", 10)) > 0:
        return f"results/probe/{base}/model.pt"
    return f"results/pretrain/{base}/model.pt"


# --- targets --------------------------------------------------------------------------------


def cell_paths(stage, filename):
    return expand(
        f"results/{stage}/{{dataset}}/{{cell}}/seed~{{seed}}/{filename}",
        dataset=DATASETS,
        cell=CELLS,
        seed=SEEDS,
    )


def data_targets():
    return expand("results/data/{store}.zarr", store=STORES)


def analysis_targets():
    return expand(
        ["results/analysis/{store}/band_groups.json", "results/figures/correlation_{store}.png"],
        store=STORES,
    )


def pretrain_targets():
    return cell_paths("pretrain", "model.pt")


def downstream_metrics():
    """Metrics files of every downstream job: probe (when it has epochs), fine-tune, scratch."""
    out = []
    for d in DATASETS:
        stages = ["finetune"]
        if int(phase_of("probe", d).get("epochs", 10)) > 0:
            stages.append("probe")
        if config["scratch"]:
            stages.append("scratch")
        for stage in stages:
            out += expand(
                f"results/{stage}/{d}/{{cell}}/seed~{{seed}}/metrics.json", cell=CELLS, seed=SEEDS
            )
    return out


def table_targets():
    return [
        "results/tables/table1.md",
        "results/tables/table1.csv",
        "results/figures/pretrain_loss.png",
        *expand("results/figures/reconstruction_{dataset}.png", dataset=DATASETS),
    ]
