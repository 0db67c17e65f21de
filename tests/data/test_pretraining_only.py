"""Pretraining-only stores (S2-NAIP): no labels, a modality read from another's array,
inputs resized to ``image_size``, the 5 x 5 eval tiling of 120 m crops in 640 m tiles."""

from __future__ import annotations

import numpy as np
import pytest

from maestro.data.torch_dataset import MaestroDataset
from maestro.store.convert import convert
from maestro.store.zarr_store import Store
from tests.data.fakes import FakeReader, small_catalog, small_store


@pytest.fixture(scope="module")
def naip_store(tmp_path_factory):
    out = tmp_path_factory.mktemp("naip") / "s2_naip.zarr"
    convert(FakeReader(small_store("s2_naip"), 3, 1, 2, tlim=(2, 5)), out, shard_samples=4)
    return out


def test_store_holds_one_array_per_stored_modality_and_no_label(naip_store):
    store = Store(naip_store)
    assert sorted(store.group.group_keys()) == ["aerial", "s1", "s2"]  # "spot" reads "aerial"
    assert "label" not in store.group
    with pytest.raises(KeyError, match="no labels"):
        store.label(0)


def test_items_resize_and_share_the_aerial_pixels(naip_store):
    spec = small_catalog().dataset("s2_naip")
    ds = MaestroDataset(naip_store, spec, spec.pretrain_splits, train=False)
    assert len(ds) == 6 * 25  # train + val + test tiles, 5 x 5 crops each
    item = ds[0]
    assert "label" not in item
    aerial, spot = item["inputs"]["aerial"], item["inputs"]["spot"]
    assert aerial.shape == (1, 4, 48, 48) and spot.shape == (1, 3, 16, 16)
    # both come from the same 12 x 12 px crop of the NAIP array: aerial x4, spot x4/3 (nearest)
    crop = Store(naip_store).read(0, "aerial")[0][0, :, :12, :12].astype(np.float32) / 255
    np.testing.assert_allclose(aerial[0, 0, ::4, ::4], crop[3], rtol=1e-6)  # NIR first
    np.testing.assert_allclose(aerial[0, 1:, ::4, ::4], crop[:3], rtol=1e-6)  # then R, G, B
    for c in range(3):  # nearest up-sampling keeps exactly the crop's values, all of them
        np.testing.assert_array_equal(np.unique(spot[0, c]), np.unique(crop[c].astype(np.float32)))


def test_eval_offsets_follow_the_upstream_formula(naip_store):
    spec = small_catalog().dataset("s2_naip")
    ds = MaestroDataset(naip_store, spec, ("train",), train=False)
    gcd = spec.store.gcd_px
    offsets = {ds.offsets(k, np.random.default_rng(0)) for k in range(len(ds))}
    expected = {(a * gcd // 5, b * gcd // 5) for a in range(5) for b in range(5)}
    assert offsets == expected
