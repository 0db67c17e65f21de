"""From job configurations to model and phase objects."""

import pytest

from maestro.experiment import check_cell, fusion_label, job_catalog, job_phase, model_config

CELL = {
    "fusion": "group", "inter": "3", "spectral": "joint", "norm": "patchgroup", "groups": "spec",
    "size": "small", "length": "1",
}  # fmt: skip


def test_cell_sets_the_variant_fields():
    cfg = model_config({"model": {"size": "base", "depth": 8}, "cell": CELL})  # the cell's size
    assert (cfg.embed_dim, cfg.depth, cfg.inter_depth) == (384, 8, 3)
    assert cfg.fusion == "group" and cfg.target_norm == "patch_group" and cfg.spectral == "joint"
    assert fusion_label(CELL) == "inter-group"
    assert fusion_label(CELL | {"inter": "0"}) == "group"


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (CELL | {"norm": "batch"}, "norm='batch' is not one of"),
        ({k: v for k, v in CELL.items() if k != "groups"}, "lacks columns \\['groups'\\]"),
        (CELL | {"length": "3"}, "length='3' is not one of"),
        (CELL | {"inter": "x"}, "inter='x' is not a whole number"),
        (CELL | {"fusion": "shared"}, "inter_depth=3 needs fusion"),
    ],
)
def test_bad_cells(cell, message):
    with pytest.raises(ValueError, match=message):
        check_cell(cell)
        model_config({"cell": cell})


def test_unknown_model_setting():
    with pytest.raises(TypeError, match="unknown model settings \\['widht'\\]"):
        model_config({"model": {"widht": 3}})


def test_length_multiplies_pretraining_epochs():
    job = {"phase": {"epochs": 5}, "cell": CELL | {"length": "2"}}
    assert job_phase("pretrain", job).epochs == 10
    assert job_phase("finetune", job).epochs == 5


def test_catalog_and_phase_from_job():
    job = {"overrides": {"pastis_hd": {"tile_m": 320}}, "phase": {"epochs": 2}}
    assert job_catalog(job).store("pastis_hd").repeats == 2
    phase = job_phase("finetune", job)
    assert phase.epochs == 2 and phase.final_factor == 2.0 and phase.ema
