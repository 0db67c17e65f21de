"""The real snakemake CLI end to end on a tiny configuration (one dataset, one variant)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from .conftest import demo_config, job_counts, snakemake

PNG = b"\x89PNG\r\n\x1a\n"
TINY_MODEL = {
    "size": "tiny", "embed_dim": 24, "depth": 2, "inter_depth": 1, "heads": 2, "dim_head": 8,
    "mlp_dim": 24, "decoder_dim": 16, "decoder_heads": 2, "decoder_dim_head": 8, "head_heads": 2,
}  # fmt: skip


def tiny_config(tmp_path) -> dict:
    cfg = demo_config()
    sheet = tmp_path / "variants.tsv"
    sheet.write_text(
        "fusion\tinter\tspectral\tnorm\tgroups\tsize\tlength\tscratch\tdatasets\n"
        "group\t1\tjoint\tpatchgroup\tspec\ttiny\t1\tyes\tall\n"
    )
    cfg["variants"] = str(sheet)
    cfg["datasets"] = ["treesatai_ts"]
    cfg["seeds"] = [0]
    cfg["transfer"] = []
    demo = cfg["sources"]["treesatai_ts"]["demo"]
    cfg["sources"] = {
        "treesatai_ts": {"kind": "demo", "demo": demo | {"n_train": 8, "n_val": 4, "n_test": 4}}
    }
    cfg["model"] = TINY_MODEL
    for phase in ("pretrain", "probe", "finetune"):
        cfg[phase] = {"epochs": 2, "batch_size": 4, "base_lr": 1e-3}
    return cfg


@pytest.mark.slow
def test_pipeline_end_to_end(tmp_path):
    cfg = tiny_config(tmp_path)
    wd = tmp_path / "wd"
    res = snakemake(wd, cfg, "all")
    assert res.returncode == 0, res.stderr[-4000:]

    md = (wd / "results/tables/table1.md").read_text()
    assert "TreeSatAI-TS (wF1)" in md
    # `dvc metrics show` reads it: written by snakemake itself, not only by the DVC stage
    summary = json.loads((wd / "results/tables/summary.json").read_text())
    assert summary.get("table1")
    table = pd.read_csv(wd / "results/tables/table1.csv")
    assert set(table["Model"]) == {
        "MAESTRO", "MAESTRO (probe)", "ViT (supervised)", "Random-init encoder (probe)",
        "Linear model on raw inputs", "Trivial predictor",
        # the baseline foundation models of config/baselines.tsv, random weights
        "DINO-v2 (random init, demo)", "DINO-v2 (random init, demo) (probe)",
        "DOFA (random init, demo)", "DOFA (random init, demo) (probe)",
    }  # fmt: skip
    assert table["mean"].between(0, 100).all() and (table["n_seeds"] == 1).all()
    assert (table["ci_low"] <= table["mean"]).all() and (table["mean"] <= table["ci_high"]).all()
    cell = (
        "fusion~group_inter~1_spectral~joint_norm~patchgroup_groups~spec_size~tiny_length~1"
        "_dates~all"
    )
    metrics = json.loads(
        (wd / f"results/finetune/treesatai_ts/{cell}/seed~0/metrics.json").read_text()
    )
    row = table[table["Model"] == "MAESTRO"].iloc[0]
    assert row["mean"] == pytest.approx(100 * metrics["test"]["weighted_f1"], abs=1e-3)

    for fig in (
        "pretrain_loss.png",
        "reconstruction_treesatai_ts.png",
        "correlation_treesatai_ts.png",
    ):
        assert (wd / "results/figures" / fig).read_bytes()[:8] == PNG, fig
    groups = json.loads((wd / "results/analysis/treesatai_ts/band_groups.json").read_text())
    assert groups["modalities"]["s2"]["matches_spec"]

    for stage in ("pretrain", "probe", "finetune", "scratch"):
        prov = json.loads(
            (wd / f"results/{stage}/treesatai_ts/{cell}/seed~0/provenance.json").read_text()
        )
        assert prov["config"]["seed"] == 0 and prov["config_hash"]
        assert (
            prov["inputs"]["store"]["sha256"]
            == json.loads(
                (wd / "results/data/treesatai_ts.zarr/maestro_manifest.json").read_text()
            )["content_hash"]
        )
        assert prov["wall_time_s"] > 0 and prov["device"]["device"] == "cpu"
    assert (wd / f"results/logs/pretrain/treesatai_ts/{cell}/seed~0.log").stat().st_size > 0
    assert (
        (wd / f"results/benchmarks/pretrain/treesatai_ts/{cell}/seed~0.tsv")
        .read_text()
        .startswith("s\t")
    )

    # nothing left to do; rerunning one cell schedules exactly that job
    res = snakemake(wd, cfg, "-n", "all")
    assert "Nothing to be done" in res.stdout + res.stderr
    target = f"results/finetune/treesatai_ts/{cell}/seed~0/metrics.json"
    res = snakemake(wd, cfg, "-n", "-R", "finetune_model", "--", target)
    assert job_counts(res.stdout + res.stderr) == {"finetune_model": 1}
    # forcing the cell's pretraining schedules it and its probe and fine-tune, nothing else
    pretrain = f"results/pretrain/treesatai_ts/{cell}/seed~0/model.pt"
    probe = f"results/probe/treesatai_ts/{cell}/seed~0/metrics.json"
    res = snakemake(wd, cfg, "-n", "--forcerun", pretrain, "--", probe, target)
    assert job_counts(res.stdout + res.stderr) == {
        "pretrain_mae": 1, "probe": 1, "finetune_model": 1
    }  # fmt: skip

    # the HTML report holds the tables and figures with their captions
    res = snakemake(wd, cfg, "--report", str(wd / "report.html"))
    assert res.returncode == 0, res.stderr[-3000:]
    html = (wd / "report.html").read_text(errors="ignore")
    assert "table1.html" in html and "ablations.png" in html and "Intra-dataset results" in html
    page = (wd / "results/tables/table1.html").read_text()  # the table itself, shown inline
    assert "<table>" in page and "<th>Model</th>" in page and "Trivial" in page


def test_paths_with_spaces(tmp_path):
    """A raw root and a working directory whose paths contain spaces: every rule's shell
    command quotes its paths (convert, band analysis and the reference rows run for real)."""
    from maestro.data.demo import DemoConfig, generate
    from maestro.datasets import catalog

    cfg = tiny_config(tmp_path)
    overrides = cfg["overrides"]
    raw = tmp_path / "my data" / "Tree Sat"
    demo = cfg["sources"]["treesatai_ts"]["demo"]
    generate(catalog(overrides).store("treesatai_ts"), raw, DemoConfig(**demo))
    cfg["sources"] = {"treesatai_ts": {"kind": "path", "root": str(raw)}}
    wd = tmp_path / "work dir"
    targets = ["results/analysis/treesatai_ts/band_groups.json",
               "results/reference/treesatai_ts/trivial/metrics.json"]  # fmt: skip
    dry = snakemake(wd, cfg, "-n", "-p", *targets)
    assert dry.returncode == 0, dry.stderr[-3000:]
    res = snakemake(wd, cfg, *targets)
    assert res.returncode == 0, res.stderr[-4000:]
    metrics = json.loads((wd / targets[1]).read_text())
    assert metrics["test"]["items"] == demo["n_test"]
    assert json.loads((wd / targets[0]).read_text())  # the analysis ran on the converted store
