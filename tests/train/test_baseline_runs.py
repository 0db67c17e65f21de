"""Baseline foundation models through the downstream loop: probe, then fine-tune from the
probe, on converted demo-format stores (random weights: the demo's "random init" rows)."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from maestro.baselines.build import BaselineSpec, load_baseline
from maestro.experiment import job_phase
from maestro.train import checkpoint
from maestro.train.downstream import run_downstream
from maestro.train.runtime import make_runtime

from .conftest import job

RT = make_runtime("cpu")
PHASE = {"epochs": 2, "batch_size": 4, "base_lr": 1e-3, "max_steps_per_epoch": 2}


def test_probe_then_finetune_a_dinov2_baseline(small_stores, catalog_small, tmp_path):
    ds = catalog_small.dataset("pastis_hd")
    spec = BaselineSpec(model="dinov2", size="demo", grid=2, head="linear")
    j = job(PHASE)
    probe = run_downstream(
        "probe", small_stores["pastis_hd"], ds, job_phase("probe", j), 0, tmp_path / "probe", RT,
        baseline=spec,
    )  # fmt: skip
    assert probe["row"] == "DINO-v2 (random init, demo)" and probe["baseline"]["model"] == "dinov2"
    assert 0.0 <= probe["test"]["miou"] <= 1.0 and probe["test"]["items"] > 0
    rec = checkpoint.load(tmp_path / "probe" / "model.pt")
    assert rec["kind"] == "baseline" and rec["baseline"]["grid"] == 2
    fresh = load_baseline(tmp_path / "probe" / "model.pt", ds)[0].state_dict()
    start = {k: v for k, v in fresh.items() if k.startswith("encoder.")}
    saved = {k: v for k, v in rec["state_dict"].items() if k.startswith("encoder.")}
    assert all(torch.equal(saved[k], start[k]) for k in saved)  # the probe rebuilds exactly
    fine = run_downstream(
        "finetune", small_stores["pastis_hd"], ds, job_phase("finetune", j), 0,
        tmp_path / "fine", RT, init=tmp_path / "probe" / "model.pt", baseline=spec,
    )  # fmt: skip
    tuned = checkpoint.load(tmp_path / "fine" / "model.pt")["state_dict"]
    assert any(not torch.equal(tuned[k], saved[k]) for k in saved)  # the backbone trained
    assert fine["mode"] == "finetune" and "bootstrap" in fine["test"]


def test_a_dofa_baseline_through_the_cli(small_stores, tmp_path):
    """DOFA on TreeSatAI-TS (aerial and S2 by wavelength, S1 by DOFA's SAR code)."""
    j = job(PHASE)
    base = [sys.executable, "-m", "maestro.cli", "downstream", "--dataset", "treesatai_ts",
            "--store-path", str(small_stores["treesatai_ts"]), "--seed", "0", "--device", "cpu",
            "--threads", "1", "--job", json.dumps(j),
            "--baseline", json.dumps({"model": "dofa", "size": "demo", "grid": 1})]  # fmt: skip
    res = subprocess.run([*base, "--mode", "probe", "--out-dir", str(tmp_path / "p")],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert metrics["row"] == "DOFA (random init, demo)" and "weighted_f1" in metrics["test"]
    prov = json.loads((tmp_path / "p" / "provenance.json").read_text())
    assert prov["config"]["baseline"]["model"] == "dofa"
    bad = [*base[:-1], json.dumps({"model": "dofa", "depth": 3}), "--mode", "probe",
           "--out-dir", str(tmp_path / "x")]  # fmt: skip
    res = subprocess.run(bad, capture_output=True, text=True, timeout=600)
    assert res.returncode != 0 and "unknown key(s) ['depth']" in res.stderr
    assert not (tmp_path / "x" / "metrics.json").exists()
