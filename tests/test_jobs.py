"""maestro.jobs: the job configuration of one step, from a workflow configuration."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from maestro.datasets import catalog
from maestro.experiment import job_catalog, job_phase, model_config
from maestro.grid import step_job
from maestro.jobs import load_config, validate_config, validate_job
from maestro.train.config import PAPER_PHASES

from .workflow.conftest import REPO


@pytest.fixture(scope="module")
def demo():
    return load_config([REPO / "config/config.yaml"])


@pytest.fixture(scope="module")
def paper():
    return load_config([REPO / "config/paper.yaml"])


def test_scratch_starts_from_the_resolved_finetune_recipe(demo):
    cfg = demo | {
        "finetune": {"epochs": 20, "base_lr": 6e-4, "by_dataset": {"flair2": {"epochs": 50}}},
        "scratch": {"base_lr": 1e-4, "by_dataset": {"treesatai_ts": {"epochs": 7}}},
    }
    flair = step_job(cfg, "scratch", dataset="flair2")["phase"]
    assert flair == {"epochs": 50, "base_lr": 1e-4}  # finetune's by_dataset, scratch's lr
    assert step_job(cfg, "scratch", dataset="treesatai_ts")["phase"]["epochs"] == 7
    assert step_job(cfg, "finetune", dataset="flair2")["phase"]["base_lr"] == 6e-4
    with pytest.raises(ValueError, match="scratch"):
        validate_config(cfg | {"scratch": {"epochs": "ten"}})


def test_defaults_are_filled_and_every_violation_is_listed():
    cfg = validate_config({"datasets": ["treesatai_ts"], "sources": {}})
    assert cfg["seeds"] == [0] and cfg["variants"] == "config/variants.tsv"
    assert cfg["convert"] == {"shard_samples": 32} and cfg["model"] == {"size": "tiny"}
    with pytest.raises(ValueError) as err:
        validate_config({"datasets": ["nope"], "sources": {}, "seeds": [-1], "typo": 1})
    lines = str(err.value).splitlines()
    assert lines[0] == "invalid configuration:"
    assert any(ln.startswith("  datasets.0:") for ln in lines)
    assert any(ln.startswith("  seeds.0:") for ln in lines)
    assert any("typo" in ln for ln in lines), lines


def test_demo_jobs_carry_the_dataset_phase_and_only_their_store(demo):
    pastis = step_job(demo, "pretrain", dataset="pastis_hd")
    treesat = step_job(demo, "pretrain", dataset="treesatai_ts")
    flair = step_job(demo, "pretrain", dataset="flair2")
    assert [j["phase"]["epochs"] for j in (pastis, treesat, flair)] == [100, 60, 500]  # by_dataset
    assert "by_dataset" not in pastis["phase"]
    assert list(pastis["overrides"]) == ["pastis_hd"] and list(treesat["overrides"]) == [
        "treesatai_ts"
    ]
    assert pastis["model"]["depth"] == 4 and pastis["cell"]["inter"] == "2"  # the reference
    probe = step_job(demo, "probe", dataset="flair2")
    assert list(probe["overrides"]) == ["flair_hub"]  # FLAIR#2 lives in the FLAIR-HUB store
    assert probe["phase"]["feature_cache"] == 4
    assert (
        step_job(demo, "scratch", dataset="flair2")["phase"]
        == step_job(demo, "finetune", dataset="flair2")["phase"]
    )
    gen = step_job(demo, "generate-demo", store="pastis_hd")
    assert gen["demo"]["n_train"] == 24 and set(gen) == {"demo", "overrides"}


def test_paper_jobs_resolve_to_the_paper_model_geometry_and_recipe(paper):
    """The paper config alone: Base depth 12, each dataset's declared geometry and the
    paper's learning rates, never the demo's reductions."""
    for ds in ("treesatai_ts", "pastis_hd", "flair2", "flair_hub"):
        job = step_job(paper, "pretrain", dataset=ds)
        cfg = model_config(job)
        assert (cfg.depth, cfg.embed_dim) == (12, 768)
        store = catalog().dataset(ds).store
        assert job_catalog(job).dataset(ds).store == store  # no override of the geometry
        phase = job_phase("pretrain", job)
        assert phase.base_lr == PAPER_PHASES["pretrain"].base_lr and phase.epochs == 100
        ft = job_phase("finetune", step_job(paper, "finetune", dataset=ds))
        assert ft.base_lr == PAPER_PHASES["finetune"].base_lr and ft.ema
    assert job_phase("probe", step_job(paper, "probe", dataset="flair2")).epochs == 15


def test_bad_requests_name_what_is_wrong(demo, paper):
    with pytest.raises(ValueError, match="unknown step"):
        step_job(demo, "train", dataset="pastis_hd")
    with pytest.raises(ValueError, match="needs a dataset"):
        step_job(demo, "pretrain", store="pastis_hd")
    with pytest.raises(KeyError, match="unknown cell"):
        step_job(demo, "probe", dataset="pastis_hd", cell_id="fusion~nope")
    with pytest.raises(ValueError, match="not a demo source"):
        step_job(paper, "generate-demo", store="pastis_hd")


def _cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "maestro.cli", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_cli_prints_the_job_and_refuses_a_workflow_config_as_a_job(demo):
    res = _cli("job", "--step", "finetune", "--dataset", "treesatai_ts")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == step_job(demo, "finetune", dataset="treesatai_ts")
    res = _cli("convert", "--store", "pastis_hd", "--raw", "x", "--out", "y", "--job",
               "@config/config.yaml")  # fmt: skip
    assert res.returncode != 0
    assert "config/config.yaml is a workflow configuration" in res.stderr
    assert "maestro job --config" in res.stderr


def test_every_job_the_workflow_passes_is_valid_and_bad_jobs_are_refused(demo, paper):
    for cfg in (demo, paper):
        for step in ("pretrain", "probe", "finetune", "scratch", "convert", "analyze-bands"):
            validate_job(step_job(cfg, step, dataset="pastis_hd"))
    validate_job(step_job(demo, "generate-demo", store="flair_hub"))
    job = step_job(demo, "pretrain", dataset="pastis_hd")
    bad = {
        **job,
        "phase": {
            **job["phase"], "epochs": 0, "base_lr": "2e-4", "final_factor": 0.01,
            "warmup_div": 0.5, "warmup_frac": 1,
        },
        "modle": {},
        "model": {**job["model"], "depth": -3, "mask_ratio": 0},
    }  # fmt: skip
    with pytest.raises(ValueError) as err:
        validate_job(bad, source="job configuration (x.json)")
    text = str(err.value)
    assert text.startswith("invalid job configuration (x.json):")
    # a schedule that would rise above lr_max or never decay, a pretraining that masks nothing
    for where in ("phase.epochs", "phase.base_lr", "model.depth", "modle", "phase.final_factor",
                  "phase.warmup_div", "phase.warmup_frac", "model.mask_ratio"):  # fmt: skip
        assert where in text, text


def test_cli_reads_a_json_job_as_json_and_stops_before_any_work(tmp_path, demo):
    job = step_job(demo, "pretrain", dataset="pastis_hd")
    job["phase"]["base_lr"] = 2e-4
    good = tmp_path / "job.json"
    good.write_text(json.dumps(job).replace("0.0002", "2e-4"))  # YAML 1.1 reads 2e-4 as text
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**job, "phase": {**job["phase"], "epochs": -3}}))
    out = tmp_path / "out"
    common = ["--dataset", "pastis_hd", "--store-path", str(tmp_path / "none.zarr"),
              "--out-dir", str(out)]  # fmt: skip
    res = _cli("pretrain", *common, "--job", f"@{bad}")
    assert res.returncode != 0 and "phase.epochs: -3 is less than the minimum of 1" in res.stderr
    assert not out.exists()
    res = _cli("pretrain", *common, "--job", f"@{good}")  # valid job: fails on the store only
    assert res.returncode != 0 and "invalid job" not in res.stderr, res.stderr[-2000:]
    assert "none.zarr" in res.stderr


def test_several_config_files_merge_as_snakemake_merges_them(tmp_path):
    """``maestro job --config a b`` prints what ``snakemake --configfile a b`` runs: nested
    sections merge key by key (a later ``model: {depth: 3}`` keeps the demo's width)."""
    import yaml
    from snakemake.utils import update_config

    extra = tmp_path / "extra.yaml"
    extra.write_text("pretrain: {epochs: 1}\nmodel: {depth: 3}\n")
    merged = load_config([REPO / "config/config.yaml", extra])
    assert merged["model"]["depth"] == 3 and merged["model"]["embed_dim"] == 64
    assert merged["pretrain"]["epochs"] == 1 and merged["pretrain"]["batch_size"] == 8
    expected = yaml.safe_load((REPO / "config/config.yaml").read_text())
    update_config(expected, yaml.safe_load(extra.read_text()))
    assert merged == load_config([_write(tmp_path / "snakemake.yaml", expected)])


def _write(path, data):
    import yaml

    path.write_text(yaml.safe_dump(data))
    return path
