"""profiles/slurm: the resources it resolves (dry runs) and the demo DAG on a real SLURM.

The integration test needs a running cluster (``scripts/slurm_cluster.sh start``, see
docs/slurm.md); without one it is skipped, or fails when ``MAESTRO_REQUIRE_SLURM=1`` (CI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

from .conftest import REPO, SNAKEFILE, demo_config, snakemake
from .test_end_to_end import tiny_config

PROFILE = REPO / "profiles" / "slurm"
GPU_RULES = [
    "pretrain_mae", "probe", "probe_random", "finetune_model", "train_scratch", "transfer_probe",
    "transfer_finetune", "baseline_probe", "baseline_finetune",
]  # fmt: skip


def run(workdir: Path, cfg: dict, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``snakemake --profile profiles/slurm ...`` started in ``workdir`` (logs land there)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
        "--configfile", "config.yaml", "--profile", str(PROFILE), *args,
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout)


def jobs(out: str) -> list[dict]:
    """The jobs of a ``-n -p`` listing: rule, resources (as strings) and shell command."""
    found: list[dict] = []
    for line in out.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):$", line):
            found.append({"rule": m[1], "resources": {}, "shell": ""})
        elif found and line.startswith("    resources: "):
            items = line.removeprefix("    resources: ").split(", ")
            found[-1]["resources"] = dict(item.split("=", 1) for item in items)
        elif found and line.startswith("Shell command: "):
            found[-1]["shell"] = line
    return found


def first(found: list[dict], rule: str) -> dict:
    return next(j for j in found if j["rule"] == rule)


def test_gpu_rules_resolve_to_gpu_requests(tmp_path):
    res = run(tmp_path, demo_config(), "-n", "-p", "--cores", "64", "all")
    assert res.returncode == 0, res.stderr[-3000:]
    found = jobs(res.stdout + res.stderr)
    assert {j["rule"] for j in found} >= set(GPU_RULES)
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    for job in found:
        r = job["resources"]
        if job["rule"] in GPU_RULES:
            # gpu + gpu_model (--gpus=a100:1), never together with gres
            assert (r["gpu"], r["gpu_model"], r["cpus_per_gpu"]) == ("1", "a100", "8"), job
            assert "gres" not in r and "cpus_per_task" not in r
            assert r["slurm_partition"] == "gpu" and int(r["mem_mb"]) >= 32000
            expr = profile["set-resources"][job["rule"]]["runtime"]
            assert int(r["runtime"]) == eval(expr, {"attempt": 1})
            assert (
                "--threads 8 --gpus 1" in job["shell"] and "torch.distributed" not in job["shell"]
            )
        elif r:
            assert "gpu" not in r and r["slurm_partition"] == "cpu", job
        assert not r or r["slurm_account"] == "CHANGE_ME"
    # a retried job asks for more time: runtime is an expression of the attempt
    for rule in GPU_RULES:
        spec = profile["set-resources"][rule]
        runtimes = [eval(spec["runtime"], {"attempt": a}) for a in (1, 2, 3)]
        assert runtimes == sorted(set(runtimes)), rule
        assert not (spec.get("gres") and spec.get("gpu")), rule
    assert profile["retries"] >= 1 and profile["executor"] == "slurm"


def test_sbatch_flags_of_a_gpu_job(tmp_path):
    """The plugin's own submit-string functions on the resolved pretraining resources."""
    submit = pytest.importorskip("snakemake_executor_plugin_slurm.submit_string")
    utils = pytest.importorskip("snakemake_executor_plugin_slurm.utils")
    res = run(tmp_path, tiny_config(tmp_path), "-n", "-p", "--cores", "64", "pretrain")
    assert res.returncode == 0, res.stderr[-3000:]
    r = first(jobs(res.stdout + res.stderr), "pretrain_mae")["resources"]
    values = {k: int(v) if v.isdigit() else v for k, v in r.items() if "TBD" not in v}
    resources = SimpleNamespace(**values, get=values.get)
    job = SimpleNamespace(resources=resources, threads=8, name="pretrain_mae")
    params = {
        "run_uuid": "x", "slurm_logfile": "x.log", "comment_str": "x", "workdir": str(tmp_path),
        "account": " -A CHANGE_ME", "partition": f" -p {r['slurm_partition']}",
    }  # fmt: skip
    call = submit.get_submit_command(job, params) + utils.set_gres_string(job)
    for flag in ("-p gpu", "-t 1440", "--mem 64000", "--cpus-per-gpu=8", "--gpus=a100:1"):
        assert flag in call, (flag, call)
    assert "--gres" not in call and "--cpus-per-task" not in call


@pytest.mark.parametrize(
    ("override", "n"),
    [
        (["pretrain_mae:gpu=2", "pretrain_mae:gpu_model=a100"], 2),
        (["pretrain_mae:gres=gpu:a100:4", "pretrain_mae:gpu=0"], 4),  # the gres style
    ],
)
def test_several_gpus_launch_ddp_under_torchrun(tmp_path, override, n):
    cfg = tiny_config(tmp_path)
    res = run(tmp_path, cfg, "-n", "-p", "--set-resources", *override, "--", "pretrain")
    assert res.returncode == 0, res.stderr[-3000:]
    shell = first(jobs(res.stdout + res.stderr), "pretrain_mae")["shell"]
    launch = f"-m torch.distributed.run --standalone --nproc_per_node={n} -m maestro.cli pretrain"
    assert launch in shell and f"--gpus {n} " in shell
    # one GPU (and the local profile's CPU runs) stay a single plain process
    res = snakemake(tmp_path / "local", cfg, "-n", "-p", "pretrain")
    shell = first(jobs(res.stdout + res.stderr), "pretrain_mae")["shell"]
    assert "-m maestro.cli pretrain" in shell and "torch.distributed" not in shell


# --- a real SLURM ---------------------------------------------------------------------------


def _cluster() -> dict:
    """Partition and stand-in GPUs of the running cluster; skips (or fails) without one."""

    def unavailable(reason: str):
        if os.environ.get("MAESTRO_REQUIRE_SLURM") == "1":
            pytest.fail(f"SLURM required (MAESTRO_REQUIRE_SLURM=1): {reason}")
        pytest.skip(f"{reason}; start one with `sudo scripts/slurm_cluster.sh start`")

    if shutil.which("sinfo") is None:
        unavailable("SLURM is not installed (no sinfo)")
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%P|%T|%G"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        unavailable("sinfo timed out")
    lines = [ln.split("|") for ln in out.stdout.split()]
    up = [ln for ln in lines if ln[1] in ("idle", "mixed")]
    if out.returncode != 0 or not up:
        unavailable(f"no idle SLURM node ({(out.stderr or out.stdout).strip()[:200]})")
    gres = re.match(r"gpu:(\w+):(\d+)", up[0][2])
    return {
        "partition": up[0][0].rstrip("*"),
        "gpu_model": gres[1] if gres else None,
        "gpus": int(gres[2]) if gres else 0,
    }


def _test_profile(path: Path, cluster: dict) -> Path:
    """Layered after profiles/slurm: this cluster's partition, 1 CPU and little memory per job.

    On a cluster with (stand-in) GPUs the GPU rules keep their GPU request and pretraining
    asks for 2 GPUs (DDP under torchrun); without GPUs they are plain CPU jobs.
    """
    gpus = cluster["gpus"]
    gpu_rules = {}
    for rule in ("pretrain_mae", "probe", "finetune_model", "train_scratch"):
        n = min(gpus, 2 if rule == "pretrain_mae" else 1)
        spec = {"gpu": n, "mem_mb": 3000}
        if n:
            spec |= {"gpu_model": cluster["gpu_model"], "cpus_per_gpu": 1}
        gpu_rules[rule] = spec
    profile = {
        "default-resources": {
            "slurm_account": "maestro-test",
            "slurm_partition": cluster["partition"],
            "mem_mb": 1000,
            "runtime": 30,
        },
        "set-resources": gpu_rules,
        "set-threads": {rule: 1 for rule in [*gpu_rules, "convert"]},
        # no accounting database: status from squeue (the cluster keeps ended jobs)
        "slurm-status-command": "squeue",
        "slurm-init-seconds-before-status-checks": 2,
        "seconds-between-status-checks": 3,
    }
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(profile))
    return path


@pytest.mark.slurm
@pytest.mark.slow
def test_demo_dag_through_slurm(tmp_path):
    cluster = _cluster()
    override = _test_profile(tmp_path / "profile", cluster)
    wd = tmp_path / "wd"
    res = run(
        wd, tiny_config(tmp_path), "--profile", str(override), "--verbose", "all", timeout=900
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-5000:]

    # every cluster job went through sbatch with the profile's settings
    calls = [ln for ln in out.splitlines() if ln.startswith("sbatch call: ")]
    rules = {re.search(r"--comment '?rule_(\w+?)_wildcards", c)[1] for c in calls}
    cluster_rules = {"generate_demo", "convert", "band_groups", "pretrain_mae", "probe"}
    assert rules >= cluster_rules | {"finetune_model", "train_scratch"}, rules
    assert all(f"-p {cluster['partition']}" in c and "-A maestro-test" in c for c in calls)
    pretrain = next(c for c in calls if "rule_pretrain_mae" in c)
    if cluster["gpus"] >= 2:
        assert f"--gpus={cluster['gpu_model']}:2" in pretrain and "--cpus-per-gpu=1" in pretrain
    assert "--gres" not in pretrain

    # SLURM ran them (the cluster keeps ended jobs for MinJobAge) and kept their logs
    ids = re.findall(r"has been submitted with SLURM jobid (\d+)", out)
    assert len(ids) == len(calls)
    sq = subprocess.run(
        ["squeue", "--states=all", "-h", "-o", "%i|%T", "-j", ",".join(ids)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    states = dict(ln.split("|") for ln in sq.stdout.split())
    assert states == dict.fromkeys(ids, "COMPLETED"), sq.stdout + sq.stderr
    assert list((wd / "logs/slurm/rule_pretrain_mae").glob("*/*.log"))

    # the tables came out, with numbers, from jobs that ran inside SLURM
    assert "TreeSatAI-TS (wF1)" in (wd / "results/tables/table1.md").read_text()
    table = pd.read_csv(wd / "results/tables/table1.csv")
    # MAESTRO rows and their floors (random-init probe, ViT, linear model, trivial predictor)
    assert set(table["Model"]) == {
        "MAESTRO", "MAESTRO (probe)", "Random-init encoder (probe)", "ViT (supervised)",
        "Linear model on raw inputs", "Trivial predictor",
        "DINO-v2 (random init, demo)", "DINO-v2 (random init, demo) (probe)",
        "DOFA (random init, demo)", "DOFA (random init, demo) (probe)",
    }, table["Model"].tolist()  # fmt: skip
    assert table["mean"].between(0, 100).all()
    prov = json.loads(next((wd / "results/pretrain").rglob("provenance.json")).read_text())
    assert prov["host"]["slurm_job_id"] in ids
    assert prov["device"]["world_size"] == (2 if cluster["gpus"] >= 2 else 1)
