"""FLAIR-HUB reader: round trip on the demo distribution, date handling, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from maestro.data.dates import parse_yyyymmdd
from maestro.data.demo import DemoConfig, generate
from maestro.data.errors import RawFormatError
from maestro.data.readers import get_reader
from maestro.data.readers.flair_hub import Reader, patch_path, roi_key, split_patch_id
from maestro.datasets import catalog

OVERRIDES = {
    "flair_hub": {"modalities": {"aerial": {"resolution_m": 0.8}, "dem": {"resolution_m": 0.8}}}
}
STORE = catalog(OVERRIDES).store("flair_hub")
CFG = DemoConfig(
    n_train=5,
    n_val=2,
    n_test=2,
    acquisitions={"s2": 5, "s1_asc": 3, "s1_des": 4},
    cloudy_fraction=0.4,
    parcels=5,
    flair2_fraction=0.5,
    seed=11,
)
MTD = "GLOBAL_ALL_MTD"
S2_GPKG = f"{MTD}/GLOBAL_SENTINEL2_MTD_DATES.gpkg"
AERIAL_GPKG = f"{MTD}/GLOBAL_AERIAL_MTD_DATES.gpkg"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flair_hub_reader") / "FLAIR-HUB"
    generate(STORE, root, CFG)
    return root


@pytest.fixture
def copy(demo: Path, tmp_path: Path) -> Path:
    """A private copy of the demo distribution that a test may corrupt."""
    return Path(shutil.copytree(demo, tmp_path / "FLAIR-HUB"))


def _csv(root: Path, name: str) -> list[str]:
    return pd.read_csv(root / name, dtype=str)["patch_id"].tolist()


def _tif(root: Path, pid: str, token: str) -> np.ndarray:
    with rasterio.open(root / patch_path(pid, token)) as src:
        return src.read()


def _rewrite_tif(path: Path, data: np.ndarray) -> None:
    with rasterio.open(path) as src:
        profile = src.profile
    profile.update(count=data.shape[0], height=data.shape[1], width=data.shape[2])
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def test_patch_id_helpers() -> None:
    assert split_patch_id("D032-2019_AA-S1-V18_10-22") == ("D032-2019", "AA-S1-V18", "10-22")
    assert roi_key("D006-2020_FF-S1-14_5-5") == "D006-2020_FF-S1-14"
    for bad in ("D006-2020_FF-S1-14", "D006_FF-S1-14_5-5", "D006-2020_FF_S1_5-5", "a_b_c-d"):
        with pytest.raises(ValueError, match="patch_id"):
            split_patch_id(bad)


def test_index_both_split_schemes(demo: Path) -> None:
    reader = get_reader(STORE, demo)
    assert isinstance(reader, Reader)
    refs = reader.index()
    expected: dict[str, dict[str, str | None]] = {}
    for scheme, suffix in (("default", ""), ("flair2", "_flair2")):
        for split in ("train", "val", "test"):
            for pid in _csv(demo, f"{split}{suffix}.csv"):
                expected.setdefault(pid, {"default": None, "flair2": None})[scheme] = split
    assert {r.sample_id: r.splits for r in refs} == expected
    assert len(refs) == CFG.n_train + CFG.n_val + CFG.n_test
    assert any(r.splits["flair2"] is None for r in refs)
    s2 = gpd.read_file(demo / S2_GPKG).set_index("patch_id")["acquisition_dates"]
    for ref in refs:
        assert set(ref.ndates) == {"s2", "s1_asc", "s1_des"}
        assert ref.ndates["s2"] == len(json.loads(s2[ref.sample_id]))
        assert CFG.acquisitions["s1_des"] <= ref.ndates["s1_des"] <= 5


def test_read_round_trip(demo: Path) -> None:
    reader = Reader(STORE, demo)
    aerial_dates = gpd.read_file(demo / AERIAL_GPKG).set_index("patch_id")["date"]
    s2_dates = gpd.read_file(demo / S2_GPKG).set_index("patch_id")["acquisition_dates"]
    saw_cloud = False
    for ref in reader.index():
        pid = ref.sample_id
        s = reader.read(ref)
        assert s.sample_id == pid
        t = ref.ndates["s2"]
        shapes = {k: (v.shape, v.dtype.name) for k, v in s.rasters.items()}
        assert shapes == {
            "aerial": ((1, 4, 128, 128), "uint8"),
            "dem": ((1, 2, 128, 128), "float32"),
            "s2": ((t, 10, 10, 10), "uint16"),
            "s1_asc": ((ref.ndates["s1_asc"], 2, 10, 10), "float32"),
            "s1_des": ((ref.ndates["s1_des"], 2, 10, 10), "float32"),
        }
        # date-major band stacking: band t*C + c of the file is date t, channel c
        flat = _tif(demo, pid, "SENTINEL2_TS")
        np.testing.assert_array_equal(s.rasters["s2"][t - 1, 3], flat[(t - 1) * 10 + 3])
        s1_des = _tif(demo, pid, "SENTINEL1-DESC_TS")
        np.testing.assert_array_equal(s.rasters["s1_des"].reshape(-1, 10, 10), s1_des)
        np.testing.assert_array_equal(s.rasters["aerial"][0], _tif(demo, pid, "AERIAL_RGBI"))
        mask = _tif(demo, pid, "SENTINEL2_MSK-SC").reshape(t, 2, 10, 10)
        assert s.invalid["s2"].shape == (t, 10, 10) and s.invalid["s2"].dtype == bool
        np.testing.assert_array_equal(s.invalid["s2"], (mask > 0).any(axis=1))
        saw_cloud |= bool(s.invalid["s2"].any())
        label = _tif(demo, pid, "AERIAL_LABEL-COSIA")[0]
        assert s.label.shape == (128, 128) and s.label.dtype == np.uint8
        np.testing.assert_array_equal(s.label, label)
        # dates: aerial date for aerial, dem and ref_date; Sentinel dates from the table
        want = np.array(parse_yyyymmdd(aerial_dates[pid]), dtype=np.int16)
        np.testing.assert_array_equal(s.ref_date, want)
        assert s.ref_date.shape == (3,) and s.ref_date.dtype == np.int16
        for mod in ("aerial", "dem"):
            np.testing.assert_array_equal(s.dates[mod], want[None])
        stamps = json.loads(s2_dates[pid]).values()
        np.testing.assert_array_equal(s.dates["s2"], [parse_yyyymmdd(d) for d in stamps])
        assert s.dates["s2"].dtype == np.int16 and s.dates["s2"].shape == (t, 3)
        with rasterio.open(demo / patch_path(pid, "AERIAL_RGBI")) as src:
            assert s.bounds == tuple(src.bounds)
    assert saw_cloud


def test_unknown_day_becomes_day_one(demo: Path) -> None:
    dates = gpd.read_file(demo / AERIAL_GPKG).set_index("patch_id")["date"]
    pid = next(p for p, d in dates.items() if d.endswith("00"))
    reader = Reader(STORE, demo)
    ref = next(r for r in reader.index() if r.sample_id == pid)
    sample = reader.read(ref)
    year, month = int(dates[pid][:4]), int(dates[pid][4:6])
    first = (np.datetime64(f"{year}-{month:02d}-01") - np.datetime64(f"{year}-01-01")).astype(int)
    assert sample.ref_date.tolist() == [year, first + 1, 0]
    assert sample.dates["dem"].tolist() == [[year, first + 1, 0]]


def test_sentinel_dates_fall_back_to_the_roi_key(copy: Path) -> None:
    """MAESTRO keys Sentinel dates by <DOMAIN>-<YEAR>_<ROI>: one row per ROI is enough."""
    df = gpd.read_file(copy / S2_GPKG)
    full = dict(zip(df["patch_id"], df["acquisition_dates"], strict=True))
    df["patch_id"] = [roi_key(p) for p in df["patch_id"]]
    df.drop_duplicates("patch_id").to_file(copy / S2_GPKG, driver="GPKG")
    reader = Reader(STORE, copy)
    for ref in reader.index():
        assert ref.ndates["s2"] == len(json.loads(full[ref.sample_id]))
    assert reader.read(ref).rasters["s2"].shape[0] == ref.ndates["s2"]


def test_conflicting_date_rows_or_zero_padded_keys(copy: Path) -> None:
    """Two rows for one patch with other dates are an error naming the table (the last row
    won before); identical rows are fine; keys "01", "02" are keys 1, 2 (a KeyError before)."""
    import pandas as pd

    df = gpd.read_file(copy / AERIAL_GPKG)
    twin = df.iloc[[0]].copy()
    pd.concat([df, twin]).to_file(copy / AERIAL_GPKG, driver="GPKG")
    Reader(STORE, copy)  # an identical duplicate
    twin["date"] = "20180615"
    pd.concat([df, twin]).to_file(copy / AERIAL_GPKG, driver="GPKG")
    with pytest.raises(RawFormatError, match=f"one row of dates for {df['patch_id'][0]}") as err:
        Reader(STORE, copy)
    assert err.value.path == str(copy / AERIAL_GPKG) and "20180615" in str(err.value)
    df.to_file(copy / AERIAL_GPKG, driver="GPKG")
    s2 = gpd.read_file(copy / S2_GPKG)
    first = json.loads(s2["acquisition_dates"][0])
    s2.loc[0, "acquisition_dates"] = json.dumps({f"{int(k):02d}": v for k, v in first.items()})
    s2.to_file(copy / S2_GPKG, driver="GPKG")
    reader = Reader(STORE, copy)
    ref = next(r for r in reader.index() if r.sample_id == s2["patch_id"][0])
    assert ref.ndates["s2"] == len(first)


def test_truncated_geotiff(copy: Path) -> None:
    reader = Reader(STORE, copy)
    ref = reader.index()[0]
    path = copy / patch_path(ref.sample_id, "AERIAL_RGBI")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(RawFormatError, match="readable GeoTIFF") as err:
        reader.read(ref)
    assert err.value.path == str(path)


def test_s2_band_count_not_a_multiple_of_the_dates(copy: Path) -> None:
    reader = Reader(STORE, copy)
    ref = reader.index()[1]
    path = copy / patch_path(ref.sample_id, "SENTINEL2_TS")
    _rewrite_tif(path, _tif(copy, ref.sample_id, "SENTINEL2_TS")[:-1])
    t = ref.ndates["s2"]
    with pytest.raises(RawFormatError, match=f"{10 * t} bands.*found {10 * t - 1} bands") as err:
        reader.read(ref)
    assert err.value.path == str(path) and "GLOBAL_SENTINEL2_MTD_DATES.gpkg" in str(err.value)


def test_wrong_spatial_size(copy: Path) -> None:
    reader = Reader(STORE, copy)
    ref = reader.index()[0]
    path = copy / patch_path(ref.sample_id, "DEM_ELEV")
    _rewrite_tif(path, _tif(copy, ref.sample_id, "DEM_ELEV")[:, :64, :64])
    with pytest.raises(RawFormatError, match="128x128 pixels, found 64x64") as err:
        reader.read(ref)
    assert err.value.path == str(path)


def test_missing_file(copy: Path) -> None:
    reader = Reader(STORE, copy)
    ref = reader.index()[0]
    path = copy / patch_path(ref.sample_id, "SENTINEL2_MSK-SC")
    path.unlink()
    with pytest.raises(RawFormatError, match="no such file") as err:
        reader.read(ref)
    assert err.value.path == str(path)


@pytest.mark.parametrize("table", [AERIAL_GPKG, S2_GPKG])
def test_missing_date_row(copy: Path, table: str) -> None:
    df = gpd.read_file(copy / table)
    victim = df["patch_id"].iloc[0]
    # drop the patch and, for Sentinel tables, every row of its ROI (no ROI-key fallback left)
    key = df["patch_id"].map(roi_key) if "SENTINEL" in table else df["patch_id"]
    df[key != (roi_key(victim) if "SENTINEL" in table else victim)].to_file(copy / table)
    with pytest.raises(RawFormatError, match=f"row for patch {victim}") as err:
        Reader(STORE, copy).index()
    assert err.value.path == str(copy / table)


def test_missing_split_csv_and_bad_patch_id(copy: Path) -> None:
    (copy / "val_flair2.csv").unlink()
    with pytest.raises(RawFormatError, match="no such file") as err:
        Reader(STORE, copy)
    assert err.value.path == str(copy / "val_flair2.csv")
    pd.DataFrame({"patch_id": ["D006-2020_FF-S1-14"]}).to_csv(copy / "val_flair2.csv")
    with pytest.raises(RawFormatError, match="<ROI>") as err:
        Reader(STORE, copy)
    assert err.value.path == str(copy / "val_flair2.csv")


def _move_tif(path: Path, **changes: object) -> None:
    """Rewrite a GeoTIFF with the same values and a changed transform or CRS."""
    with rasterio.open(path) as src:
        profile, data = src.profile, src.read()
    profile.update(changes)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def test_a_tile_of_another_patch_is_named(copy: Path) -> None:
    """A label (or S2 series) filed under this id but lying one patch east is not read."""
    reader = Reader(STORE, copy)
    ref = reader.index()[0]
    for token in ("AERIAL_LABEL-COSIA", "SENTINEL2_TS", "SENTINEL2_MSK-SC"):
        path = copy / patch_path(ref.sample_id, token)
        with rasterio.open(path) as src:
            t = src.transform
        _move_tif(path, transform=rasterio.Affine(t.a, t.b, t.c + STORE.tile_m, t.d, t.e, t.f))
        with pytest.raises(
            RawFormatError, match=r"the footprint of .*AERIAL_RGBI.*\(within"
        ) as err:
            reader.read(ref)
        assert err.value.path == str(path)
        _move_tif(path, transform=t)  # back in place: the next file is the one named
    assert reader.read(ref).bounds is not None


def test_a_tile_in_another_crs_or_resolution_is_named(copy: Path) -> None:
    reader = Reader(STORE, copy)
    ref = reader.index()[0]
    dem = copy / patch_path(ref.sample_id, "DEM_ELEV")
    _move_tif(dem, crs="EPSG:32631")
    with pytest.raises(RawFormatError, match=r"expected the CRS of .*found EPSG:32631") as err:
        reader.read(ref)
    assert err.value.path == str(dem)
    # the aerial image at 0.2 m instead of the declared 0.8 m, same pixel count: 25.6 m wide
    aerial = copy / patch_path(ref.sample_id, "AERIAL_RGBI")
    with rasterio.open(aerial) as src:
        t = src.transform
    _move_tif(aerial, transform=rasterio.Affine(t.a / 4, t.b, t.c, t.d, t.e / 4, t.f))
    with pytest.raises(RawFormatError, match=r"footprint of 102.4 x 102.4 m.*found 25.6 x 25.6"):
        reader.read(ref)


def test_check_footprints_tolerates_half_a_pixel(tmp_path: Path) -> None:
    from maestro.data.readers.flair_hub import Footprint, check_footprints

    crs = rasterio.crs.CRS.from_epsg(2154)
    ref = (Footprint(tmp_path / "a.tif", (0.0, 0.0, 102.4, 102.4), crs), 0.2)
    near = Footprint(tmp_path / "s2.tif", (5.0, -5.0, 107.4, 97.4), crs)  # < 5.12 m off
    check_footprints(ref, [(near, 10.24)], 102.4)
    far = Footprint(tmp_path / "s2.tif", (5.2, 0.0, 107.6, 102.4), crs)
    with pytest.raises(RawFormatError, match=r"within 5.12 m"):
        check_footprints(ref, [(far, 10.24)], 102.4)


def _with_nodata(path: Path, value: float, where: tuple[slice, ...]) -> np.ndarray:
    """Write ``value`` at ``where`` of a GeoTIFF and declare it its no-data value."""
    with rasterio.open(path) as src:
        profile, data = src.profile, src.read()
    data[where] = value
    profile.update(nodata=value)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return data


def test_declared_nodata_pixels_are_missing_not_values(copy: Path) -> None:
    """-9999 in an S1 band, -99999 in a DEM, 0 at an S2 swath edge: NaN in float series,
    flagged invalid in the (integer) S2 series; a label keeps its values (decision D22)."""
    reader = Reader(STORE, copy)
    ref = reader.index()[0]
    pid = ref.sample_id
    before = reader.read(ref)
    _with_nodata(copy / patch_path(pid, "SENTINEL1-ASC_TS"), -9999.0, (0, slice(0, 2)))
    _with_nodata(copy / patch_path(pid, "DEM_ELEV"), -99999.0, (1, 0, slice(0, 5)))
    _with_nodata(copy / patch_path(pid, "SENTINEL2_TS"), 0, (slice(0, 10), 3, slice(None)))
    label = _with_nodata(copy / patch_path(pid, "AERIAL_LABEL-COSIA"), 0, (0, 0, slice(0, 4)))
    got = reader.read(ref)
    s1 = got.rasters["s1_asc"]
    assert np.isnan(s1[0, 0, :2]).all() and np.isfinite(s1[0, 0, 2:]).all()
    np.testing.assert_array_equal(s1[1:], before.rasters["s1_asc"][1:])
    dem = got.rasters["dem"][0]
    assert np.isnan(dem[1, 0, :5]).all() and np.isfinite(dem[0]).all()
    # S2: the 10 bands of date 0 hold 0 on row 3 -> flagged invalid there, values kept
    inv, was = got.invalid["s2"], before.invalid["s2"]
    assert inv[0, 3].all() and (inv[0, :3] == was[0, :3]).all() and (inv[1:] == was[1:]).all()
    assert got.rasters["s2"].dtype == np.uint16
    np.testing.assert_array_equal(got.label, label[0])  # class values stay themselves


def test_geotiff_profile_says_how_to_read_the_values(copy: Path) -> None:
    """An S1 band packed as uint16 with a scale tag is unpacked; an S2 internal mask flags
    its pixels invalid; an aerial file whose band descriptions say B, G, R, NIR is refused
    (decision D25)."""
    reader = Reader(STORE, copy)
    ref = reader.index()[0]
    pid = ref.sample_id
    before = reader.read(ref)
    s1 = copy / patch_path(pid, "SENTINEL1-ASC_TS")
    with rasterio.open(s1) as src:
        profile, data = src.profile, src.read()
    packed = np.round(data / 1e-4).astype(np.uint16)
    profile.update(dtype="uint16")
    with rasterio.open(s1, "w", **profile) as dst:
        dst.write(packed)
        dst.scales = (1e-4,) * packed.shape[0]
    s2 = copy / patch_path(pid, "SENTINEL2_TS")
    mask = np.full(before.invalid["s2"].shape[1:], 255, np.uint8)
    mask[:, :2] = 0
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(s2, "r+") as dst:
        dst.write_mask(mask)
    got = reader.read(ref)
    unpacked = packed.reshape(got.rasters["s1_asc"].shape) * 1e-4
    np.testing.assert_allclose(got.rasters["s1_asc"], unpacked, rtol=1e-6)
    np.testing.assert_allclose(got.rasters["s1_asc"], before.rasters["s1_asc"], atol=6e-5)
    assert got.invalid["s2"][:, :, :2].all()
    np.testing.assert_array_equal(got.invalid["s2"][:, :, 2:], before.invalid["s2"][:, :, 2:])
    aerial = copy / patch_path(pid, "AERIAL_RGBI")
    with rasterio.open(aerial, "r+") as dst:
        dst.descriptions = ("B", "G", "R", "NIR")
    with pytest.raises(RawFormatError, match="order R, G, B, NIR") as err:
        reader.read(ref)
    assert err.value.path == str(aerial)


def test_dates_of_another_campaign_year_are_named(copy: Path) -> None:
    """A patch ``D006-2020_...`` flown in 2017, or Sentinel series two years off its
    campaign: another campaign's table rows (the 15-year date window lets them through)."""
    reader = Reader(STORE, copy)
    ref = reader.index()[0]
    pid = ref.sample_id
    year = int(pid.split("_")[0].split("-")[1])
    df = gpd.read_file(copy / AERIAL_GPKG)
    row = df["patch_id"] == pid
    good = df.loc[row, "date"].iloc[0]
    df.loc[row, "date"] = f"{year - 3}{good[4:]}"
    df.to_file(copy / AERIAL_GPKG, driver="GPKG")
    with pytest.raises(RawFormatError, match=f"aerial date in {year} for {pid}") as err:
        Reader(STORE, copy).read(ref)
    assert err.value.path == str(copy / AERIAL_GPKG)
    df.loc[row, "date"] = good
    df.to_file(copy / AERIAL_GPKG, driver="GPKG")
    s2 = gpd.read_file(copy / S2_GPKG)
    row = s2["patch_id"] == pid
    dates = json.loads(s2.loc[row, "acquisition_dates"].iloc[0])
    s2.loc[row, "acquisition_dates"] = json.dumps(
        {k: f"{year - 2}{v[4:]}" for k, v in dates.items()}
    )
    s2.to_file(copy / S2_GPKG, driver="GPKG")
    with pytest.raises(RawFormatError, match=f"s2 dates of {pid} within 1 year") as err:
        Reader(STORE, copy).read(ref)
    assert err.value.path == str(copy / S2_GPKG)
