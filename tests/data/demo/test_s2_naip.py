"""Demo S2-NAIP writer: layout, file profiles, dates, determinism, planted structure."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from maestro.data.dates import parse_yyyymmdd, product_date
from maestro.data.demo import DemoConfig, generate
from maestro.data.demo.s2_naip import CLASSES, SEASONALITY, _World
from maestro.data.demo.world import planted_groups
from maestro.data.readers.s2_naip import (
    dates_path,
    naip_date,
    parse_tile_name,
    png_header,
    raster_path,
    tile_bounds,
)
from maestro.datasets import catalog

OVERRIDES = {
    "s2_naip": {
        "modalities": {
            "aerial": {"resolution_m": 5.0, "patch_size": 4, "image_size": 48},  # 128 px
            "spot": {"resolution_m": 5.0, "patch_size": 4, "image_size": 16},
            "s2": {"num_dates": 3},
            "s1": {"num_dates": 2},
        }
    }
}
STORE = catalog(OVERRIDES).store("s2_naip")
CFG = DemoConfig(n_train=4, n_val=2, n_test=2, acquisitions={"s2": 8, "s1": 4}, parcels=8, seed=5)
CHANNELS = {"s2": 10, "s1": 2}
DTYPES = {"s2": "uint16", "s1": "float32"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("s2_naip") / "s2-naip-urban"
    generate(STORE, root, CFG)
    return root


def _names(root: Path, split: str) -> list[str]:
    return pd.read_csv(root / f"{split}.csv", dtype=str)["name"].tolist()


def _all(root: Path) -> list[str]:
    return [n for s in ("train", "val", "test") for n in _names(root, s)]


def _lines(root: Path, mod: str, name: str) -> list[str]:
    return (root / dates_path(mod, name)).read_text().splitlines()


def _naip(root: Path, name: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(root / raster_path("aerial", name)) as src:
            assert src.driver == "PNG" and src.crs is None
            return src.read()


def _tif(root: Path, mod: str, name: str) -> np.ndarray:
    t = len(_lines(root, mod, name))
    with rasterio.open(root / raster_path(mod, name)) as src:
        return src.read().reshape(t, CHANNELS[mod], src.height, src.width)


def test_split_csvs_and_names(demo: Path) -> None:
    splits = {s: _names(demo, s) for s in ("train", "val", "test")}
    assert [len(v) for v in splits.values()] == [CFG.n_train, CFG.n_val, CFG.n_test]
    names = _all(demo)
    assert len(set(names)) == len(names)
    for s in splits:
        assert (demo / f"{s}.csv").read_text().splitlines()[0] == "name"
        assert splits[s] == sorted(splits[s])
    zones = {parse_tile_name(n)[0] for n in names}
    assert len(zones) == len(names)  # up to 10 tiles: one city per UTM zone
    assert zones <= set(range(32610, 32620))
    assert sorted(p.name for p in demo.iterdir()) == [
        ".maestro_demo.json", "dates", "naip", "sentinel1", "sentinel2", "test.csv",
        "train.csv", "val.csv",
    ]  # fmt: skip


def test_png_and_geotiff_profiles(demo: Path) -> None:
    apx, spx = STORE.modality("aerial").pixels(640.0), STORE.modality("s2").pixels(640.0)
    assert (apx, spx) == (128, 64)
    for name in _all(demo):
        png = demo / raster_path("aerial", name)
        assert png_header(png, png.read_bytes()) == (apx, apx, 4, 8)  # RGBA, 8 bit
        naip = _naip(demo, name)
        assert naip.shape == (4, apx, apx) and naip.dtype == np.uint8
        epsg = parse_tile_name(name)[0]
        for mod in ("s2", "s1"):
            t = len(_lines(demo, mod, name))
            with rasterio.open(demo / raster_path(mod, name)) as src:
                assert src.count == t * CHANNELS[mod]
                assert set(src.dtypes) == {DTYPES[mod]}
                assert (src.height, src.width) == (spx, spx)
                assert src.crs.to_epsg() == epsg
                np.testing.assert_allclose(tuple(src.bounds), tile_bounds(name, 640.0))
                assert src.res == (10.0, 10.0)


def test_date_files(demo: Path) -> None:
    for name in _all(demo):
        zone = str(parse_tile_name(name)[0] - 32600)
        (naip,) = _lines(demo, "aerial", name)
        assert naip.startswith("m_") and naip.split("_")[3] == zone
        year, doy, _ = naip_date(naip)
        assert 2019 <= year <= 2021 and 152 <= doy <= 273
        for mod, prefix in (("s2", "S2"), ("s1", "S1")):
            products = _lines(demo, mod, name)
            a = CFG.acquisitions[mod]
            assert a <= len(products) <= a + a // 4
            assert all(p.startswith(prefix) for p in products)
            dates = [product_date(p) for p in products]
            assert all(d[0] == year for d in dates)  # the NAIP flight lies in the series' year
            doys = [d[1] for d in dates]
            assert doys == sorted(set(doys))
            assert doys[0] < doy < doys[-1]
        s2 = _lines(demo, "s2", name)
        assert {p.split("_")[5][1:3] for p in s2} == {zone}  # MGRS tile in the tile's zone
        assert parse_yyyymmdd(s2[0].split("_")[-1][:8])[1] == product_date(s2[0])[1]


def _digest(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_determinism(demo: Path, tmp_path: Path) -> None:
    generate(STORE, tmp_path / "again", CFG)
    first, second = _digest(demo), _digest(tmp_path / "again")
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []
    generate(STORE, tmp_path / "other", DemoConfig(**{**CFG.__dict__, "seed": CFG.seed + 1}))
    assert _digest(tmp_path / "other") != first


def _group_corr(pixels: np.ndarray, bands: tuple[str, ...], sensor: str) -> tuple[float, float]:
    """Mean within-group and across-group correlation of ``(N, C)`` pixels."""
    corr = np.corrcoef(pixels, rowvar=False)
    group = {b: g for g, members in enumerate(planted_groups(sensor)) for b in members}
    same = np.array([[group[a] == group[b] for b in bands] for a in bands])
    off = ~np.eye(len(bands), dtype=bool)
    return float(corr[same & off].mean()), float(corr[~same].mean())


def test_planted_s2_groups(demo: Path) -> None:
    bands = STORE.modality("s2").bands
    pixels = np.concatenate(
        [
            _tif(demo, "s2", n).astype(np.float64).transpose(0, 2, 3, 1).reshape(-1, 10)
            for n in _all(demo)
        ]
    )
    assert pixels.min() >= 1 and pixels.max() < 10000
    within, across = _group_corr(pixels, bands, "s2")
    assert within > 0.9
    assert within > across + 0.2


def test_planted_naip_nir_vs_rgb(demo: Path) -> None:
    bands = STORE.modality("aerial").bands
    assert bands == ("R", "G", "B", "NIR")
    pixels = np.concatenate(
        [_naip(demo, n).astype(np.float64).reshape(4, -1).T for n in _all(demo)]
    )
    within, across = _group_corr(pixels, bands, "aerial")
    assert within > 0.9
    assert within > across + 0.2
    assert 0 < pixels.mean() < 255 and pixels.std() > 10


def test_s1_decibels_groups_and_speckle(demo: Path) -> None:
    series = [_tif(demo, "s1", n).astype(np.float64) for n in _all(demo)]
    vv = np.concatenate([s[:, 0].ravel() for s in series])
    vh = np.concatenate([s[:, 1].ravel() for s in series])
    assert np.isfinite(vv).all() and vv.min() > -45 and vv.max() < 5
    assert 4.0 < vv.mean() - vh.mean() < 10.0  # VH ~7 dB below VV
    assert np.corrcoef(vv, vh)[0, 1] < 0.9  # VV and VH are separate groups
    # speckle: Gamma(5) noise is ~2 dB per pixel, far above the smooth signal's pixel steps
    steps = np.concatenate([np.diff(s, axis=-1).ravel() for s in series])
    assert 1.5 < steps.std() / np.sqrt(2) < 3.5


def test_phenology_urban_flat_vegetation_seasonal() -> None:
    world = _World(np.random.default_rng(0))
    year = np.stack([world.levels("s2", d) for d in range(1, 366, 5)])  # (D, K, G)
    swing = year.max(axis=0) - year.min(axis=0)  # (K, G)
    urban = [CLASSES.index(c) for c in ("building", "road")]
    veg = [CLASSES.index(c) for c in ("lawn", "deciduous")]
    assert swing[urban].max() < 0.03
    assert swing[veg].max(axis=1).min() > 5 * swing[urban].max()
    assert len(SEASONALITY) == len(CLASSES)
