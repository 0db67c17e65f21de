"""The signal check: paired margins from metrics files, verdicts, the strict CLI exit code."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maestro.cli import main
from maestro.grid import make_plan
from maestro.report.signal import Run, load_run, paired_margin, run_margins
from maestro.train.metrics import bootstrap

DATASETS = ["treesatai_ts"]
HEADER = "fusion\tinter\tspectral\tnorm\tgroups\tsize\tlength\tdates\tscratch\tdatasets\tseeds\n"


def _items(rng: np.random.Generator, accuracy: float, n: int = 200) -> np.ndarray:
    """Per-item (TP, FP, FN) counts of one label: a model right with ``accuracy``."""
    right = rng.random(n) < accuracy
    return np.stack([right, ~right & (rng.random(n) < 0.5), ~right], 1).astype(np.float64)


def _metrics(path, accuracy, seed=0, mode="finetune", floor=False, items_seed=1):
    """A metrics.json whose replicates come from the shared bootstrap draws."""
    items = _items(np.random.default_rng(items_seed + 100 * seed), accuracy)
    reps = bootstrap(items, lambda c: 2 * c[:, 0] / (2 * c[:, 0] + c[:, 1] + c[:, 2]), n=200)
    tp, fp, fn = items.sum(0)
    test = {
        "weighted_f1": float(2 * tp / (2 * tp + fp + fn)),
        "items": len(items),
        "bootstrap": {"replicates": reps.tolist()},
    }
    body = {"dataset": "treesatai_ts", "mode": mode, "metric": "weighted_f1", "test": test}
    if floor:
        body["floor"] = {"strategy": "all", "test": test}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body))
    return path


def test_paired_margin_is_tighter_than_separate_intervals(tmp_path):
    a = load_run([_metrics(tmp_path / "a.json", 0.8)], "a")
    b = load_run([_metrics(tmp_path / "b.json", 0.8, items_seed=1)], "b")
    same = paired_margin(a, b)
    assert same == (0.0, 0.0, 0.0)  # identical predictions: the difference is exactly 0
    better = load_run([_metrics(tmp_path / "c.json", 0.9)], "c")
    value, lo, hi = paired_margin(better, a)
    assert lo < value < hi
    with pytest.raises(ValueError, match="items"):
        paired_margin(a, Run("x", [1.0], [np.zeros(10)], 7, []))


def _run_folder(tmp_path, accuracies: dict[str, float]):
    sheet = tmp_path / "v.tsv"
    sheet.write_text(
        HEADER
        + "group\t2\tjoint\tpatchgroup\tspec\ttiny\t1\tall\tyes\tall\tall\n"
        + "group\t2\tjoint\tpatchgroup\tspec\ttiny\t1\t1\tno\ttreesatai_ts\t0\n"
    )
    plan = make_plan({"datasets": DATASETS, "seeds": [0, 1], "variants": str(sheet)})
    ref, single = plan.cells
    res = tmp_path / "results"
    for stage in ("probe", "probe_random", "finetune", "scratch"):
        for s in (0, 1):
            path = res / stage / "treesatai_ts" / ref.id / f"seed~{s}" / "metrics.json"
            _metrics(path, accuracies[stage], seed=s)
    _metrics(
        res / "finetune/treesatai_ts" / single.id / "seed~0/metrics.json", accuracies["single"]
    )
    for kind in ("trivial", "linear"):
        _metrics(res / "reference/treesatai_ts" / kind / "metrics.json", accuracies[kind],
                 floor=kind == "trivial")  # fmt: skip
    return plan, res, sheet


GOOD = {"probe": 0.85, "probe_random": 0.7, "finetune": 0.9, "scratch": 0.75, "single": 0.8,
        "trivial": 0.6, "linear": 0.88}  # fmt: skip


def test_margins_of_a_run_that_shows_the_method(tmp_path):
    plan, res, _ = _run_folder(tmp_path, GOOD)
    margins = {m.name: m for m in run_margins(res, plan)}
    assert all(m.ok for m in margins.values())
    assert margins["pretrained probe > random-init probe"].low > 0
    assert "every date > 1 date(s), fine-tuned" in margins
    assert margins["linear raw model - MAESTRO fine-tuned (gap)"].required == "info"


def test_a_missing_margin_fails_the_strict_check(tmp_path, capsys):
    plan, res, sheet = _run_folder(tmp_path, GOOD | {"probe": 0.7})  # probe = random-init
    margins = {m.name: m for m in run_margins(res, plan)}
    assert not margins["pretrained probe > random-init probe"].ok
    config = tmp_path / "c.yaml"
    stores = ("treesatai_ts", "pastis_hd", "flair_hub")
    sources = {s: {"kind": "path", "root": "/raw"} for s in stores}
    config.write_text(
        f"datasets: {DATASETS}\nseeds: [0, 1]\nvariants: {sheet}\nsources: {json.dumps(sources)}\n"
    )
    args = ["check-signal", "--config", str(config), "--results", str(res)]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--out", str(tmp_path / "signal")])
    assert exc.value.code == 1
    assert "MISSING" in capsys.readouterr().out
    report = json.loads((tmp_path / "signal.json").read_text())
    assert report["ok"] is False and len(report["margins"]) == len(margins)
    assert main([*args, "--no-fail"]) == 0


def test_missing_run_names_the_file(tmp_path):
    plan, res, _ = _run_folder(tmp_path, GOOD)
    victim = next((res / "scratch").rglob("metrics.json"))
    victim.unlink()
    with pytest.raises(FileNotFoundError, match="scratch"):
        run_margins(res, plan)
