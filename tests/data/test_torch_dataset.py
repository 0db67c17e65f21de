"""MaestroDataset: item contract, crops, eval tiling, augmentation, seeding, spec checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from maestro.data.temporal import select_dates
from maestro.data.torch_dataset import MaestroDataset
from maestro.data.transforms import prepare
from maestro.datasets import catalog
from maestro.store.convert import convert
from maestro.store.zarr_store import Store
from tests.data.fakes import SMALL, FakeReader, small_catalog, small_store


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("stores")
    out = {}
    for name in ("treesatai_ts", "pastis_hd", "flair_hub"):
        out[name] = root / f"{name}.zarr"
        convert(FakeReader(small_store(name), 5, 2, 2, tlim=(1, 8)), out[name], shard_samples=4)
    return out


def _ds(stores: dict[str, Path], name: str, **kw) -> MaestroDataset:
    spec = small_catalog().dataset(name)
    store = stores[spec.store.name]
    kw.setdefault("splits", ["train"])
    kw.setdefault("train", True)
    return MaestroDataset(store, spec, **kw)


def test_classification_item(stores) -> None:
    for train in (True, False):
        ds = _ds(stores, "treesatai_ts", splits=["train", "val"], train=train)
        assert len(ds) == 7  # repeats = 1
        item = ds[3]
        shapes = {k: tuple(v.shape) for k, v in item["inputs"].items()}
        assert shapes == {
            "aerial": (1, 4, 30, 30),
            "s2": (3, 10, 6, 6),
            "s1_asc": (2, 2, 6, 6),
            "s1_des": (2, 2, 6, 6),
        }
        assert all(v.dtype == torch.float32 for v in item["inputs"].values())
        assert {k: tuple(v.shape) for k, v in item["dates"].items()} == {
            k: (s[0], 3) for k, s in shapes.items()
        }
        assert all(v.dtype == torch.int64 for v in item["dates"].values())
        assert item["ref_date"].dtype == torch.int64 and item["ref_date"].shape == (3,)
        assert item["index"].dtype == torch.int64 and item["index"].item() == 3
        tile = int(item["tile"])
        frac = Store(ds.store_path).label(tile)
        assert item["label"].dtype == torch.float32
        np.testing.assert_array_equal(item["label"].numpy(), (frac > 0.07).astype(np.float32))
        assert 0 < item["label"].sum() < 15


def test_segmentation_item_and_label_map(stores) -> None:
    ds = _ds(stores, "pastis_hd", splits=["test"], train=False)
    assert len(ds) == 2 * 4  # 2 tiles x 2 x 2 crops
    item = ds[5]
    assert item["inputs"]["spot"].shape == (1, 3, 32, 32)
    assert item["inputs"]["s2"].shape == (3, 10, 16, 16)
    assert item["inputs"]["s1_asc"].shape == (2, 2, 16, 16)  # VV, VH of the 3 file bands
    label = item["label"]
    assert label.dtype == torch.int64 and label.shape == (16, 16)
    assert label.min() >= -1 and label.max() <= 18
    raw = Store(ds.store_path).label(int(item["tile"]))
    assert (raw == 19).any()
    assert int((label == -1).sum()) > 0


def test_eval_tiling_covers_each_tile_once(stores) -> None:
    ds = _ds(stores, "pastis_hd", splits=["val", "test"], train=False)
    store, spec = Store(ds.store_path), ds.dataset
    lut = np.asarray(spec.task.label_map)
    n = len(ds.tiles)
    for t, tile in enumerate(ds.tiles):
        full = np.full((32, 32), -99, np.int64)
        spot = np.full((3, 64, 64), np.nan, np.float32)
        count = np.zeros((32, 32), int)
        for r in range(4):
            item = ds[t + r * n]
            assert int(item["tile"]) == tile
            rows, cols = ds.window("s2", ds.offsets(t + r * n, np.random.default_rng()))
            full[rows, cols] = item["label"].numpy()
            count[rows, cols] += 1
            srows, scols = ds.window("spot", ds.offsets(t + r * n, np.random.default_rng()))
            spot[:, srows, scols] = item["inputs"]["spot"][0].numpy()
        assert np.all(count == 1)
        np.testing.assert_array_equal(full, lut[store.label(tile)])
        whole = prepare(store.read(tile, "spot")[0], spec.store.modality("spot"))[0]
        np.testing.assert_array_equal(spot, whole)


def test_eval_dates_are_the_medoids(stores) -> None:
    ds = _ds(stores, "flair2", splits=["train", "val", "test"], train=False)
    store = Store(ds.store_path)
    assert len(ds) == len(store.indices("flair2", ["train", "val", "test"]))
    for k in range(len(ds)):
        item = ds[k]
        data, dates, invalid = store.read(int(item["tile"]), "s2")
        keep = select_dates(data, invalid, 3, None)
        np.testing.assert_array_equal(item["dates"]["s2"].numpy(), dates[keep])
        m = ds.dataset.store.modality("s2")
        np.testing.assert_array_equal(item["inputs"]["s2"].numpy(), prepare(data[keep], m))
        dem = item["inputs"]["dem"].numpy()  # channel 1 = 30 * (DSM - DTM) / 1000
        raw = store.read(int(item["tile"]), "dem")[0].astype(np.float32) / 1000
        np.testing.assert_allclose(dem[:, 1], 30 * (raw[:, 0] - raw[:, 1]), rtol=1e-5)
        for a, b in zip(ds[k].values(), item.values(), strict=True):  # deterministic
            if isinstance(a, dict):
                assert all(torch.equal(a[key], b[key]) for key in a)
            else:
                assert torch.equal(a, b)


_DIHEDRAL = {
    (fh, fw, tr): (lambda a, fh=fh, fw=fw, tr=tr: _apply(a, fh, fw, tr))
    for fh in (0, 1)
    for fw in (0, 1)
    for tr in (0, 1)
}


def _apply(a: torch.Tensor, fh: int, fw: int, tr: int) -> torch.Tensor:
    if fh:
        a = a.flip(-2)
    if fw:
        a = a.flip(-1)
    return a.transpose(-1, -2) if tr else a


def test_augmentation_is_consistent_across_rasters_and_label(stores) -> None:
    plain = _ds(stores, "pastis_hd", augment=False, seed=3)
    aug = _ds(stores, "pastis_hd", augment=True, seed=3)
    used = set()
    for k in range(len(plain)):
        a, b = plain[k], aug[k]
        # the op that maps the unaugmented spot crop to the augmented one
        ops = [
            op
            for op, f in _DIHEDRAL.items()
            if torch.equal(f(a["inputs"]["spot"]), b["inputs"]["spot"])
        ]
        assert len(ops) >= 1
        op = _DIHEDRAL[ops[0]]
        for name in a["inputs"]:
            assert torch.equal(op(a["inputs"][name]), b["inputs"][name]), name
        assert torch.equal(op(a["label"]), b["label"])
        assert torch.equal(a["dates"]["s2"], b["dates"]["s2"])
        used.add(ops[0])
    assert len(used) >= 4  # flips and transposes really happen


def test_train_crops_are_random_and_on_grid(stores) -> None:
    ds = _ds(stores, "pastis_hd", augment=False)
    offsets = {ds.offsets(k, np.random.default_rng([0, 0, k])) for k in range(len(ds))}
    assert len(offsets) > 4
    assert all(0 <= i <= 16 and 0 <= j <= 16 for i, j in offsets)  # gcd 32, crop 16 cells
    first = [ds[k]["inputs"]["s2"] for k in range(4)]
    ds.set_epoch(1)
    assert any(not torch.equal(a, ds[k]["inputs"]["s2"]) for k, a in enumerate(first))
    ds.set_epoch(0)
    assert all(torch.equal(a, ds[k]["inputs"]["s2"]) for k, a in enumerate(first))


def _batches(ds: MaestroDataset, workers: int) -> list[dict]:
    loader = DataLoader(ds, batch_size=4, shuffle=False, num_workers=workers)
    return list(loader)


def test_items_do_not_depend_on_worker_count(stores) -> None:
    ds = _ds(stores, "treesatai_ts", splits=["train", "val", "test"], seed=11)
    ds.store.read(0, "s2")  # a handle opened in the parent must not leak into workers
    one, two = _batches(ds, 0), _batches(ds, 2)
    assert len(one) == len(two) == 3
    assert one[0]["inputs"]["s2"].shape == (4, 3, 10, 6, 6)  # default collate stacks
    assert one[0]["dates"]["s1_asc"].shape == (4, 2, 3)
    assert one[0]["label"].shape == (4, 15) and one[0]["index"].tolist() == [0, 1, 2, 3]
    for a, b in zip(one, two, strict=True):
        for key in ("inputs", "dates"):
            for m in a[key]:  # bit-identical, NaNs (log of a NaN backscatter) included
                torch.testing.assert_close(a[key][m], b[key][m], rtol=0, atol=0, equal_nan=True)
        assert torch.equal(a["label"], b["label"]) and torch.equal(a["index"], b["index"])


def test_spec_mismatch_is_an_error(stores) -> None:
    other = dict(SMALL["pastis_hd"], tile_m=640.0)
    spec = catalog({"pastis_hd": other}).dataset("pastis_hd")
    with pytest.raises(ValueError, match=r"pastis_hd\.zarr.*tile_m: store 320\.0 vs declared 640"):
        MaestroDataset(stores["pastis_hd"], spec, ["train"], train=True)
    mods = {**SMALL["treesatai_ts"]["modalities"], "s2": {"resolution_m": 5.0}}
    spec = catalog({"treesatai_ts": {"modalities": mods}}).dataset("treesatai_ts")
    with pytest.raises(ValueError, match=r"s2\.resolution_m: store 10\.0 vs declared 5\.0"):
        MaestroDataset(stores["treesatai_ts"], spec, ["train"], train=True)
    # model-side overrides (num_dates, patch size) are fine
    mods = {**SMALL["treesatai_ts"]["modalities"], "s2": {"num_dates": 5}}
    spec = catalog({"treesatai_ts": {"modalities": mods}}).dataset("treesatai_ts")
    ds = MaestroDataset(stores["treesatai_ts"], spec, ["train"], train=False)
    assert ds[0]["inputs"]["s2"].shape[0] == 5


def test_max_tiles_and_bounds(stores) -> None:
    ds = _ds(stores, "pastis_hd", splits=["train", "val"], max_tiles=3)
    assert len(ds) == 3 * 4
    assert set(int(ds[k]["tile"]) for k in range(len(ds))) == set(ds.tiles.tolist())
    with pytest.raises(IndexError):
        ds[len(ds)]


class _EditedReader(FakeReader):
    """The fake distribution with ``edit(sample)`` applied to every sample."""

    def __init__(self, *args, edit, **kw) -> None:
        super().__init__(*args, **kw)
        self.edit = edit

    def make(self, k: int, ref):
        sample = super().make(k, ref)
        self.edit(sample)
        return sample


def _items(path: Path, name: str, train: bool) -> list[dict]:
    spec = small_catalog().dataset(name)
    ds = MaestroDataset(path, spec, splits=["train", "val", "test"], train=train)
    return [ds[k] for k in range(len(ds))]


def test_a_band_the_model_does_not_read_does_not_choose_dates(tmp_path: Path) -> None:
    """PASTIS S1 files carry VV, VH and VV/VH; an overflowing ratio (inf) on some dates must
    leave the chosen dates and the inputs as they are (decision D21)."""

    def ratio_overflow(sample) -> None:
        for name in ("s1_asc", "s1_des"):
            x = sample.rasters[name].copy()
            x[::2, 2, 0, 0] = np.inf  # every other date
            sample.rasters[name] = x

    spec = small_store("pastis_hd")
    paths = {}
    for tag, edit in (("plain", lambda s: None), ("inf", ratio_overflow)):
        paths[tag] = tmp_path / f"{tag}.zarr"
        reader = _EditedReader(spec, 3, 1, 1, tlim=(5, 8), edit=edit)
        convert(reader, paths[tag], shard_samples=4)
    for train in (False, True):
        a, b = _items(paths["plain"], "pastis_hd", train), _items(paths["inf"], "pastis_hd", train)
        for x, y in zip(a, b, strict=True):
            for key in ("s1_asc", "s1_des"):
                assert torch.equal(x["dates"][key], y["dates"][key])
                assert torch.equal(x["inputs"][key], y["inputs"][key])


def _missing_dates_never_picked(
    path: Path, dataset: str, modality: str, bad_dates: dict[str, np.ndarray], floor: float
) -> dict:
    """No evaluation or training item picks one of a sample's ``bad_dates`` nor reaches the
    model below ``floor``; returns the store's train statistics of ``modality``."""
    store = Store(path)
    ids = store.sample_ids
    for train in (False, True):
        for item in _items(path, dataset, train):
            bad = {tuple(d) for d in bad_dates[ids[int(item["tile"])]].tolist()}
            picked = {tuple(d) for d in item["dates"][modality].tolist()}
            assert not picked & bad
            assert float(item["inputs"][modality].min()) >= floor
    return store.stats(modality, "default")


def test_optical_fill_values_are_missing(tmp_path: Path) -> None:
    """PASTIS-HD S2 acquisitions filled with -9999 make their date dirty, are kept out of the
    train statistics and reach the model as 0, not -1 (decision D26)."""
    fill_dates: dict[str, np.ndarray] = {}

    def fill(sample) -> None:
        x = sample.rasters["s2"].copy()
        x[1::2] = -9999  # dates 1, 3, 5, ...: a no-data fill over the whole tile
        sample.rasters["s2"] = x
        fill_dates[sample.sample_id] = sample.dates["s2"][1::2]

    path = tmp_path / "p.zarr"
    # 6+ dates in 3 chunks: every chunk holds an even (clean) date
    reader = _EditedReader(small_store("pastis_hd"), 3, 1, 1, tlim=(6, 9), edit=fill)
    convert(reader, path, shard_samples=4)
    stats = _missing_dates_never_picked(path, "pastis_hd", "s2", fill_dates, floor=0.0)
    assert np.all(stats["mean"] > 0.0)


def test_zero_backscatter_is_missing(tmp_path: Path) -> None:
    """S1 linear backscatter of 0 (the GRD no-data fill) makes its date dirty and never
    reaches the model as ln(1e-10) / 5 = -4.6 (decision D20)."""
    zero_dates: dict[str, np.ndarray] = {}

    def zero_fill(sample) -> None:
        x = sample.rasters["s1_asc"]
        x = np.where(np.isfinite(x) & (x > 0), x, np.float32(0.5))  # the fake's NaN and zeros out
        x[::2, 0] = 0.0  # dates 0, 2, 4, ...: VV no data (in every crop)
        sample.rasters["s1_asc"] = x
        zero_dates[sample.sample_id] = sample.dates["s1_asc"][::2]

    path = tmp_path / "t.zarr"
    reader = _EditedReader(small_store("treesatai_ts"), 3, 1, 1, tlim=(4, 8), edit=zero_fill)
    convert(reader, path, shard_samples=4)
    # every chunk of 2+ dates has a clean one
    stats = _missing_dates_never_picked(path, "treesatai_ts", "s1_asc", zero_dates, floor=-4.0)
    assert np.all(stats["mean"] > -4.0)  # the zeros are not in the train statistics either
