"""S2-NAIP reader: helpers, round trip on the demo, bad input, conversion to a usable store."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from maestro.data.dates import product_date
from maestro.data.demo import DemoConfig, generate
from maestro.data.errors import RawFormatError
from maestro.data.readers import get_reader
from maestro.data.readers.s2_naip import (
    Reader,
    dates_path,
    naip_date,
    parse_tile_name,
    raster_path,
    tile_bounds,
    tile_name,
)
from maestro.data.torch_dataset import MaestroDataset
from maestro.datasets import catalog
from maestro.store.convert import convert
from maestro.store.zarr_store import Store

OVERRIDES = {
    "s2_naip": {
        "modalities": {
            "aerial": {"resolution_m": 10.0, "patch_size": 4, "image_size": 48},  # 64 px
            "spot": {"resolution_m": 10.0, "patch_size": 4, "image_size": 16},
            "s2": {"num_dates": 3},
            "s1": {"num_dates": 2},
        }
    }
}
CATALOG = catalog(OVERRIDES)
STORE = CATALOG.store("s2_naip")
CFG = DemoConfig(n_train=3, n_val=1, n_test=2, acquisitions={"s2": 4, "s1": 3}, parcels=5, seed=2)
PX = 64


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("s2_naip_reader") / "s2-naip-urban"
    generate(STORE, root, CFG)
    return root


@pytest.fixture
def copy(demo: Path, tmp_path: Path) -> Path:
    """A private copy of the demo distribution that a test may corrupt."""
    return Path(shutil.copytree(demo, tmp_path / "s2-naip-urban"))


def _first(root: Path) -> tuple[Reader, str]:
    reader = Reader(STORE, root)
    return reader, reader.index()[0].sample_id


def _read_one(reader: Reader, name: str) -> None:
    reader.read(next(r for r in reader.index() if r.sample_id == name))


def _tif(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(), dict(src.profile)


def _rewrite_tif(path: Path, data: np.ndarray, **changes: object) -> None:
    _, profile = _tif(path)
    profile.update(count=data.shape[0], height=data.shape[1], width=data.shape[2], **changes)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def _write_png(path: Path, data: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        c, h, w = data.shape
        kw = dict(driver="PNG", width=w, height=h, count=c, dtype=data.dtype.name)
        with rasterio.open(path, "w", **kw) as dst:
            dst.write(data)


def test_layout_helpers() -> None:
    name = tile_name(32612, 960, -6049)
    assert name == "32612_960_-6049"
    assert parse_tile_name(name) == (32612, 960, -6049)
    # the allenai card: tile 32612_960_-6049 spans x 614400..615040, |y| 3870720..3871360
    assert tile_bounds(name, 640.0) == (614400.0, 3870720.0, 615040.0, 3871360.0)
    for bad in ("32612_960", "4326_1_2", "32612_a_-1", "32612_1_2_3"):
        with pytest.raises(ValueError, match="tile name"):
            parse_tile_name(bad)
    assert str(raster_path("aerial", name)) == "naip/32612_960_-6049.png"
    assert str(raster_path("s2", name)) == "sentinel2/32612_960_-6049_stacked.tif"
    assert str(raster_path("s1", name)) == "sentinel1/32612_960_-6049.tif"
    assert str(dates_path("aerial", name)) == "dates/naip/32612_960_-6049.txt"
    assert str(dates_path("s1", name)) == "dates/s1/32612_960_-6049.txt"
    assert naip_date("m_4712230_ne_10_060_20190720") == (2019, 201, 0)


def test_index(demo: Path) -> None:
    reader = get_reader(STORE, demo)
    assert isinstance(reader, Reader)
    refs = reader.index()
    expected = {
        n: {"default": s}
        for s in ("train", "val", "test")
        for n in pd.read_csv(demo / f"{s}.csv", dtype=str)["name"]
    }
    assert {r.sample_id: r.splits for r in refs} == expected
    assert len(refs) == CFG.n_train + CFG.n_val + CFG.n_test
    for ref in refs:
        for mod in ("s2", "s1"):
            lines = (demo / dates_path(mod, ref.sample_id)).read_text().splitlines()
            assert ref.ndates[mod] == len(lines)
        assert set(ref.ndates) == {"s2", "s1"}


def test_read_round_trip(demo: Path) -> None:
    reader = Reader(STORE, demo)
    crs_seen = set()
    for ref in reader.index():
        name = ref.sample_id
        s = reader.read(ref)
        t2, t1 = ref.ndates["s2"], ref.ndates["s1"]
        shapes = {k: (v.shape, v.dtype.name) for k, v in s.rasters.items()}
        assert shapes == {
            "aerial": ((1, 4, PX, PX), "uint8"),
            "s2": ((t2, 10, PX, PX), "uint16"),
            "s1": ((t1, 2, PX, PX), "float32"),
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(demo / raster_path("aerial", name)) as src:
                np.testing.assert_array_equal(s.rasters["aerial"][0], src.read())
        flat, profile = _tif(demo / raster_path("s2", name))
        np.testing.assert_array_equal(s.rasters["s2"][t2 - 1, 7], flat[(t2 - 1) * 10 + 7])
        np.testing.assert_array_equal(
            s.rasters["s1"].reshape(-1, PX, PX), _tif(demo / raster_path("s1", name))[0]
        )
        naip = (demo / dates_path("aerial", name)).read_text().strip()
        np.testing.assert_array_equal(s.ref_date, naip_date(naip))
        assert s.ref_date.shape == (3,) and s.ref_date.dtype == np.int16
        np.testing.assert_array_equal(s.dates["aerial"], [naip_date(naip)])
        for mod in ("s2", "s1"):
            lines = (demo / dates_path(mod, name)).read_text().splitlines()
            np.testing.assert_array_equal(s.dates[mod], [product_date(x) for x in lines])
            assert s.dates[mod].dtype == np.int16
        assert s.label is None and s.invalid == {}
        epsg = parse_tile_name(name)[0]
        assert s.crs == f"EPSG:{epsg}" == f"EPSG:{profile['crs'].to_epsg()}"
        assert s.bounds == pytest.approx(tile_bounds(name, 640.0))
        crs_seen.add(s.crs)
    assert len(crs_seen) == len(reader.index())


def test_series_are_returned_in_time_order(copy: Path) -> None:
    reader, name = _first(copy)
    ref = reader.index()[0]
    before = reader.read(ref)
    date_file, tif = copy / dates_path("s2", name), copy / raster_path("s2", name)
    lines = date_file.read_text().splitlines()
    date_file.write_text("\n".join(lines[::-1]) + "\n")
    flat, _ = _tif(tif)
    _rewrite_tif(tif, flat.reshape(len(lines), 10, PX, PX)[::-1].reshape(-1, PX, PX))
    after = reader.read(ref)
    np.testing.assert_array_equal(after.dates["s2"], before.dates["s2"])
    np.testing.assert_array_equal(after.rasters["s2"], before.rasters["s2"])


def test_declared_nodata_pixels_are_missing_not_values(copy: Path) -> None:
    """S1 pixels at the GeoTIFF's no-data value become NaN, S2 ones 0 (no mask; D22)."""
    reader, name = _first(copy)
    ref = reader.index()[0]
    before = reader.read(ref)
    s1_tif, s2_tif = copy / raster_path("s1", name), copy / raster_path("s2", name)
    s1, _ = _tif(s1_tif)
    s1[1, :3] = -9999.0  # date 0, VH, three rows
    _rewrite_tif(s1_tif, s1, nodata=-9999.0)
    s2, _ = _tif(s2_tif)
    s2[12, 0, :5] = 65535  # date 1, band B4
    _rewrite_tif(s2_tif, s2, nodata=65535)
    after = reader.read(ref)
    assert np.isnan(after.rasters["s1"][0, 1, :3]).all()
    assert np.isfinite(after.rasters["s1"][0, 1, 3:]).all()
    np.testing.assert_array_equal(after.rasters["s1"][1:], before.rasters["s1"][1:])
    assert (after.rasters["s2"][1, 2, 0, :5] == 0).all()
    np.testing.assert_array_equal(after.rasters["s2"][1, 2, 1:], before.rasters["s2"][1, 2, 1:])


def _raises(reader: Reader, name: str, path: Path, match: str) -> None:
    with pytest.raises(RawFormatError, match=match) as err:
        _read_one(reader, name)
    assert err.value.path == str(path)


def test_truncated_and_corrupt_png(copy: Path) -> None:
    reader, name = _first(copy)
    path = copy / raster_path("aerial", name)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _raises(reader, name, path, "complete PNG.*truncated")
    corrupt = bytearray(data)
    corrupt[len(data) // 2] ^= 0xFF  # inside the image data
    path.write_bytes(bytes(corrupt))
    _raises(reader, name, path, "valid CRC.*IDAT")
    path.write_bytes(b"GIF89a" + data[6:])
    _raises(reader, name, path, "PNG signature")


def test_png_band_count_depth_and_size(copy: Path) -> None:
    reader, name = _first(copy)
    path = copy / raster_path("aerial", name)
    rgba = reader.read(reader.index()[0]).rasters["aerial"][0]
    _write_png(path, rgba[:3])
    _raises(reader, name, path, "4-band 8-bit.*found 3 band")
    _write_png(path, rgba.astype(np.uint16) * 200)
    _raises(reader, name, path, "4-band 8-bit.*of 16 bit")
    _write_png(path, rgba[:, :32, :32])
    _raises(reader, name, path, f"{PX}x{PX} pixels, found 32x32")
    path.unlink()
    _raises(reader, name, path, "no such file")


def test_truncated_geotiff(copy: Path) -> None:
    reader, name = _first(copy)
    path = copy / raster_path("s1", name)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _raises(reader, name, path, "readable GeoTIFF")


def test_band_count_differs_from_the_date_file(copy: Path) -> None:
    reader, name = _first(copy)
    date_file = copy / dates_path("s2", name)
    lines = date_file.read_text().splitlines()
    date_file.write_text("\n".join(lines[:-1]) + "\n")  # one date fewer than the raster holds
    t = len(lines) - 1
    tif = copy / raster_path("s2", name)
    with pytest.raises(RawFormatError, match=f"{10 * t} bands.*found {10 * t + 10} bands") as err:
        _read_one(reader, name)
    assert err.value.path == str(tif) and str(date_file) in str(err.value)


def test_wrong_spatial_size(copy: Path) -> None:
    reader, name = _first(copy)
    path = copy / raster_path("s1", name)
    flat, _ = _tif(path)
    _rewrite_tif(path, flat[:, :32, :32])
    _raises(reader, name, path, f"{PX}x{PX} pixels, found 32x32")


def test_s1_crs_or_footprint_disagrees_with_s2(copy: Path) -> None:
    reader, name = _first(copy)
    epsg = parse_tile_name(name)[0]
    s1, s2 = copy / raster_path("s1", name), copy / raster_path("s2", name)
    flat, profile = _tif(s1)
    _rewrite_tif(s1, flat, crs=f"EPSG:{epsg + 1}")
    _raises(reader, name, s1, re.escape(f"CRS of {s2} (EPSG:{epsg}), found EPSG:{epsg + 1}"))
    shifted = profile["transform"] @ rasterio.Affine.translation(1, 0)  # one pixel east
    _rewrite_tif(s1, flat, crs=profile["crs"], transform=shifted)
    _raises(reader, name, s1, re.escape(f"footprint of {s2}"))


def test_s2_crs_disagrees_with_the_tile_name(copy: Path) -> None:
    reader, name = _first(copy)
    epsg = parse_tile_name(name)[0]
    for mod in ("s2", "s1"):
        flat, _ = _tif(copy / raster_path(mod, name))
        _rewrite_tif(copy / raster_path(mod, name), flat, crs="EPSG:32619")
    s2 = copy / raster_path("s2", name)
    _raises(reader, name, s2, re.escape(f"CRS EPSG:{epsg} (tile {name}), found EPSG:32619"))


def test_bad_date_files(copy: Path) -> None:
    reader, name = _first(copy)
    naip = copy / dates_path("aerial", name)
    naip.unlink()
    _raises(reader, name, naip, "no such file")
    naip.write_text("\n")
    _raises(reader, name, naip, "at least one product name, found an empty file")
    naip.write_text("m_4712230_ne_10_060_2019xx20\n")
    _raises(reader, name, naip, "ending in _YYYYMMDD")
    s1 = copy / dates_path("s1", name)
    naip.write_text("m_4712230_ne_10_060_20190720\n")
    s1.write_text("S1A_IW_GRDH_1SDV_20190105T015123\n")
    with pytest.raises(RawFormatError, match=r"token \[-5\].*line 1") as err:
        reader.index()
    assert err.value.path == str(s1)
    s1.unlink()
    with pytest.raises(RawFormatError, match="no such file") as err:
        reader.index()
    assert err.value.path == str(s1)


def test_bad_split_csvs(copy: Path) -> None:
    (copy / "val.csv").unlink()
    with pytest.raises(RawFormatError, match="no such file") as err:
        Reader(STORE, copy)
    assert err.value.path == str(copy / "val.csv")
    train = pd.read_csv(copy / "train.csv", dtype=str)
    train.to_csv(copy / "val.csv", index=False)
    with pytest.raises(RawFormatError, match="in one split only, found also in train") as err:
        Reader(STORE, copy)
    assert err.value.path == str(copy / "val.csv")
    train.rename(columns={"name": "tile"}).to_csv(copy / "val.csv", index=False)
    with pytest.raises(RawFormatError, match="a column name, found \\['tile'\\]"):
        Reader(STORE, copy)


def test_convert_and_dataset(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "s2_naip.zarr"
    summary = convert(get_reader(STORE, demo), out, shard_samples=4)
    n = CFG.n_train + CFG.n_val + CFG.n_test
    assert summary["n_samples"] == n
    assert summary["splits"]["default"] == {"train": 3, "val": 1, "test": 2}
    store = Store(out)
    assert sorted(store.group.group_keys()) == ["aerial", "s1", "s2"]
    spec = CATALOG.dataset("s2_naip")
    ds = MaestroDataset(out, spec, ("train", "val", "test"), train=True)
    assert len(ds) == n * 25
    item = ds[3]
    shapes = {k: tuple(v.shape) for k, v in item["inputs"].items()}
    assert shapes == {
        "aerial": (1, 4, 48, 48),  # 12 px crop, x4
        "spot": (1, 3, 16, 16),  # its RGB, x4/3
        "s2": (3, 10, 12, 12),
        "s1": (2, 2, 12, 12),
    }
    assert "label" not in item
    assert all(np.isfinite(v.numpy()).all() for v in item["inputs"].values())
    assert (
        0.0 <= float(item["inputs"]["aerial"].min()) <= float(item["inputs"]["aerial"].max()) <= 1
    )


def test_files_of_another_tile_or_an_rgba_png_are_named(copy: Path) -> None:
    """S2 and S1 GeoTIFFs of the neighbouring tile filed under this name, and a PNG whose
    fourth band is a constant alpha channel, are refused naming the file."""
    reader, name = _first(copy)
    png = copy / raster_path("aerial", name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(png) as src:
            rgba = src.read()
    original = png.read_bytes()
    rgba[3] = 255
    _write_png(png, rgba)
    _raises(reader, name, png, "255 on every pixel .an alpha channel")
    png.write_bytes(original)
    for mod in ("s2", "s1"):
        tif = copy / raster_path(mod, name)
        data, profile = _tif(tif)
        t = profile["transform"]
        _rewrite_tif(tif, data, transform=t @ rasterio.Affine.translation(PX, 0))  # +640 m
    _raises(reader, name, copy / raster_path("s2", name), f"footprint of tile {name}")
