"""Band-group analysis: the clustering itself, and recovery of the planted demo groups."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maestro.analysis.band_groups import (
    CorrelationAccumulator,
    analyze_store,
    cluster_bands,
    same_partition,
)
from maestro.data.demo import DemoConfig, generate
from maestro.data.demo.world import planted_groups
from maestro.data.readers import get_reader
from maestro.datasets import catalog
from maestro.store.convert import convert

#: The demo geometry of config/config.yaml, with fewer tiles.
DEMO = {
    "pastis_hd": {"tile_m": 320},
    "flair_hub": {"modalities": {"aerial": {"resolution_m": 0.8}, "dem": {"resolution_m": 0.8}}},
}
ACQ = {"s2": 24, "s1_asc": 12, "s1_des": 12}


def test_accumulator_matches_numpy_and_skips_nonfinite():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4)) @ rng.normal(size=(4, 4))
    acc = CorrelationAccumulator(4)
    for part in np.array_split(x, 7):
        acc.update(part)
    bad = np.full((3, 4), np.nan)
    bad[:, 0] = 1.0
    acc.update(bad)  # rows with a NaN are skipped entirely
    np.testing.assert_allclose(acc.correlation(), np.corrcoef(x.T), atol=1e-10)
    assert acc.n == 500


def test_cluster_bands_cuts_at_threshold():
    bands = ["a", "b", "c", "d"]
    corr = np.array(
        [[1, 0.95, 0.1, 0.2], [0.95, 1, 0.15, 0.1], [0.1, 0.15, 1, -0.9], [0.2, 0.1, -0.9, 1]]
    )
    assert cluster_bands(corr, bands, 0.15) == [["a", "b"], ["c", "d"]]  # |r| counts, not r
    assert cluster_bands(corr, bands, 0.05) == [["a"], ["b"], ["c"], ["d"]]
    assert len(cluster_bands(corr, bands, 0.99)) == 1
    assert same_partition([["b", "a"], ["c"]], [["c"], ["a", "b"]])


@pytest.mark.parametrize(
    ("store", "cfg"),
    [
        ("treesatai_ts", DemoConfig(n_train=10, n_val=2, n_test=2, parcels=6, acquisitions=ACQ)),
        ("pastis_hd", DemoConfig(4, 1, 1, ACQ, cloudy_fraction=0.1, parcels=8)),  # as the demo
        ("flair_hub", DemoConfig(n_train=10, n_val=2, n_test=2, parcels=10, acquisitions=ACQ)),
    ],
)
def test_recovers_planted_groups_on_demo(tmp_path, store, cfg):
    spec = catalog(DEMO).store(store)
    generate(spec, tmp_path / "raw", cfg)
    convert(get_reader(spec, tmp_path / "raw"), tmp_path / "store.zarr", shard_samples=8)
    result = analyze_store(tmp_path / "store.zarr", tmp_path / "groups.json", tmp_path / "c.png")
    assert json.loads((tmp_path / "groups.json").read_text()) == result
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    family = {"s2": "s2", "s1_asc": "s1", "s1_des": "s1", "aerial": "aerial", "spot": "spot"}
    for name, res in result["modalities"].items():
        if name not in family:
            continue  # the DEM's second channel is a derived height (docs/decisions.md W1)
        planted = [[b for b in g if b in res["bands"]] for g in planted_groups(family[name])]
        assert same_partition(res["groups"], [g for g in planted if g]), name
        assert res["matches_spec"], name
        assert res["pixels"] > 0


def test_a_modality_without_valid_pixels_is_named(tmp_path):
    from tests.data.fakes import FakeReader, small_store

    class AllCloudy(FakeReader):
        def make(self, k, ref):
            s = super().make(k, ref)
            s.invalid["s2"] = np.ones_like(s.invalid["s2"], dtype=bool)
            return s

    convert(AllCloudy(small_store("treesatai_ts"), 3, 1, 1), tmp_path / "s.zarr", 2)
    with pytest.raises(ValueError) as err:
        analyze_store(tmp_path / "s.zarr", tmp_path / "g.json", tmp_path / "c.png")
    msg = str(err.value)
    assert "s.zarr" in msg and "modality 's2'" in msg and "found 0" in msg
    assert "masked invalid (clouds)" in msg and not (tmp_path / "g.json").exists()
