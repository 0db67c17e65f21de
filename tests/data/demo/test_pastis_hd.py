"""The demo PASTIS-HD writer: real on-disk format, determinism, planted structure."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from maestro.data.demo import DemoConfig, generate
from maestro.data.demo.world import planted_groups
from maestro.datasets import catalog
from maestro.datasets.pastis_hd import CLASS_NAMES, VOID
from maestro.datasets.spec import StoreSpec

TORCHGEO = "pastis_hd/microsoft_torchgeo__tests_data_pastis/PASTIS-R"
LABEL_NAMES = "pastis_hd/VSainteuf_pastis-benchmark__documentation/documentation/label_names.json"
SPOT = "DATA_SPOT/PASTIS_SPOT6_RVB_1M00_2019/SPOT6_RVB_1M00_2019_{}.tif"
SERIES = {
    "s2": ("DATA_S2/S2_{}.npy", "dates-S2"),
    "s1_asc": ("DATA_S1A/S1A_{}.npy", "dates-S1A"),
    "s1_des": ("DATA_S1D/S1D_{}.npy", "dates-S1D"),
}
TWINS = [(c, c + 1) for c in range(1, 18, 2)]


def _store(tile_m: int) -> StoreSpec:
    return catalog({"pastis_hd": {"tile_m": tile_m}}).store("pastis_hd")


def _cfg(**kw: object) -> DemoConfig:
    base = {
        "n_train": 5,
        "n_val": 2,
        "n_test": 2,
        "acquisitions": {"s2": 24, "s1_asc": 12, "s1_des": 12},
        "cloudy_fraction": 0.0,
        "parcels": 10,
        "seed": 3,
    }
    return DemoConfig(**(base | kw))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pastis") / "PASTIS-HD"
    generate(_store(320), root, _cfg())
    return root


def _ids(root: Path, split: str) -> list[int]:
    table = pd.read_csv(root / f"{split}.csv")
    assert list(table.columns) == ["image"]
    return table["image"].tolist()


def _features(root: Path) -> dict[int, dict]:
    doc = json.loads((root / "metadata.geojson").read_text())
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    return {f["properties"]["ID_PATCH"]: f for f in doc["features"]}


def test_splits_and_files(demo: Path) -> None:
    splits = {s: _ids(demo, s) for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in splits] == [5, 2, 2]
    ids = sorted(i for v in splits.values() for i in v)
    assert len(set(ids)) == 9 and ids[0] == 10000 and all(isinstance(i, int) for i in ids)
    for pid in ids:
        for path in [*(p for p, _ in SERIES.values()), SPOT, "ANNOTATIONS/TARGET_{}.npy"]:
            assert (demo / path.format(pid)).is_file(), path.format(pid)
    assert not (demo / "INSTANCE_ANNOTATIONS").exists()


def test_arrays_follow_real_conventions(demo: Path, realdata: Path) -> None:
    store = _store(320)
    h = store.modality("s2").pixels(store.tile_m)
    assert h == 32
    ref = realdata / TORCHGEO
    for pid in _ids(demo, "train"):
        for name, (pattern, _) in SERIES.items():
            arr = np.load(demo / pattern.format(pid))
            real = np.load(ref / pattern.format(0))
            assert arr.dtype == real.dtype == np.dtype(store.modality(name).dtype)
            assert arr.shape[1:] == (real.shape[1], h, h) and arr.shape[0] >= 10
        target = np.load(demo / f"ANNOTATIONS/TARGET_{pid}.npy")
        real = np.load(ref / "ANNOTATIONS/TARGET_0.npy")
        assert target.dtype == real.dtype == np.uint8 and target.shape == (3, h, h)
    s2 = np.load(demo / f"DATA_S2/S2_{pid}.npy")
    assert s2.min() >= 0 and 1000 < s2.mean() < 6000  # reflectance x 1e4
    s1 = np.load(demo / f"DATA_S1A/S1A_{pid}.npy").astype(np.float32)
    assert -30 < s1[:, 0].mean() < -5 and s1[:, 1].mean() < s1[:, 0].mean()  # dB, VH < VV
    np.testing.assert_allclose(s1[:, 2], s1[:, 0] - s1[:, 1], atol=0.05)  # ratio channel


def test_metadata_geojson(demo: Path) -> None:
    feats = _features(demo)
    splits = {pid: s for s in ("train", "val", "test") for pid in _ids(demo, s)}
    assert sorted(feats) == sorted(splits)
    for pid, feat in feats.items():
        props = feat["properties"]
        assert feat["id"] == props["id"] == str(pid)
        assert props["Fold"] in {"train": (1, 2, 3), "val": (4,), "test": (5,)}[splits[pid]]
        assert props["TILE"].startswith("t") and len(props["TILE"]) == 6
        assert isinstance(props["N_Parcel"], int) and props["N_Parcel"] > 0
        assert isinstance(props["Parcel_Cover"], float) and 0 < props["Parcel_Cover"] <= 1
        for pattern, key in SERIES.values():
            dates = props[key]
            assert list(dates) == [str(i) for i in range(len(dates))]
            values = list(dates.values())
            assert all(isinstance(v, int) for v in values) and values == sorted(set(values))
            assert values[0] >= 20180901 and values[-1] <= 20191231
            assert np.load(demo / pattern.format(pid), mmap_mode="r").shape[0] == len(values)
        assert feat["geometry"]["type"] == "MultiPolygon"
    # dates of one S2 tile are shared up to a few dropped ones; counts vary across patches
    counts = {len(f["properties"]["dates-S2"]) for f in feats.values()}
    assert len(counts) > 1 and max(counts) - min(counts) <= 4
    frame = gpd.read_file(demo / "metadata.geojson").set_index("id")
    assert sorted(frame.index) == sorted(str(p) for p in feats)


def test_spot_geotiff(demo: Path) -> None:
    store = _store(320)
    spot = store.modality("spot")
    feats = _features(demo)
    for pid, feat in feats.items():
        with rasterio.open(demo / SPOT.format(pid)) as src:
            assert (src.count, src.dtypes, src.crs.to_epsg()) == (3, ("uint8",) * 3, 2154)
            assert src.res == (spot.resolution_m, spot.resolution_m)
            assert src.width == src.height == spot.pixels(store.tile_m) == 320
            ring = np.array(feat["geometry"]["coordinates"][0][0])
            assert tuple(src.bounds) == (*ring.min(0), *ring.max(0))
            assert 300_000 < src.bounds.left < 1_100_000 and 6e6 < src.bounds.bottom < 7.2e6
    lefts = [json.dumps(f["geometry"]) for f in feats.values()]
    assert len(set(lefts)) == len(lefts)  # footprints do not coincide


def test_label_names(demo: Path, realdata: Path) -> None:
    real = json.loads((realdata / LABEL_NAMES).read_text())
    ours = json.loads((demo / "documentation/label_names.json").read_text())
    assert len(real) == len(ours) == len(CLASS_NAMES) == 20
    assert [" ".join(real[str(i)].split()) for i in range(20)] == list(CLASS_NAMES)
    assert [ours[str(i)] for i in range(20)] == list(CLASS_NAMES)


def test_target_channels(demo: Path) -> None:
    n_void = n_border = 0
    seen: set[int] = set()
    for pid in _features(demo):
        semantic, majority, border = np.load(demo / f"ANNOTATIONS/TARGET_{pid}.npy")
        assert semantic.max() <= VOID and majority.max() < VOID and set(np.unique(border)) <= {0, 1}
        void = semantic == VOID
        assert not (void & (border == 0)).any()  # void only on parcel borders
        np.testing.assert_array_equal(semantic[~void], majority[~void])
        n_void, n_border = n_void + void.sum(), n_border + border.sum()
        seen |= set(np.unique(majority).tolist())
    assert 0 < n_void < n_border  # only some borders are void
    assert 0 in seen and len(seen) >= 8
    labels = [np.load(demo / f"ANNOTATIONS/TARGET_{p}.npy")[1] for p in _features(demo)]
    freq = np.bincount(np.concatenate([lab.ravel() for lab in labels]), minlength=VOID)
    assert freq[0] > 0 and freq[1] > freq[17]  # unequal frequencies (Meadow >> Mixed cereal)


def test_parcels_are_spatially_coherent(demo: Path) -> None:
    for pid in _features(demo):
        majority = np.load(demo / f"ANNOTATIONS/TARGET_{pid}.npy")[1]
        vertical = majority[1:] == majority[:-1]
        horizontal = majority[:, 1:] == majority[:, :-1]
        same = np.concatenate([vertical.ravel(), horizontal.ravel()])
        assert same.mean() > 0.8  # a random map with these frequencies gives < 0.2
        _, _, border = np.load(demo / f"ANNOTATIONS/TARGET_{pid}.npy")
        with rasterio.open(demo / SPOT.format(pid)) as src:
            rgb = src.read().astype(np.float64).mean(0)
        # SPOT texture (the std of the brightness inside each S2 pixel, relative to its mean:
        # the class rows, free of the acquisition gain): the class explains most of it
        f = rgb.shape[0] // majority.shape[0]
        cells = rgb.reshape(majority.shape[0], f, majority.shape[1], f)
        blocks = cells.std(axis=(1, 3)) / cells.mean(axis=(1, 3))
        keep = border == 0
        values, classes = blocks[keep], majority[keep]
        within = sum(
            ((values[classes == c] - values[classes == c].mean()) ** 2).sum()
            for c in np.unique(classes)
        )
        assert within / ((values - values.mean()) ** 2).sum() < 0.3


def _shape(s2: np.ndarray) -> np.ndarray:
    """``(10, N)`` S2 values divided by their latent group's mean per pixel: the spectral
    shape inside each group, free of the acquisition gain of the group."""
    out = np.empty_like(s2)
    for g in planted_groups("s2"):
        idx = [catalog().store("pastis_hd").modality("s2").bands.index(b) for b in g]
        out[idx] = s2[idx] / s2[idx].mean(0, keepdims=True)
    return out


def _monthly_class_series(root: Path) -> dict[int, np.ndarray]:
    """Class -> (12, 10) mean S2 spectral shape (:func:`_shape`) of pure pixels per month."""
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, np.ndarray] = {}
    for pid, feat in _features(root).items():
        _, majority, border = np.load(root / f"ANNOTATIONS/TARGET_{pid}.npy")
        s2 = np.load(root / f"DATA_S2/S2_{pid}.npy").astype(np.float64)
        months = [int(str(v)[4:6]) - 1 for v in feat["properties"]["dates-S2"].values()]
        for c in np.unique(majority[border == 0]):
            pure = (majority == c) & (border == 0)
            s = sums.setdefault(int(c), np.zeros((12, 10)))
            n = counts.setdefault(int(c), np.zeros((12, 1)))
            for t, m in enumerate(months):
                s[m] += _shape(s2[t][:, pure]).sum(1)
                n[m] += pure.sum()
    return {c: sums[c] / counts[c] for c in sums if (counts[c] > 0).all()}


def test_twin_classes_share_signature_but_not_timing(demo: Path) -> None:
    series = _monthly_class_series(demo)
    pairs = [(a, b) for a, b in TWINS if a in series and b in series]
    assert len(pairs) >= 3, f"too few twin pairs observed in every month: {sorted(series)}"
    others = [c for c in series if c != 0]
    for a, b in pairs:
        mean_gap = np.linalg.norm(series[a].mean(0) - series[b].mean(0))
        other_gaps = [
            np.linalg.norm(series[a].mean(0) - series[c].mean(0)) for c in others if c not in (a, b)
        ]
        assert mean_gap < 0.5 * np.median(other_gaps)  # same annual mean signature
        # the seasonal deviation peaks in different months (~4 months apart)
        dev = {c: ((series[c] - series[c].mean(0)) ** 2).sum(1) for c in (a, b)}
        if max(dev[a].max(), dev[b].max()) < 1e-3:  # flat phenology: no timing to compare
            continue
        shift = abs(int(dev[a].argmax()) - int(dev[b].argmax()))
        assert 2 <= min(shift, 12 - shift) <= 6
        assert np.linalg.norm(series[a] - series[b]) > 2 * mean_gap  # the series tell them apart


def test_deterministic(tmp_path: Path) -> None:
    store, cfg = _store(160), _cfg(n_train=2, n_val=1, n_test=0, cloudy_fraction=0.5)
    generate(store, tmp_path / "a", cfg)
    generate(store, tmp_path / "b", cfg)
    generate(store, tmp_path / "c", _cfg(n_train=2, n_val=1, n_test=0, seed=4))
    files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    # 5 per patch + metadata, 3 CSVs, 3 NORM, label names, the demo marker
    assert len(files) == 3 * 5 + 8 + 1
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    s2 = sorted((tmp_path / "a" / "DATA_S2").iterdir())[0].name
    assert (tmp_path / "a/DATA_S2" / s2).read_bytes() != (tmp_path / "c/DATA_S2" / s2).read_bytes()


def test_bad_config(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="s1_des"):
        generate(_store(160), tmp_path / "x", _cfg(acquisitions={"s2": 4, "s1_asc": 4}))
    (tmp_path / "y").mkdir()
    with pytest.raises(FileExistsError):
        generate(_store(160), tmp_path / "y", _cfg())
