"""The workflow's DAG (dry runs) and its configuration checks."""

from __future__ import annotations

import pytest

from .conftest import SNAKEFILE, demo_config, job_counts, snakemake


def test_dry_run_of_the_full_demo_grid(tmp_path):
    res = snakemake(tmp_path, demo_config(), "-n", "all")
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout + res.stderr)
    # 4 stores; the reference cell on 4 datasets with 3 seeds, 7 ablation cells on
    # TreeSatAI-TS with one, the reference pretrained on S2-NAIP, 3 transfer pairs (one seed);
    # the supervised ViT and the random-init probe beside the reference; 2 reference rows each
    expected = {
        "generate_demo": 4, "convert": 4, "band_groups": 4, "pretrain_mae": 4 * 3 + 7 + 1,
        "probe": 4 * 3 + 7, "finetune_model": 4 * 3 + 7, "train_scratch": 4 * 3,
        "probe_random": 4 * 3, "reference": 4 * 2, "transfer_probe": 3, "transfer_finetune": 3,
        "figure_reconstruction": 4, "figure_segmentation": 3, "tables_all": 1,
        "table_compute": 1, "signal_check": 1, "figure_ablations": 1, "figure_pretrain_loss": 1,
        "dvc_metrics": 1, "figure_table1": 1, "figure_downstream_curves": 1,
        "baseline_probe": 4 * 2, "baseline_finetune": 4 * 2,
    }  # fmt: skip
    assert {k: counts[k] for k in expected} == expected


def test_grid_grows_with_variants_and_seeds(tmp_path):
    sheet = tmp_path / "variants.tsv"
    sheet.write_text(
        "fusion\tinter\tspectral\tnorm\tgroups\tsize\tlength\tscratch\tdatasets\n"
        "group\t3\tjoint\tpatchgroup\tspec\ttiny\t1\tyes\tall\n"
        "group\t0\tjoint\tpatch\tspec\ttiny\t2\tno\tall\n"
        "mod\t0\ttoken\tnone\tanalysis\tsmall\t1\tno\tall\n"
    )
    cfg = demo_config() | {"variants": str(sheet), "seeds": [0, 1], "datasets": ["pastis_hd"]}
    cfg["transfer"] = []
    res = snakemake(tmp_path / "wd", cfg, "-n", "-p", "pretrain")
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert job_counts(out)["pretrain_mae"] == 3 * 2
    # a cell that normalizes with the analysed groups depends on the analysis
    assert "results/analysis/pastis_hd/band_groups.json" in out
    cell = (
        "fusion~mod_inter~0_spectral~token_norm~none_groups~analysis_size~small_length~1_dates~all"
    )
    assert f"results/pretrain/pastis_hd/{cell}/seed~1/model.pt" in out
    # MAESTRO† pretrains twice as long
    doubled = next(
        ln for ln in out.splitlines() if "length~2" in ln and "maestro.cli pretrain" in ln
    )
    assert '"length": "2"' in doubled  # maestro.experiment.job_phase doubles the epochs


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
    sheet.write_text(
        "fusion\tinter\tspectral\tnorm\tgroups\tsize\tlength\tscratch\tdatasets\n"
        "shared\t3\tjoint\tpatch\tspec\ttiny\t1\tno\tall\n"
    )
    res = snakemake(tmp_path / "wd", demo_config() | {"variants": str(sheet)}, "-n")
    assert res.returncode != 0
    assert "inter_depth=3 needs fusion 'mod' or 'group'" in res.stdout + res.stderr


def test_paper_config_lists_real_data_jobs_without_network(tmp_path):
    import yaml

    from .conftest import REPO

    cfg = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    cfg["variants"] = str(REPO / "config" / "variants_paper.tsv")
    cfg["baselines"] = str(REPO / "config" / "baselines_paper.tsv")
    for src in [*cfg["sources"].values(), *cfg["weights"].values()]:
        if src["kind"] == "download":
            src["manifest"] = str(REPO / src["manifest"])
    # SatMAE's and DINO-v2 sat.'s checkpoints are local folders (published outside Hugging
    # Face): the dry run lists every job and warns that those folders are missing
    res = snakemake(tmp_path, cfg, "-n", "-p", "all")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "weights.satmae_temporal_base: data/weights/satmae_temporal_base does not exist" in (
        res.stderr
    )
    out = res.stdout + res.stderr
    counts = job_counts(out)
    assert counts["download"] == 4 and counts["convert"] == 4 and "generate_demo" not in counts
    # 16 paper cells on 4 datasets, plus the reference pretrained on S2-NAIP urban
    assert counts["pretrain_mae"] == 16 * 4 + 1 and counts["finetune_model"] == 16 * 4
    assert counts["train_scratch"] == 2 * 4
    # Table 2's pairs twice: from our S2-NAIP / FLAIR-HUB pretraining and from the authors'
    # released checkpoints, each imported once (no pretraining for those)
    assert counts["transfer_finetune"] == 12 and counts["import_checkpoint"] == 2
    assert "import-checkpoint --ckpt data/weights/maestro_flair_hub_base --dataset flair_hub" in out
    released = [ln for ln in out.splitlines() if "released~maestro_flair_hub_base" in ln]
    assert any("--init results/imported/maestro_flair_hub_base/model.pt" in ln for ln in released)
    assert any('"released": "maestro_flair_hub_base"' in ln for ln in released)
    # FLAIR fine-tunes for 100 epochs, TreeSatAI-TS for 50 (the IGNF/MAESTRO README commands)
    finetunes = [  # our cells (not the baselines: a dry run lists jobs in no fixed order)
        line for line in out.splitlines() if "--mode finetune" in line and "--baseline" not in line
    ]
    flair = next(line for line in finetunes if "--dataset flair_hub" in line)
    tsai = next(line for line in finetunes if "--dataset treesatai_ts" in line)
    assert '"epochs": 100' in flair and '"epochs": 50' in tsai
    assert '"size": "base"' in tsai
    assert "maestro.cli download --manifest" in out
    # the six baselines of Table 2 on every dataset, from their weights (four downloads, two
    # local folders)
    assert counts["download_weights"] == 4 + 2  # and the two released MAESTRO checkpoints
    assert counts["baseline_probe"] == 6 * 4 and counts["baseline_finetune"] == 6 * 4
    probes = [line for line in out.splitlines() if "--mode probe --baseline" in line]
    assert all("data/weights/" in line for line in probes)
    sat = next(line for line in probes if "dinov2_sat" in line)
    assert '"size": "large"' in sat and '"weights": "data/weights/dinov2_sat_large"' in sat


def test_paper_config_is_not_merged_with_the_demo():
    """From the repository root, --configfile config/paper.yaml is the whole configuration:
    the paper jobs carry the Base model and the paper's recipe, not the demo's settings."""
    import subprocess
    import sys

    from .conftest import REPO

    cmd = [sys.executable, "-m", "snakemake", "--configfile", "config/paper.yaml", "-n", "-p",
           "--cores", "4", "pretrain"]  # fmt: skip
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = [ln for ln in res.stdout.splitlines() if "maestro.cli pretrain" in ln]
    assert len(jobs) == 65
    assert all('"model": {"size": "base"}' in ln for ln in jobs)  # no demo width, depth, head
    assert all(
        '"overrides": {}' in ln and '"epochs": 100' in ln for ln in jobs if "s2_naip" not in ln
    )


def test_baseline_weights_are_fetched_by_their_manifest(tmp_path):
    """weights.<name> of kind download: the download_weights rule runs the verified
    downloader on the checkpoint's manifest; a local folder has nothing to fetch."""
    from .conftest import REPO

    manifest = str(REPO / "config/manifests/weights/dinov2_base.yaml")
    cfg = demo_config() | {"weights": {"dinov2_base": {"kind": "download", "manifest": manifest}}}
    target = "data/weights/dinov2_base/download_manifest.json"
    res = snakemake(tmp_path / "a", cfg, "-n", "-p", target)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout + res.stderr
    assert job_counts(out) == {"download_weights": 1}
    assert f"download --manifest {manifest} --out data/weights/dinov2_base" in out
    cfg["weights"] = {"dinov2_base": {"kind": "path", "root": "/models/dinov2-base"}}
    res = snakemake(tmp_path / "b", cfg, "-n", target)
    assert res.returncode != 0 and "a local folder (/models/dinov2-base)" in res.stdout + res.stderr
    cfg["weights"] = {"dinov2_base": {"kind": "download"}}  # no manifest: the schema says so
    res = snakemake(tmp_path / "c", cfg, "-n", target)
    assert res.returncode != 0 and "manifest" in res.stdout + res.stderr


def test_readme_rule_graph_is_current():
    """The README's Mermaid rule graph is what `make dag` draws from the workflow as it is."""
    import subprocess
    import sys

    from maestro.report.rulegraph import replace_block

    from .conftest import REPO

    cmd = [sys.executable, "-m", "snakemake", "--configfile", "config/config.yaml",
           "--rulegraph", "dot", "--", "all"]  # fmt: skip
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert replace_block(readme, res.stdout) == readme, "README rule graph is stale: make dag"
    for rule in ("generate_demo", "transfer_finetune", "figure_segmentation", "dvc_metrics"):
        assert f"    {rule}([{rule}])" in readme


def test_the_workflow_runs_as_a_snakemake_module(tmp_path):
    """`module ... snakefile:` + `use rule *`: rules take the CLI through params, not from a
    global of the including Snakefile."""
    import subprocess
    import sys

    import yaml

    cfg = demo_config()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "Snakefile").write_text(
        'configfile: "config.yaml"\n\n\n'
        f'module maestro:\n    snakefile:\n        "{SNAKEFILE}"\n    config:\n        config\n\n\n'
        "use rule * from maestro\n"
    )
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "1", "all"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "NameError" not in out and " -m maestro.cli convert --store" in out
