"""Data-parallel training under torchrun: 2 CPU processes with the gloo backend."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from maestro.data.zarr_store import Store

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
