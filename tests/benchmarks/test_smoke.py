"""Every benchmark runs on the landed code: a smoke run at a tiny size (no figure is checked,
only that each run completes and reports well-formed, positive figures)."""

import json
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
