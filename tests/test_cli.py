"""The maestro command line: parameter counts, job parsing, clear errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from maestro.cli import main
from maestro.data.demo import DemoConfig, generate
from maestro.datasets import catalog


def expected_encoder(d: int, h: int, depth: int, inter: int, groups: int, modalities) -> int:
    """Encoder parameters: per-group blocks + inter-group blocks (each Transformer ends with a
    LayerNorm) + one Conv2d(c, d, k=p) and GroupNorm(1, d) per modality (channels, patch)."""
    block = (2 * d + 3 * d * d + d * d + d) + (2 * d + d * h + h + h * d + d)  # attn + MLP
    transformers = groups * ((depth - inter) * block + 2 * d) + (inter * block + 2 * d)
    return transformers + sum(c * p * p * d + 3 * d for c, p in modalities)


def test_params_counts_match_the_model(capsys):
    tsai = ((4, 20), (10, 2), (2, 2), (2, 2))  # aerial, s2, s1_asc, s1_des; groups aerial/s2/s1
    for size, d, h, depth in (("tiny", 192, 384, 12), ("base", 768, 3072, 12)):
        assert main(["params", "--size", size, "--dataset", "treesatai_ts"]) == 0
        counts = json.loads(capsys.readouterr().out)
        assert counts["encoder"] + counts["decoder"] == counts["total"]
        assert counts["encoder"] == expected_encoder(d, h, depth, 3, 3, tsai), size
    # the paper's "Base": 3 x 9 + 3 ViT-B blocks on TreeSatAI-TS, about 214 M encoder parameters
    assert 2.0e8 < counts["encoder"] < 2.2e8


def test_cells_lists_the_sheet_of_a_config(tmp_path, capsys):
    from tests.workflow.conftest import REPO

    sheet = tmp_path / "v.tsv"
    sheet.write_text(
        "fusion\tinter\tspectral\tnorm\tgroups\tsize\tlength\tscratch\tdatasets\n"
        "group\t3\tjoint\tpatchgroup\tspec\tbase\t2\tno\tpastis_hd\n"
        "mod\t0\ttoken\tnone\tspec\tsmall\t1\tyes\tall\n"
    )
    override = tmp_path / "c.yaml"
    override.write_text(f"variants: {sheet}\ndatasets: [pastis_hd, flair2]\n")
    assert main(["cells", "--config", str(REPO / "config/config.yaml"), str(override)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "cell\tdatasets\tscratch",
        "fusion~group_inter~3_spectral~joint_norm~patchgroup_groups~spec_size~base_length~2"
        "_dates~all\tpastis_hd\tno",
        "fusion~mod_inter~0_spectral~token_norm~none_groups~spec_size~small_length~1"
        "_dates~all\tpastis_hd,flair2\tyes",
    ]


def test_job_argument_accepts_json_and_files(tmp_path, capsys, caplog):
    f = tmp_path / "job.yaml"
    f.write_text("model: {embed_dim: 40}\n")
    assert main(["params", "--job", f"@{f}"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert main(["params", "--job", '{"model": {"embed_dim": 40}}']) == 0
    assert json.loads(capsys.readouterr().out) == from_file
    assert main(["params", "--job", "{bad"]) == 2
    assert "params: --job: invalid JSON" in caplog.text


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


def test_generate_demo_replaces_only_a_demo_it_wrote(tmp_path):
    from maestro.data.demo import DEMO_MARKER

    job = json.dumps({"demo": {"n_train": 1, "n_val": 1, "n_test": 1,
                               "acquisitions": {"s2": 4, "s1_asc": 2, "s1_des": 2}}})  # fmt: skip
    args = ["generate-demo", "--store", "treesatai_ts", "--job", job, "--out"]
    out = tmp_path / "demo"
    assert main([*args, str(out)]) == 0
    assert json.loads((out / DEMO_MARKER).read_text())["store"] == "treesatai_ts"
    assert main([*args, str(out)]) == 0  # its own output: replaced
    user = tmp_path / "raw"
    user.mkdir()
    (user / "data.h5").write_text("real data")
    assert main([*args, str(user)]) == 2
    assert [p.name for p in user.iterdir()] == ["data.h5"]
    assert not list(tmp_path.glob(".raw*"))  # nothing half-written beside it


def test_generate_demo_without_a_job_says_how_to_get_one(tmp_path, caplog):
    out = tmp_path / "demo"
    assert main(["generate-demo", "--store", "treesatai_ts", "--out", str(out)]) == 2
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "no `demo` section" in record.message
    assert "maestro job --config config/config.yaml --step generate-demo" in record.message
    assert not out.exists()


def test_a_string_system_exit_is_one_error_line_and_exit_2(tmp_path, caplog):
    # --job errors are raised as SystemExit(message): the CLI reports them like every error
    assert main(["generate-demo", "--store", "treesatai_ts", "--out", str(tmp_path / "d"),
                 "--job", "[1, 2]"]) == 2  # fmt: skip
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.message.startswith("generate-demo: --job: the --job text: expected a mapping")


def test_every_option_has_help_and_there_is_a_version(capsys):
    import argparse

    from maestro import __version__
    from maestro.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    bare = [
        (name, a.option_strings[-1])
        for name, sp in sub.choices.items()
        for a in sp._actions
        if a.option_strings and not a.help
    ]
    assert bare == []
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"maestro {__version__}"


def test_cells_finds_the_sheet_from_any_working_directory(tmp_path, monkeypatch, capsys, caplog):
    from tests.workflow.conftest import REPO

    monkeypatch.chdir(tmp_path)  # config/variants.tsv does not exist here
    assert main(["cells", "--config", str(REPO / "config/config.yaml")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "cell\tdatasets\tscratch"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        (REPO / "config/config.yaml").read_text().replace("config/variants.tsv", "no.tsv")
    )
    assert main(["cells", "--config", str(cfg)]) == 2
    assert "variants sheet 'no.tsv' not found" in caplog.text


def test_convert_refuses_an_out_that_is_the_raw_root(tmp_path):
    store = catalog().store("treesatai_ts")
    cfg = DemoConfig(n_train=1, n_val=1, n_test=1, acquisitions={"s2": 4, "s1_asc": 2, "s1_des": 2})
    raw = tmp_path / "raw"
    generate(store, raw, cfg)
    before = sorted(p.relative_to(raw) for p in raw.rglob("*"))
    for out in (raw, tmp_path):  # the raw root itself, and a folder that contains it
        assert (
            main(["convert", "--store", "treesatai_ts", "--raw", str(raw), "--out", str(out)]) == 2
        )
    assert sorted(p.relative_to(raw) for p in raw.rglob("*")) == before  # nothing deleted


def test_resume_fingerprint_follows_the_inputs_content(tmp_path):
    """A killed job resumes only over the same inputs: a rebuilt init checkpoint or store
    (same path, other bytes) gives another fingerprint, so the job starts afresh (T16)."""
    from maestro.cli import _fingerprint

    init = tmp_path / "model.pt"
    init.write_bytes(b"pretraining A")
    config = {"job": {"phase": {"epochs": 2}}, "seed": 0}
    a = _fingerprint(config, {"init": str(init), "store": None})
    assert a == _fingerprint(config, {"init": str(init), "store": None})
    init.write_bytes(b"pretraining B")
    b = _fingerprint(config, {"init": str(init), "store": None})
    assert b != a
    assert _fingerprint(config | {"seed": 1}, {"init": str(init)}) != b
