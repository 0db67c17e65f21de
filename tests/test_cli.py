"""The maestro command line: parameter counts, job parsing, clear errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from maestro.cli import main
from maestro.data.demo import DemoConfig, generate
from maestro.datasets import catalog


def test_params_counts_match_the_model(capsys):
    assert main(["params", "--size", "tiny", "--dataset", "treesatai_ts"]) == 0
    tiny = json.loads(capsys.readouterr().out)
    assert tiny["encoder"] + tiny["decoder"] == tiny["total"]
    # each of the 3 groups (aerial, s2, s1) has 9 blocks; the inter-group encoder 3
    d, h = 192, 384
    block = 2 * d + 3 * d * d + d * d + d + 2 * d + d * h + h + h * d + d
    transformers = 3 * (9 * block + 2 * d) + (3 * block + 2 * d)
    assert (
        tiny["encoder"] > transformers and tiny["encoder"] - transformers < 60_000
    )  # + tokenizers
    main(["params", "--size", "base", "--dataset", "treesatai_ts"])
    base = json.loads(capsys.readouterr().out)
    assert 80e6 < base["encoder"] < 90e6  # ~3 x 9 + 3 ViT-B blocks


def test_job_argument_accepts_json_and_files(tmp_path, capsys):
    f = tmp_path / "job.yaml"
    f.write_text("model: {embed_dim: 40}\n")
    assert main(["params", "--job", f"@{f}"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert main(["params", "--job", '{"model": {"embed_dim": 40}}']) == 0
    assert json.loads(capsys.readouterr().out) == from_file
    with pytest.raises(SystemExit, match="invalid JSON"):
        main(["params", "--job", "{bad"])


def test_convert_reports_bad_input_and_leaves_nothing(tmp_path):
    store = catalog().store("treesatai_ts")
    cfg = DemoConfig(n_train=2, n_val=1, n_test=1, acquisitions={"s2": 6, "s1_asc": 4, "s1_des": 4})
    generate(store, tmp_path / "raw", cfg)
    victim = sorted((tmp_path / "raw" / "aerial").glob("*.tif"))[0]
    victim.write_bytes(victim.read_bytes()[:1000])  # truncated GeoTIFF
    out = tmp_path / "out.zarr"
    cmd = [sys.executable, "-m", "maestro.cli", "convert", "--store", "treesatai_ts",
           "--raw", str(tmp_path / "raw"), "--out", str(out)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 2
    assert victim.name in res.stderr and "Traceback" not in res.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.zarr*"))
