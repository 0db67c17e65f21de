"""Tables from metrics files: rows, columns, seed statistics, intervals, formats."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from maestro.report.build import write_all
from maestro.report.compute import write_compute_table
from maestro.report.tables import hierarchical_ci

REF = {
    "fusion": "group", "inter": "3", "spectral": "joint", "norm": "patchgroup", "groups": "spec",
    "size": "tiny", "length": "1",
}  # fmt: skip
TITLES = {"treesatai_ts": "TreeSatAI-TS", "pastis_hd": "PASTIS-HD"}
METRIC = {"treesatai_ts": "weighted_f1", "pastis_hd": "miou"}


def _metrics(tmp_path, name, dataset, mode, value, seed=0, source=None, **cell):
    rng = np.random.default_rng(seed)
    path = tmp_path / f"{name}.json"
    replicates = np.clip(value + rng.normal(0, 0.02, 1000), 0, 1)
    path.write_text(json.dumps({
        "dataset": dataset, "title": TITLES[dataset], "mode": mode, "metric": METRIC[dataset],
        "test": {METRIC[dataset]: value, "bootstrap": {"replicates": replicates.tolist()}},
        "cell": REF | cell, "seed": seed, "model_size": "tiny", "transfer_from": source,
    }))  # fmt: skip
    return path


def test_tables_rows_statistics_and_formats(tmp_path):
    paths = [
        _metrics(tmp_path, "a0", "treesatai_ts", "finetune", 0.50, seed=0),
        _metrics(tmp_path, "a1", "treesatai_ts", "finetune", 0.60, seed=1),
        _metrics(tmp_path, "b0", "pastis_hd", "finetune", 0.25),
        _metrics(tmp_path, "c0", "treesatai_ts", "scratch", 0.40),
        _metrics(tmp_path, "d0", "treesatai_ts", "finetune", 0.70, length="2"),
        _metrics(tmp_path, "e0", "treesatai_ts", "finetune", 0.30, norm="none"),
        _metrics(tmp_path, "f0", "treesatai_ts", "finetune", 0.35, fusion="shared", inter="0"),
        _metrics(tmp_path, "g0", "treesatai_ts", "finetune", 0.45, source="s2_naip"),
    ]
    write_all(paths, REF, tmp_path / "out")
    md = (tmp_path / "out" / "table1.md").read_text()
    assert "| Model | Size | Fusion mode | TreeSatAI-TS (wF1) | PASTIS-HD (mIoU) |" in md
    row = next(
        line for line in md.splitlines() if line.startswith("| MAESTRO | Tiny | inter-group")
    )
    assert "55.0 ± 7.1 [" in row and "| 25.0 [" in row  # two seeds; one seed: no std
    assert "| MAESTRO† | Tiny | inter-group | 70.0 [" in md
    assert "| ViT (supervised) | Tiny | inter-group | 40.0 [" in md
    assert "shared" not in md.split("Published reference")[0]  # ablation cells are not Table 1
    assert "| MAESTRO | Base | inter-group | 78.8 | 68.6 |" in md  # the paper's numbers, labelled
    t2 = (tmp_path / "out" / "table2.md").read_text()
    assert (
        "| MAESTRO | Tiny | S2-NAIP urban | 45.0 [" in t2
        and "| MAESTRO | S2-NAIP urban | 78.8 |\n" in t2
    )
    norm = pd.read_csv(tmp_path / "out" / "ablation_norm.csv")
    floors = {"ViT (supervised)"}  # the reference architecture without pretraining
    assert set(norm["Variant"]) == {"patch-group-wise (spec groups) (reference)", "none"} | floors
    fusion = pd.read_csv(tmp_path / "out" / "ablation_fusion.csv")
    assert set(fusion["Variant"]) == {"inter-group (reference)", "shared"} | floors
    tex = (tmp_path / "out" / "table1.tex").read_text()
    assert r"\begin{tabular}{lllcc}" in tex and r"$\pm$" in tex and "MAESTRO$^\\dagger$" in tex
    t1 = pd.read_csv(tmp_path / "out" / "table1.csv")
    maestro = t1[(t1["Model"] == "MAESTRO") & (t1["dataset"] == "treesatai_ts")].iloc[0]
    assert (
        maestro["n_seeds"] == 2
        and maestro["seeds"] == "0 1"
        and maestro["ci_low"] < 50 < maestro["ci_high"]
    )


def test_hierarchical_interval_covers_seed_spread():
    narrow = [np.full(100, 50.0), np.full(100, 60.0)]
    lo, hi = hierarchical_ci(narrow)
    assert lo == pytest.approx(50.0) and hi == pytest.approx(60.0)
    assert np.isnan(hierarchical_ci([np.array([])])[0])


def test_rejects_files_that_are_not_downstream_metrics(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"dataset": "x", "phase": "pretrain"}))
    with pytest.raises(ValueError, match="not a downstream metrics file"):
        write_all([bad], REF, tmp_path / "out")
    assert not (tmp_path / "out" / "table1.md").exists()


def test_a_seed_twice_a_seed_without_replicates_or_a_nan_score_is_an_error(tmp_path):
    """One run is not two seeds; an interval over fewer seeds than the mean is not shown; a
    NaN score (a diverged or empty evaluation) is not averaged away."""
    a0 = _metrics(tmp_path, "a0", "treesatai_ts", "finetune", 0.50, seed=0)
    copy = tmp_path / "copy.json"
    copy.write_text(a0.read_text())
    with pytest.raises(ValueError, match=r"one metrics file per seed, found seed 0 in .*copy.json"):
        write_all([a0, copy], REF, tmp_path / "out")
    bare = _metrics(tmp_path, "a1", "treesatai_ts", "finetune", 0.60, seed=1)
    bare.write_text(bare.read_text().replace('"replicates": [', '"unused": ['))
    with pytest.raises(ValueError, match=r"bootstrap replicates in every seed's .*a1.json"):
        write_all([a0, bare], REF, tmp_path / "out")
    nan = _metrics(tmp_path, "a2", "treesatai_ts", "finetune", float("nan"), seed=2)
    with pytest.raises(ValueError, match=r"a2.json: expected a finite test weighted_f1"):
        write_all([a0, nan], REF, tmp_path / "out")
    assert not (tmp_path / "out" / "table1.md").exists()


def test_compute_table_from_benchmarks(tmp_path):
    res = tmp_path / "results"
    cell = "c"
    head = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rule, secs, device in (("pretrain", 3600.0, "cuda:0"), ("finetune", 1800.0, "cpu")):
        bench = res / "benchmarks" / rule / "pastis_hd" / cell / "seed~0.tsv"
        bench.parent.mkdir(parents=True)
        bench.write_text(head + f"{secs}\t-\t2048\t0\t0\t0\t0\t0\t1\t{secs * 2}\n")
        prov = res / rule / "pastis_hd" / cell / "seed~0" / "provenance.json"
        prov.parent.mkdir(parents=True)
        prov.write_text(json.dumps({"device": {"device": device, "world_size": 2}}))
    agg = write_compute_table(res, tmp_path / "compute")
    pre = agg[agg["rule"] == "pretrain"].iloc[0]
    assert pre["wall_h"] == pytest.approx(1.0) and pre["cpu_h"] == pytest.approx(2.0)
    assert pre["gpu_h"] == pytest.approx(2.0)  # 2 GPUs (DDP) for an hour
    assert agg[agg["rule"] == "finetune"].iloc[0]["gpu_h"] == 0  # a CPU job
    assert agg[agg["rule"] == "total"].iloc[0]["wall_h"] == pytest.approx(1.5)
    assert (
        "| pretrain | pastis_hd | 1 | 1.000 | 2.000 | 2.000 | 2.00 |"
        in (tmp_path / "compute.md").read_text()
    )
    # per cell: both jobs of cell "c" (1 h + 0.5 h wall, 2 GPU-hours)
    assert "| `c` | 2 | 1.500 | 3.000 | 2.000 |" in (tmp_path / "compute.md").read_text()


def test_minimal_run_writes_every_table(tmp_path):
    write_all([_metrics(tmp_path, "a", "pastis_hd", "finetune", 0.3)], REF, tmp_path / "out")
    assert "(no run)" in (tmp_path / "out" / "table2.md").read_text()
    for axis in ("norm", "spectral", "fusion", "dates"):
        table = pd.read_csv(tmp_path / "out" / f"ablation_{axis}.csv")
        assert len(table) == 1 and table["Variant"].iloc[0].endswith("(reference)")


def test_runs_from_a_released_checkpoint_get_their_own_table2_row(tmp_path):
    ours = _metrics(tmp_path, "o", "treesatai_ts", "finetune", 0.45, source="flair_hub")
    released = _metrics(tmp_path, "r", "treesatai_ts", "finetune", 0.62, source="flair_hub")
    released.write_text(
        json.dumps(json.loads(released.read_text()) | {"released": "maestro_flair_hub_base"})
    )
    write_all([ours, released], REF, tmp_path / "out")
    t2 = (tmp_path / "out" / "table2.md").read_text().split("Published reference")[0]
    assert "| MAESTRO | Tiny | flair_hub | 45.0 [" in t2
    assert "| MAESTRO (released checkpoint) | Tiny | flair_hub | 62.0 [" in t2


def test_reference_rows_join_table1_and_the_ablations(tmp_path):
    ref_row = {"cell": None, "seed": 0}

    def reference(name, mode, value):
        path = _metrics(tmp_path, name, "treesatai_ts", mode, value)
        body = json.loads(path.read_text()) | ref_row | {"strategy": "all"}
        path.write_text(json.dumps(body))
        return path

    paths = [
        _metrics(tmp_path, "a", "treesatai_ts", "finetune", 0.60),
        _metrics(tmp_path, "r", "treesatai_ts", "probe_random", 0.45),
        reference("t", "trivial", 0.40),
        reference("l", "linear", 0.55),
        _metrics(tmp_path, "d", "treesatai_ts", "finetune", 0.50, dates="1"),
    ]
    write_all(paths, REF | {"dates": "all"}, tmp_path / "out")
    t1 = pd.read_csv(tmp_path / "out" / "table1.csv")
    assert list(t1["Model"]) == [
        "MAESTRO", "Random-init encoder (probe)", "Linear model on raw inputs", "Trivial predictor",
    ]  # fmt: skip
    assert (t1.loc[t1["Model"] == "Trivial predictor", ["Size", "Fusion mode"]] == "–").all().all()
    dates = pd.read_csv(tmp_path / "out" / "ablation_dates.csv")
    assert list(dates["Variant"]) == [
        "every date (reference)", "1 date(s)", "Random-init encoder (probe)",
        "Linear model on raw inputs", "Trivial predictor",
    ]  # fmt: skip


def test_baseline_models_get_their_own_rows_in_table1(tmp_path):
    paths = [_metrics(tmp_path, "a0", "treesatai_ts", "finetune", 0.50)]
    for name, mode, value in (("d0", "finetune", 0.42), ("d1", "probe", 0.33)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({
            "dataset": "treesatai_ts", "title": TITLES["treesatai_ts"], "mode": mode,
            "metric": "weighted_f1", "test": {"weighted_f1": value}, "cell": None, "seed": 0,
            "row": "DINO-v2 (random init, demo)",
            "baseline": {"model": "dinov2", "size": "demo", "fusion": "shared"},
        }))  # fmt: skip
        paths.append(path)
    write_all(paths, REF, tmp_path / "out")
    lines = (tmp_path / "out" / "table1.md").read_text().split("Published reference")[0]
    rows = [ln for ln in lines.splitlines() if ln.startswith("| ")]
    names = [r.split(" | ")[0][2:] for r in rows[1:]]
    assert names == [
        "MAESTRO",
        "DINO-v2 (random init, demo)",
        "DINO-v2 (random init, demo) (probe)",
    ]
    assert "| DINO-v2 (random init, demo) | demo | shared | 42.0 |" in lines
    abl = (tmp_path / "out" / "ablation_norm.md").read_text()
    assert "DINO-v2" not in abl  # baselines are not MAESTRO cells
    # Table 2: the fine-tuned baseline beside the published rows, its pretraining data named
    t2 = (tmp_path / "out" / "table2.md").read_text().split("Published reference")[0]
    assert "| DINO-v2 (random init, demo) | demo | none (random init) | 42.0 |" in t2
    assert "(probe)" not in t2
