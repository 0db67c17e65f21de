"""Every benchmark runs on the landed code: a smoke run at a tiny size (no figure is checked,
only that each run completes and reports well-formed, positive figures)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks"


def _run(script: str, *args: str, timeout: int = 600) -> str:
    res = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_bench_model_reports_throughput_peak_and_attention(tmp_path):
    out = tmp_path / "model.json"
    text = _run(
        "bench_model.py", "--sizes", "tiny", "--datasets", "treesatai_ts", "--steps", "1",
        "--threads", "1", "--attention-tokens", "16", "--json", str(out),
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["matmul_peak_flops"] > 0
    (row,) = report["rows"]
    assert row["size"] == "tiny" and row["samples_per_s"] > 0 and row["flops_per_step"] > 0
    assert row["ratio_to_peak"] > 0 and row["peak_mem_mib"] > 0
    assert report["attention"][0]["tokens"] == 16 and report["attention"][0]["speedup"] > 0
    assert "matmul peak" in text
    # a second run compared with the first prints the ratios
    text = _run(
        "bench_model.py", "--sizes", "tiny", "--datasets", "treesatai_ts", "--steps", "1",
        "--threads", "1", "--attention-tokens", "16", "--baseline", str(out),
    )  # fmt: skip
    assert re.search(r"tiny\s+treesatai_ts\s+x\d+\.\d\d", text)


@pytest.mark.slow
def test_bench_data_reports_both_tables(tmp_path):
    text = _run(
        "bench_data.py", "--treesatai-tiles", "3", "--pastis-tiles", "3", "--max-items", "4",
        "--passes", "1", "--memory-n", "3", "--work", str(tmp_path / "work"),
    )  # fmt: skip
    rows = re.findall(
        r"^\| (treesatai_ts|pastis_hd) \| 3 \| \d+ \| ([\d.]+) \| ([\d.]+) \|", text, re.M
    )
    assert {r[0] for r in rows} == {"treesatai_ts", "pastis_hd"}
    assert all(float(z) > 0 and float(raw) > 0 for _, z, raw in rows)
    assert re.search(r"peak RSS 10 N / N \(1 worker\): \d+\.\d+", text)


def test_bench_model_compares_precisions_and_profiles(tmp_path):
    out = tmp_path / "model.json"
    text = _run(
        "bench_model.py", "--sizes", "tiny", "--datasets", "treesatai_ts", "--steps", "1",
        "--threads", "1", "--batch", "2", "--precision", "fp32", "bf16", "--profile",
        "--reference", "--attention-tokens", "16", "--json", str(out),
    )  # fmt: skip
    report = json.loads(out.read_text())
    rows = {r["precision"]: r for r in report["rows"]}
    assert set(rows) == {"fp32", "bf16", "ref"} and all(r["batch"] == 2 for r in rows.values())
    assert all(len(v) == 6 and min(v) > 0 for v in report["matmul_peaks"].values())
    assert rows["ref"]["attention_flops_per_step"] == 0  # explicit: torch counts its bmm
    assert rows["ref"]["flops_per_step"] == pytest.approx(rows["fp32"]["flops_per_step"], 0.01)
    for r in (rows["fp32"], rows["bf16"]):
        assert 0 < r["attention_flops_per_step"] < r["flops_per_step"]  # counted analytically
        assert sum(r["breakdown"].values()) == pytest.approx(1.0)
        assert r["breakdown"]["matmul"] > 0
    assert rows["bf16"]["flops_per_step"] == rows["fp32"]["flops_per_step"]  # same work
    assert re.search(r"tiny\s+treesatai_ts\s+batch\s+2: x\d+\.\d\d", text)  # bf16 / fp32
    assert "our fp32 step over the official-like reference" in text


@pytest.mark.slow
def test_bench_precision_and_the_gpu_check_run_on_cpu(tmp_path):
    out = tmp_path / "precision.json"
    text = _run(
        "bench_precision.py", "--steps", "4", "--tiles", "12", "--threads", "1",
        "--work", str(tmp_path / "work"), "--json", str(out),
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["runs"]["fp32"]["precision"] == "fp32"
    assert report["runs"]["bf16"]["precision"] == "bf16"
    assert report["runs"]["fp32"]["steps"] == report["runs"]["bf16"]["steps"] >= 4
    assert 0 <= report["relative_difference"] <= report["tolerance"]
    assert "relative difference" in text
    # the GPU check's CPU variant: the three steps at a tiny size
    res = subprocess.run(
        ["bash", str(BENCH / "gpu_check.sh"), str(tmp_path / "gpu")],
        capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHON": sys.executable},
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "DDP: 2 ranks (gloo" in res.stdout and "gpu_check: done" in res.stdout
    assert (tmp_path / "gpu" / "bench_model.json").is_file()


def test_bench_step_parts_accounts_for_the_step(tmp_path):
    out = tmp_path / "parts.json"
    text = _run(
        "bench_step_parts.py", "--size", "tiny", "--batch", "2", "--steps", "1",
        "--threads", "1", "--top", "5", "--json", str(out),
    )  # fmt: skip
    r = json.loads(out.read_text())
    parts = r["parts_s"]
    # the parts (with the untracked remainder) add up to the instrumented step
    assert sum(parts.values()) == pytest.approx(r["instrumented_step_s"], rel=1e-6)
    assert parts["matmul"] > 0 and parts["optimizer"] > 0 and parts["attention"] > 0
    # bf16 autocast casts the weights forward and their gradients back
    assert parts["weight casts (forward)"] > 0 and parts["weight casts (gradients)"] > 0
    assert r["matmul_efficiency"] > 0 and len(r["matmul_peak_flops"]) == 3
    assert 0 < len(r["shapes"]) <= 5
    assert all(s["gflops"] > 0 and s["calls_per_step"] >= 1 for s in r["shapes"])
    assert "| matmul |" in text and "of the peak" in text and len(r["ops"]) == 5


def test_matmul_flops_counts_each_op_form(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import torch
    from bench_step_parts import matmul_flops

    a, b = torch.empty(3, 4), torch.empty(4, 5)
    assert matmul_flops("mm", (a, b)) == (2 * 3 * 4 * 5, "3x4 @ 4x5")
    assert matmul_flops("addmm", (torch.empty(5), a, b))[0] == 2 * 3 * 4 * 5
    assert matmul_flops("bmm", (torch.empty(2, 3, 4), torch.empty(2, 4, 5)))[0] == 2 * 2 * 60
