"""Dataset declarations: derived values, consistency, overrides and their errors."""

import pytest

from maestro.datasets import catalog
from maestro.datasets.spec import store_from_dict, to_dict


def test_paper_geometry():
    cat = catalog()
    tsai, pastis, flair = (cat.dataset(n) for n in ("treesatai_ts", "pastis_hd", "flair_hub"))
    assert tsai.store.modality("aerial").grid(60) == 15 and tsai.store.repeats == 1
    assert pastis.store.repeats == 8 and pastis.store.modality("s2").grid(160) == 8
    assert flair.store.modality("aerial").grid(102.4) == 32
    assert flair.store.modality("s2").pixels(102.4) == 10
    # tokens per sample under the official IGNF/MAESTRO dataset configs (all tokens, no masking)
    assert sum(m.grid(tsai.store.crop_m) ** 2 * m.num_dates for m in tsai.modalities) == 441
    assert sum(m.grid(pastis.store.crop_m) ** 2 * m.num_dates for m in pastis.modalities) == 1636


def test_band_orders_and_groups():
    cat = catalog()
    for name in ("treesatai_ts", "flair_hub"):
        assert cat.store(name).modality("aerial").model_bands == ("NIR", "R", "G", "B")
    aerial = cat.store("treesatai_ts").modality("aerial")
    assert aerial.bands == ("NIR", "G", "B", "R") and aerial.model_band_index == (0, 3, 1, 2)
    s2 = cat.store("pastis_hd").modality("s2")
    assert s2.norm_group_index == ((0, 1, 2, 3), (4, 5, 6, 7), (8, 9))
    s1 = cat.store("pastis_hd").modality("s1_asc")
    assert s1.model_bands == ("VV", "VH") and s1.group == "s1"
    assert cat.dataset("flair2").inputs == ("aerial", "dem", "s2")


def test_flair2_ignores_more_classes():
    cat = catalog()
    hub, f2 = cat.dataset("flair_hub").task, cat.dataset("flair2").task
    assert hub.num_classes == f2.num_classes == 15
    assert [v for v in hub.label_map if v >= 0] == list(range(15))
    assert {i for i, v in enumerate(f2.label_map) if v < 0} == {1, 2, 7, 15, 16, 17, 18}
    assert cat.dataset("pastis_hd").task.label_map[19] == -1


def test_overrides_apply_and_round_trip():
    cat = catalog({"pastis_hd": {"tile_m": 320, "modalities": {"s2": {"num_dates": 6}}}})
    store = cat.store("pastis_hd")
    assert store.repeats == 2 and store.modality("s2").num_dates == 6
    assert cat.dataset("pastis_hd").store is store
    assert store_from_dict(to_dict(store)) == store


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pastis_hd": {"tile_m": 300}}, "not a whole number of 160.0 m crops"),
        ({"pastis_hd": {"colour": 1}}, "cannot override \\['colour'\\]"),
        ({"pastis_hd": {"modalities": {"s3": {}}}}, "unknown modalities \\['s3'\\]"),
        ({"pastis_hd": {"modalities": {"s2": {"bands": 3}}}}, "cannot override \\['bands'\\]"),
        ({"treesatai_ts": {"modalities": {"aerial": {"patch_size": 7}}}}, "not divisible by patch"),
        ({"sen12": {}}, "unknown stores"),
        # each crop would carry the whole tile's fractions (and count as an independent item)
        ({"treesatai_ts": {"crop_m": 20}}, "area fractions of the whole 60.0 m tile"),
    ],
)
def test_bad_overrides_are_explained(overrides, message):
    with pytest.raises(ValueError, match=message):
        catalog(overrides)


def test_legend_colours_of_the_segmentation_datasets():
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_hex

    from maestro.datasets import catalog
    from maestro.datasets.spec import TaskSpec

    cat = catalog()
    pastis = cat.dataset("pastis_hd").task
    tab20 = [to_hex(c) for c in plt.get_cmap("tab20").colors]
    assert pastis.colours == ("#000000", *tab20[1:19])  # background black, class k = tab20[k]
    for name in ("flair_hub", "flair2"):
        task = cat.dataset(name).task
        assert len(task.colours) == task.num_classes == len(set(task.colours))
        assert task.colours[task.classes.index("building")] == "#db0e9a"
        assert task.colours[task.classes.index("water")] == "#1553ae"
    with pytest.raises(ValueError, match="one '#rrggbb' per class"):
        TaskSpec(kind="segmentation", classes=("a", "b"), metric="miou", colours=("#000000",))
