"""Data-parallel training under torchrun: 2 CPU processes with the gloo backend."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from maestro.store.zarr_store import Store

from .conftest import job


def _torchrun(
    command: str, store, out, extra: list[str], phase: dict
) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "maestro.cli", command, "--dataset", "treesatai_ts", "--store-path", str(store),
        "--out-dir", str(out), "--seed", "0", "--device", "cpu", "--threads", "1",
        "--job", json.dumps(job(phase)), *extra,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_pretrain_and_finetune_with_two_processes(small_stores, tmp_path):
    store = small_stores["treesatai_ts"]
    phase = {"epochs": 2, "batch_size": 2, "base_lr": 1e-3}
    res = _torchrun("pretrain", store, tmp_path / "pre", [], phase)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((tmp_path / "pre" / "metrics.json").read_text())
    n_items = len(Store(store).indices("default", ["train", "val"]))
    assert metrics["world_size"] == 2
    assert metrics["steps"] == 2 * ((n_items // 2) // 2)  # each rank: half the items, batch 2
    prov = json.loads((tmp_path / "pre" / "provenance.json").read_text())
    assert prov["device"]["world_size"] == 2
    assert len(pd.read_csv(tmp_path / "pre" / "history.csv")) == 2
    assert "batch 2 x 2 ranks" in res.stderr

    res = _torchrun(
        "downstream",
        store,
        tmp_path / "ft",
        ["--mode", "finetune", "--init", str(tmp_path / "pre" / "model.pt")],
        phase,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    ft = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    # evaluation covers every item of the split exactly once, across the two ranks
    assert ft["test"]["items"] == len(Store(store).indices("default", ["test"]))
    assert ft["val"]["items"] == len(Store(store).indices("default", ["val"]))
    assert ft["world_size"] == 2 and 0 <= ft["test"]["weighted_f1"] <= 1


@pytest.mark.slow
def test_srun_tasks_form_the_process_group(small_stores, tmp_path):
    """Two processes with the variables ``srun -n 2`` sets (no torchrun) train together."""
    import os
    import socket

    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    phase = {"epochs": 1, "batch_size": 2, "base_lr": 1e-3}
    procs = []
    for rank in range(2):
        env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
        env |= {
            "SLURM_NTASKS": "2", "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank),
            "SLURM_LAUNCH_NODE_IPADDR": "127.0.0.1", "MASTER_PORT": str(port), "SLURM_JOB_ID": "42",
        }  # fmt: skip
        cmd = [
            sys.executable, "-m", "maestro.cli", "pretrain", "--dataset", "treesatai_ts",
            "--store-path", str(small_stores["treesatai_ts"]), "--out-dir", str(tmp_path / "o"),
            "--device", "cpu", "--threads", "1", "--job", json.dumps(job(phase)),
        ]  # fmt: skip
        procs.append(subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True))
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs[0][-2000:] + errs[1][-2000:]
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    prov = json.loads((tmp_path / "o" / "provenance.json").read_text())
    assert metrics["world_size"] == 2 and prov["host"]["slurm_job_id"] == "42"
