"""The per-class table of the reference cell."""

import json

import numpy as np

from maestro.report.per_class import per_class, write_per_class
from maestro.report.tables import load_metrics

REF = {"fusion": "group", "inter": "2", "dates": "all"}


def _metrics(tmp_path, name, mode, iou, seed=0, cell=REF, classes=("a", "b", "c")):
    path = tmp_path / f"{name}.json"
    m = {"dataset": "pastis_hd", "title": "PASTIS-HD", "mode": mode, "metric": "miou",
         "seed": seed, "cell": dict(cell) if cell else {}, "classes": list(classes),
         "test": {"miou": float(np.nanmean([np.nan if v is None else v for v in iou])),
                  "iou": iou}}  # fmt: skip
    path.write_text(json.dumps(m))
    return path


def test_per_class_means_over_seeds_and_keeps_floors(tmp_path):
    paths = [
        _metrics(tmp_path, "f0", "finetune", [0.5, 0.25, None], seed=0),
        _metrics(tmp_path, "f1", "finetune", [0.7, 0.35, None], seed=1),
        _metrics(tmp_path, "s0", "scratch", [0.4, 0.0, None]),
        _metrics(tmp_path, "t0", "trivial", [0.3, 0.0, None], cell=None),
        # another cell (an ablation) stays out of the reference table
        _metrics(tmp_path, "x0", "finetune", [0.9, 0.9, None], cell=REF | {"inter": "0"}),
    ]
    t = per_class(load_metrics(paths), REF)["pastis_hd"]
    assert list(t.columns) == ["MAESTRO", "ViT (supervised)", "Trivial predictor"]
    assert list(t.index) == ["a", "b", "c"]
    np.testing.assert_allclose(t["MAESTRO"].to_numpy()[:2], [60.0, 30.0])
    assert np.isnan(t.loc["c", "MAESTRO"])  # absent class: undefined, not 0
    write_per_class(load_metrics(paths), REF, tmp_path / "out" / "per_class")
    md = (tmp_path / "out" / "per_class.md").read_text()
    assert "## PASTIS-HD (IoU per class)" in md
    assert "| a | 60.0 | 40.0 | 30.0 |" in md and "| c | – | – | – |" in md
    assert (tmp_path / "out" / "per_class.html").is_file()
    csv = (tmp_path / "out" / "per_class.csv").read_text().splitlines()
    assert csv[0] == "dataset,class,row,value" and "pastis_hd,a,MAESTRO,60.0" in csv
