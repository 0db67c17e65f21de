"""The baselines sheet and the baseline runs it puts in the plan."""

from pathlib import Path

import pytest

from maestro.baselines.sheet import read_baselines
from maestro.grid import make_plan
from maestro.jobs import load_config

REPO = Path(__file__).resolve().parents[2]
HEADER = "model\tsize\tfusion\tweights\tgrid\thead\tdatasets\tseeds\n"


def test_shipped_sheets_and_the_plan():
    demo = read_baselines(REPO / "config/baselines.tsv", ["treesatai_ts", "pastis_hd"])
    assert [b.id for b in demo] == [
        "model~dinov2_size~demo_fusion~shared_weights~random",
        "model~dofa_size~demo_fusion~shared_weights~random",
    ]
    assert demo[0].spec(None, "batch") == {
        "model": "dinov2", "size": "demo", "fusion": "shared", "weights": None, "grid": None,
        "head": "concat", "head_norm": "batch",
    }  # fmt: skip
    names = ["dinov2_base", "dinov2_sat_large", "dofa_base", "satmae_temporal_base",
             "prithvi_eo_v2_300_tl", "croma_base"]  # fmt: skip
    paper = read_baselines(REPO / "config/baselines_paper.tsv", ["treesatai_ts"], names)
    assert [b.values["weights"] for b in paper] == names
    assert [b.values["fusion"] for b in paper] == [
        "shared",
        "shared",
        "shared",
        "mod",
        "mod",
        "inter",
    ]
    cfg = load_config([REPO / "config/config.yaml"])
    cfg |= {"variants": str(REPO / "config/variants.tsv"),
            "baselines": str(REPO / "config/baselines.tsv")}  # fmt: skip
    runs = make_plan(cfg).baseline_runs()
    assert len(runs) == 2 * 4 * 2  # two rows, four datasets, probe and fine-tune, seed 0
    assert (
        "results/baseline/probe/pastis_hd/model~dofa_size~demo_fusion~shared_weights~random/seed~0/metrics.json"
        in runs
    )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("vit\tdemo\tshared\trandom\tauto\tconcat\tall\t0", "model 'vit' is not one of"),
        ("dinov2\tdemo\tlate\trandom\tauto\tconcat\tall\t0", "fusion 'late'"),
        ("dinov2\tdemo\tshared\tdinov2_giant\tauto\tconcat\tall\t0", "weights 'dinov2_giant'"),
        ("dinov2\tdemo\tshared\trandom\t0\tconcat\tall\t0", "grid '0'"),
        ("dinov2\tdemo\tshared\trandom\tauto\tconcat\tnowhere\t0", "datasets ['nowhere']"),
        ("dinov2\tdemo\tshared\trandom\tauto\tconcat\tall\tfirst", "seeds must be"),
        ("dinov2\tdemo\tshared\trandom\tauto\tconcat\tall\t1+1", "seeds must differ"),
        ("dinov2\tdemo\tshared\trandom\tauto\tconcat\tall", "every column needs a value"),
    ],
)
def test_bad_rows_name_the_line(tmp_path, row, message):
    sheet = tmp_path / "b.tsv"
    sheet.write_text("# comment\n" + HEADER + row + "\n")
    with pytest.raises(ValueError, match=r"b\.tsv, line 3") as err:
        read_baselines(sheet, ["treesatai_ts"], ["dinov2_base"])
    assert message in str(err.value)


def test_declared_sizes_and_fusions_are_those_of_the_backbones():
    from maestro.baselines import croma, dinov2, dinov2_sat, dofa, prithvi, satmae
    from maestro.baselines.spec import FUSIONS, MODELS, SIZES

    modules = {"dinov2": dinov2, "dinov2_sat": dinov2_sat, "dofa": dofa, "satmae": satmae,
               "prithvi": prithvi, "croma": croma}  # fmt: skip
    assert set(MODELS) == set(modules)
    for name, module in modules.items():
        assert set(SIZES[name]) == set(module.SIZES), name
        assert set(FUSIONS[name]) == set(module.FUSIONS), name
