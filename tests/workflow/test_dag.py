"""The workflow's DAG (dry runs) and its configuration checks."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from .conftest import demo_config, snakemake


def _job_counts(out: str) -> Counter:
    table = out[out.index("Job stats:") :]
    return Counter(
        {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", table, re.M) if m[0] != "total"}
    )


def test_dry_run_of_the_full_demo_grid(tmp_path):
    res = snakemake(tmp_path, demo_config(), "-n", "all")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = _job_counts(res.stdout + res.stderr)
    n_ds = 4  # treesatai_ts, pastis_hd, flair2, flair_hub; one cell, one seed
    assert counts["generate_demo"] == 3 and counts["convert"] == 3 and counts["band_groups"] == 3
    for rule in (
        "pretrain_mae",
        "probe",
        "finetune_model",
        "train_scratch",
        "figure_reconstruction",
    ):
        assert counts[rule] == n_ds, rule
    assert counts["table1"] == 1 and counts["figure_pretrain_loss"] == 1


def test_grid_grows_with_variants_and_seeds(tmp_path):
    sheet = tmp_path / "variants.tsv"
    sheet.write_text(
        "fusion\tinter\tspectral\tnorm\tgroups\n"
        "group\t3\tjoint\tpatchgroup\tspec\n"
        "group\t0\tjoint\tpatch\tspec\n"
        "mod\t0\ttoken\tnone\tanalysis\n"
    )
    cfg = demo_config() | {"variants": str(sheet), "seeds": [0, 1], "datasets": ["pastis_hd"]}
    res = snakemake(tmp_path / "wd", cfg, "-n", "pretrain")
    assert res.returncode == 0, res.stderr[-3000:]
    assert _job_counts(res.stdout + res.stderr)["pretrain_mae"] == 3 * 2
    # a cell that normalizes with the analysed groups depends on the analysis
    assert "results/analysis/pastis_hd/band_groups.json" in res.stdout
    assert (
        "fusion~mod_inter~0_spectral~token_norm~none_groups~analysis/seed~1/model.pt" in res.stdout
    )


def test_phase_targets_exist(tmp_path):
    for target in ("data", "analysis", "pretrain", "finetune", "tables"):
        res = snakemake(tmp_path / target, demo_config(), "-n", target)
        assert res.returncode == 0, (target, res.stderr[-2000:])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"pretrain": {"epochz": 3}}, "pretrain: Additional properties are not allowed ('epochz'"),
        ({"datasets": ["treesatai_ts", "sen12ms"]}, "datasets.1: 'sen12ms' is not one of"),
        ({"model": {"size": "huge"}}, "model.size: 'huge' is not one of"),
        (
            {"finetune": {"base_lr": -1}},
            "finetune.base_lr: -1 is less than or equal to the minimum",
        ),
        ({"overrides": {"pastis_hd": {"tile_m": 300}}}, "not a whole number of 160.0 m crops"),
        ({"sources": {"treesatai_ts": {"kind": "path"}}}, "'root' is a required property"),
    ],
)
def test_bad_config_is_rejected_before_any_job(tmp_path, change, expected):
    cfg = demo_config()
    for key, value in change.items():
        cfg[key] = value if key != "sources" else cfg["sources"] | value
    res = snakemake(tmp_path, cfg, "-n")
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "invalid configuration" in out and expected in out, out[-2000:]
    assert not (tmp_path / "results").exists()


def test_bad_variant_row_is_rejected(tmp_path):
    sheet = tmp_path / "variants.tsv"
    sheet.write_text("fusion\tinter\tspectral\tnorm\tgroups\nshared\t3\tjoint\tpatch\tspec\n")
    res = snakemake(tmp_path / "wd", demo_config() | {"variants": str(sheet)}, "-n")
    assert res.returncode != 0
    assert "inter_depth=3 needs fusion 'mod' or 'group'" in res.stdout + res.stderr


def test_paper_config_lists_real_data_jobs_without_network(tmp_path):
    import yaml

    from .conftest import REPO

    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    cfg["variants"] = str(REPO / "config" / "variants.tsv")
    for src in cfg["sources"].values():
        src["manifest"] = str(REPO / src["manifest"])
    res = snakemake(tmp_path, cfg, "-n", "-p", "all")
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    counts = _job_counts(out)
    assert counts["download"] == 3 and counts["convert"] == 3 and "generate_demo" not in counts
    assert counts["pretrain_mae"] == 4 and counts["finetune_model"] == 4
    # FLAIR fine-tunes for 100 epochs, TreeSatAI-TS for 50 (MAESTRO_SPEC §6)
    finetunes = [line for line in out.splitlines() if "--mode finetune" in line]
    flair = next(line for line in finetunes if "--dataset flair_hub" in line)
    tsai = next(line for line in finetunes if "--dataset treesatai_ts" in line)
    assert '"epochs": 100' in flair and '"epochs": 50' in tsai
    assert '"size": "base"' in tsai
    assert "maestro.cli download --manifest" in out
