"""Table 1 aggregation from metrics files: rows, columns, seed statistics, paper reference."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from maestro.report.tables import write_table1

CELL = {
    "fusion": "group",
    "inter": "3",
    "spectral": "joint",
    "norm": "patchgroup",
    "groups": "spec",
}


def _metrics(tmp_path, name, dataset, mode, metric, values, seed):
    path = tmp_path / f"{name}.json"
    title = {"treesatai_ts": "TreeSatAI-TS", "pastis_hd": "PASTIS-HD"}[dataset]
    path.write_text(json.dumps({
        "dataset": dataset, "title": title,
        "mode": mode, "metric": metric, "test": {metric: values}, "cell": CELL, "seed": seed,
        "model_size": "tiny",
    }))  # fmt: skip
    return path


def test_table1_rows_columns_and_seed_statistics(tmp_path):
    paths = [
        _metrics(tmp_path, "a0", "treesatai_ts", "finetune", "weighted_f1", 0.50, 0),
        _metrics(tmp_path, "a1", "treesatai_ts", "finetune", "weighted_f1", 0.60, 1),
        _metrics(tmp_path, "b0", "pastis_hd", "finetune", "miou", 0.25, 0),
        _metrics(tmp_path, "c0", "treesatai_ts", "scratch", "weighted_f1", 0.40, 0),
    ]
    summary = write_table1(paths, tmp_path / "t.md", tmp_path / "t.csv")
    md = (tmp_path / "t.md").read_text()
    head = "| Model | Size | Fusion mode | Target norm | Spectral | Groups |"
    assert f"{head} TreeSatAI-TS (wF1) | PASTIS-HD (mIoU) |" in md
    assert "| MAESTRO | Tiny | inter-group | patch-group | joint | spec | 55.0 ± 7.1 | 25.0 |" in md
    assert "| ViT (supervised) | Tiny | inter-group | patch-group | joint | spec | 40.0 | – |" in md
    assert "| MAESTRO | Base | inter-group | 78.8 | 68.6 |" in md  # the paper's numbers, labelled
    csv = pd.read_csv(tmp_path / "t.csv")
    row = csv[(csv["model"] == "MAESTRO") & (csv["dataset"] == "treesatai_ts")].iloc[0]
    assert row["mean"] == pytest.approx(55.0) and row["count"] == 2 and row["seeds"] == "0 1"
    assert len(summary) == 3


def test_rejects_files_that_are_not_downstream_metrics(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text(json.dumps({"dataset": "x", "phase": "pretrain"}))
    with pytest.raises(ValueError, match="not a downstream metrics file"):
        write_table1([bad], tmp_path / "t.md", tmp_path / "t.csv")
    assert not (tmp_path / "t.md").exists()
