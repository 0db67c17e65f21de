"""The experiment plan: sheet validation, targets per cell and dataset, transfer pairs."""

from __future__ import annotations

import re

import pytest

from maestro.grid import cell_id, make_plan, parse_cell_id, read_sheet
from maestro.jobs import merge_overrides

HEADER = "fusion\tinter\tspectral\tnorm\tgroups\tsize\tlength\tscratch\tdatasets\n"
DATASETS = ["treesatai_ts", "pastis_hd"]
S1_SHARED = {"modalities": {"s1_asc": {"embed_key": "s1"}}}


def _sheet(tmp_path, *rows):
    path = tmp_path / "v.tsv"
    path.write_text("# a comment\n" + HEADER + "".join(r + "\n" for r in rows))
    return path


def test_cells_ids_and_scheduling(tmp_path):
    path = _sheet(
        tmp_path,
        "group\t3\tjoint\tpatchgroup\tspec\ttiny\t1\tyes\tall",
        "mod\t0\ttoken\tnone\tspec\tbase\t2\tno\tpastis_hd",
    )
    ref, other = read_sheet(path, DATASETS)
    assert ref.id == (
        "fusion~group_inter~3_spectral~joint_norm~patchgroup_groups~spec_size~tiny_length~1"
        "_dates~all"
    )
    assert parse_cell_id(ref.id) == ref.values and cell_id(ref.values) == ref.id
    assert ref.datasets == tuple(DATASETS) and ref.scratch
    assert other.datasets == ("pastis_hd",) and not other.scratch


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "group\t3\tjoint\tpatchgroup\tspec\ttiny\t1\tmaybe\tall",
            "line 3: scratch must be yes or no",
        ),
        ("group\t3\tjoint\tbatch\tspec\ttiny\t1\tno\tall", "line 3: ablation cell: norm='batch'"),
        ("group\t3\tjoint\tpatchgroup\tspec\ttiny\t1\tno\tsen12ms", "line 3: datasets ['sen12ms']"),
        ("group\t3\tjoint\tpatchgroup\tspec\ttiny\t1\tno", "line 3: missing columns ['datasets']"),
    ],
)
def test_bad_rows_name_the_line(tmp_path, row, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_sheet(_sheet(tmp_path, row), DATASETS)


def test_duplicates_and_empty_sheets_are_rejected(tmp_path):
    row = "group\t3\tjoint\tpatchgroup\tspec\ttiny\t1\tno\tall"
    with pytest.raises(ValueError, match="duplicate cell"):
        read_sheet(_sheet(tmp_path, row, row), DATASETS)
    with pytest.raises(ValueError, match="no row"):
        read_sheet(_sheet(tmp_path), DATASETS)


def test_plan_targets(tmp_path):
    path = _sheet(
        tmp_path,
        "group\t3\tjoint\tpatchgroup\tspec\ttiny\t1\tyes\tall",
        "group\t3\tjoint\tnone\tspec\ttiny\t1\tno\ttreesatai_ts",
    )
    config = {
        "datasets": DATASETS, "seeds": [0, 1], "variants": str(path),
        "probe": {"epochs": 2, "by_dataset": {"pastis_hd": {"epochs": 0}}},
        "transfer": [{"source": "s2_naip", "targets": {"treesatai_ts": S1_SHARED}}],
    }  # fmt: skip
    plan = make_plan(config)
    ref = plan.reference.id
    assert plan.pretrain_datasets == ["treesatai_ts", "pastis_hd", "s2_naip"]
    pre = plan.pretrain()
    assert len(pre) == (2 + 1 + 1) * 2  # reference on 2 datasets + ablation + transfer source
    assert f"results/pretrain/s2_naip/{ref}/seed~1/model.pt" in pre
    down = plan.downstream()
    assert f"results/probe/treesatai_ts/{ref}/seed~0/metrics.json" in down
    assert not any(p.startswith("results/probe/pastis_hd") for p in down)  # probe disabled there
    assert sum(p.startswith("results/scratch/") for p in down) == 2 * 2  # reference only
    assert sum(p.startswith("results/probe_random/") for p in down) == 2 * 2  # as scratch
    assert plan.references() == [
        f"results/reference/{d}/{k}/metrics.json" for d in DATASETS for k in ("trivial", "linear")
    ]
    assert plan.transfer() == [
        f"results/transfer/{st}/treesatai_ts/from~s2_naip/{ref}/seed~{s}/metrics.json"
        for st in ("finetune", "probe")
        for s in (0, 1)
    ]
    assert (
        plan.transfer_overrides("s2_naip", "treesatai_ts")["modalities"]["s1_asc"]["embed_key"]
        == "s1"
    )


def test_a_released_checkpoint_replaces_the_source_pretraining(tmp_path):
    path = _sheet(tmp_path, "group\t3\tjoint\tpatchgroup\tspec\ttiny\t1\tyes\tall")
    config = {
        "datasets": DATASETS, "seeds": [0], "variants": str(path),
        "weights": {"maestro_flair": {"kind": "path", "root": "/models/maestro"}},
        "transfer": [
            {"source": "flair_hub", "targets": {"treesatai_ts": {}}},
            {"source": "flair_hub", "weights": "maestro_flair",
             "targets": {"treesatai_ts": S1_SHARED}},
        ],
    }  # fmt: skip
    plan = make_plan(config)
    ref = plan.reference.id
    assert plan.released() == {"maestro_flair": "flair_hub"}
    # our pretraining of the source once (for the first pair), none for the released one
    assert [p for p in plan.pretrain() if "flair_hub" in p] == [
        f"results/pretrain/flair_hub/{ref}/seed~0/model.pt"
    ]
    runs = plan.transfer()
    assert (
        f"results/transfer/finetune/treesatai_ts/from~flair_hub/{ref}/seed~0/metrics.json" in runs
    )
    released = "results/transfer/finetune/treesatai_ts/from~flair_hub/released~maestro_flair"
    assert f"{released}/seed~0/metrics.json" in runs
    assert plan.cell("released~maestro_flair") is plan.reference  # its downstream settings
    assert plan.transfer_overrides("flair_hub", "treesatai_ts", ref) == {}
    assert plan.transfer_overrides("flair_hub", "treesatai_ts", "released~maestro_flair") == (
        S1_SHARED
    )
    config["transfer"][1]["weights"] = "nope"
    with pytest.raises(ValueError, match="weights 'nope' is not in the weights section"):
        make_plan(config)


def test_merge_overrides_keeps_both_sides():
    base = {"tile_m": 320, "modalities": {"s2": {"num_dates": 6}, "s1_asc": {"num_dates": 2}}}
    extra = {"modalities": {"s1_asc": {"embed_key": "s1"}, "aerial": {"image_size": 240}}}
    assert merge_overrides(base, extra) == {
        "tile_m": 320,
        "modalities": {
            "s2": {"num_dates": 6},
            "s1_asc": {"num_dates": 2, "embed_key": "s1"},
            "aerial": {"image_size": 240},
        },
    }


def test_dates_and_seeds_columns(tmp_path):
    path = tmp_path / "v.tsv"
    path.write_text(
        HEADER.rstrip("\n") + "\tdates\tseeds\n"
        "group\t3\tjoint\tpatchgroup\tspec\ttiny\t1\tyes\tall\tall\tall\n"
        "group\t3\tjoint\tpatchgroup\tspec\ttiny\t1\tno\ttreesatai_ts\t1\t0\n"
    )
    ref, single = read_sheet(path, DATASETS)
    assert ref.values["dates"] == "all" and single.values["dates"] == "1"
    assert ref.seeds is None and single.seeds == (0,)
    assert single.id.endswith("_length~1_dates~1")
    plan = make_plan({"datasets": DATASETS, "seeds": [0, 1, 2], "variants": str(path),
                      "transfer": [{"source": "s2_naip", "seeds": [0],
                                    "targets": {"treesatai_ts": {}}}]})  # fmt: skip
    pre = plan.pretrain()
    assert sum(single.id in p for p in pre) == 1  # one seed
    assert sum(ref.id in p and "/treesatai_ts/" in p for p in pre) == 3  # every seed
    assert [p for p in pre if "/s2_naip/" in p] == [
        f"results/pretrain/s2_naip/{ref.id}/seed~0/model.pt"
    ]


@pytest.mark.parametrize(
    ("extra_header", "row", "message"),
    [
        ("\tdates", "\t0", "dates='0' is neither 'all' nor a count > 0"),
        ("\tseeds", "\tfirst", "seeds must be 'all' or +-joined seeds"),
        ("\tseeds", "\t0+0", "seeds must differ, found '0+0'"),  # one run as two seeds
        ("\tcolour", "\tred", "unknown columns ['colour']"),
        ("", "\textra", "more fields than the header's 9"),
    ],
)
def test_bad_dates_seeds_and_fields(tmp_path, extra_header, row, message):
    path = tmp_path / "v.tsv"
    path.write_text(
        HEADER.rstrip("\n")
        + extra_header
        + "\n"
        + "group\t3\tjoint\tpatchgroup\tspec\ttiny\t1\tno\tall"
        + row
        + "\n"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        read_sheet(path, DATASETS)


def test_inter_not_below_the_depth_names_the_line(tmp_path):
    sheet = _sheet(tmp_path, "group\t2\tjoint\tpatchgroup\tspec\ttiny\t1\tno\tall",
                   "group\t4\tjoint\tpatchgroup\tspec\ttiny\t1\tno\tall")  # fmt: skip
    assert len(read_sheet(sheet, DATASETS)) == 2  # without a model: not checked
    with pytest.raises(ValueError, match=r"v.tsv, line 4: inter_depth must be in \[0, depth\)"):
        read_sheet(sheet, DATASETS, {"size": "tiny", "depth": 4})


def test_a_cell_whose_groups_change_nothing_is_refused(tmp_path):
    """norm=none with groups=analysis is the groups=spec run under another id."""
    sheet = _sheet(tmp_path, "group\t3\tjoint\tnone\tanalysis\ttiny\t1\tno\tall")
    with pytest.raises(ValueError, match=r"line 3: .*groups=analysis has no effect with norm=none"):
        read_sheet(sheet, DATASETS)
    assert read_sheet(_sheet(tmp_path, "group\t3\ttoken\tnone\tanalysis\ttiny\t1\tno\tall"),
                      DATASETS)  # fmt: skip


def test_dates_counts_are_canonical(tmp_path):
    """``dates`` 01 and 1 are one run: the second row is a duplicate cell, not a new one."""
    path = tmp_path / "v.tsv"
    row = "group\t3\tjoint\tpatchgroup\tspec\ttiny\t1\tno\tall\t"
    path.write_text(HEADER.rstrip("\n") + "\tdates\n" + row + "1\n" + row + "01\n")
    with pytest.raises(ValueError, match=r"v.tsv, line 3: duplicate cell .*dates~1$"):
        read_sheet(path, DATASETS)
