"""The PASTIS-HD raw reader: round trip on the demo distribution, clear errors on bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from maestro.data.dates import parse_yyyymmdd
from maestro.data.demo import DemoConfig, generate
from maestro.data.errors import RawFormatError
from maestro.data.readers import get_reader
from maestro.data.readers.pastis_hd import Reader
from maestro.datasets import catalog
from maestro.datasets.spec import StoreSpec

TORCHGEO = "pastis_hd/microsoft_torchgeo__tests_data_pastis/PASTIS-R"
SPOT = "DATA_SPOT/PASTIS_SPOT6_RVB_1M00_2019/SPOT6_RVB_1M00_2019_{}.tif"
SERIES = {
    "s2": "DATA_S2/S2_{}.npy",
    "s1_asc": "DATA_S1A/S1A_{}.npy",
    "s1_des": "DATA_S1D/S1D_{}.npy",
}
DATE_KEYS = {"s2": "dates-S2", "s1_asc": "dates-S1A", "s1_des": "dates-S1D"}


def _store(tile_m: int = 160) -> StoreSpec:
    return catalog({"pastis_hd": {"tile_m": tile_m}}).store("pastis_hd")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pastis_reader") / "PASTIS-HD"
    cfg = DemoConfig(
        n_train=2,
        n_val=1,
        n_test=1,
        acquisitions={"s2": 8, "s1_asc": 6, "s1_des": 5},
        cloudy_fraction=0.5,
        parcels=6,
        seed=11,
    )
    generate(_store(), root, cfg)
    return root


@pytest.fixture
def demo(pristine: Path, tmp_path: Path) -> Path:
    """A private copy of the demo distribution that a test may damage."""
    return Path(shutil.copytree(pristine, tmp_path / "PASTIS-HD"))


def _metadata(root: Path) -> dict:
    return json.loads((root / "metadata.geojson").read_text())


def _rewrite_metadata(root: Path, doc: dict) -> None:
    (root / "metadata.geojson").write_text(json.dumps(doc))


def test_index(demo: Path) -> None:
    refs = get_reader(_store(), demo).index()
    csv_ids = {s: (demo / f"{s}.csv").read_text().split()[1:] for s in ("train", "val", "test")}
    assert [r.sample_id for r in refs] == [*csv_ids["train"], *csv_ids["val"], *csv_ids["test"]]
    feats = {f["id"]: f["properties"] for f in _metadata(demo)["features"]}
    for ref in refs:
        split = next(s for s, ids in csv_ids.items() if ref.sample_id in ids)
        assert ref.splits == {"default": split}
        props = feats[ref.sample_id]
        assert ref.ndates == {m: len(props[k]) for m, k in DATE_KEYS.items()}


def test_read_round_trip(demo: Path) -> None:
    store = _store()
    reader = Reader(store, demo)
    feats = {f["id"]: f["properties"] for f in _metadata(demo)["features"]}
    h, hs = store.modality("s2").pixels(160), store.modality("spot").pixels(160)
    for ref in reader.index():
        pid = ref.sample_id
        sample = reader.read(ref)
        assert sample.sample_id == pid and sample.invalid == {}
        for name, pattern in SERIES.items():
            arr = sample.rasters[name]
            expected = np.load(demo / pattern.format(pid))
            assert arr.dtype == np.dtype(store.modality(name).dtype)
            assert arr.shape == (ref.ndates[name], 10 if name == "s2" else 3, h, h)
            np.testing.assert_array_equal(arr, expected)
            dates = [parse_yyyymmdd(v) for v in feats[pid][DATE_KEYS[name]].values()]
            np.testing.assert_array_equal(sample.dates[name], np.array(dates, dtype=np.int16))
            assert sample.dates[name].dtype == np.int16
        with rasterio.open(demo / SPOT.format(pid)) as src:
            np.testing.assert_array_equal(sample.rasters["spot"], src.read()[None])
            assert sample.bounds == tuple(src.bounds)
        assert sample.rasters["spot"].shape == (1, 3, hs, hs)
        assert sample.rasters["spot"].dtype == np.uint8
        np.testing.assert_array_equal(sample.ref_date, np.array([2019, 182, 0], dtype=np.int16))
        np.testing.assert_array_equal(sample.dates["spot"], sample.ref_date[None])
        target = np.load(demo / f"ANNOTATIONS/TARGET_{pid}.npy")
        assert sample.label.shape == (h, h) and sample.label.dtype == np.uint8
        np.testing.assert_array_equal(sample.label, target[0])


def test_dates_as_json_strings(demo: Path) -> None:
    """GDAL may hand nested properties over as JSON text; both spellings give the same dates."""
    before = Reader(_store(), demo)
    ref = before.index()[0]
    expected = before.read(ref).dates
    doc = _metadata(demo)
    for feat in doc["features"]:
        for key in DATE_KEYS.values():
            feat["properties"][key] = json.dumps(feat["properties"][key])
    _rewrite_metadata(demo, doc)
    sample = Reader(_store(), demo).read(ref)
    for name in SERIES:
        np.testing.assert_array_equal(sample.dates[name], expected[name])


def _first(demo: Path) -> str:
    return (demo / "train.csv").read_text().split()[1]


def test_truncated_npy(demo: Path) -> None:
    pid = _first(demo)
    path = demo / SERIES["s2"].format(pid)
    path.write_bytes(path.read_bytes()[:300])
    reader = Reader(_store(), demo)
    with pytest.raises(RawFormatError, match=r"readable \.npy") as err:
        reader.read(reader.index()[0])
    assert err.value.path == str(path)


def test_wrong_number_of_dates(demo: Path) -> None:
    pid = _first(demo)
    path = demo / SERIES["s1_des"].format(pid)
    np.save(path, np.load(path)[1:])
    reader = Reader(_store(), demo)
    with pytest.raises(RawFormatError, match=r"dates as listed in metadata\.geojson") as err:
        reader.read(reader.index()[0])
    assert err.value.path == str(path)
    assert err.value.found == f"T = {reader.index()[0].ndates['s1_des'] - 1}"


def test_wrong_band_count(demo: Path) -> None:
    pid = _first(demo)
    path = demo / SERIES["s1_asc"].format(pid)
    np.save(path, np.load(path)[:, :2])
    reader = Reader(_store(), demo)
    with pytest.raises(RawFormatError, match="3 channels") as err:
        reader.read(reader.index()[0])
    assert err.value.path == str(path) and err.value.found == "2 channels"


def test_wrong_spatial_size(demo: Path) -> None:
    """A demo tile of 160 m read with the real 1280 m declaration: sizes disagree."""
    reader = Reader(_store(1280), demo)
    with pytest.raises(RawFormatError, match="128 x 128 pixels") as err:
        reader.read(reader.index()[0])
    assert err.value.path.endswith(".npy")


def test_wrong_spot_band_count(demo: Path) -> None:
    pid = _first(demo)
    path = demo / SPOT.format(pid)
    with rasterio.open(path) as src:
        profile, pixels = src.profile, src.read()
    profile.update(count=2, photometric="MINISBLACK")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pixels[:2])
    reader = Reader(_store(), demo)
    with pytest.raises(RawFormatError, match="3 bands") as err:
        reader.read(reader.index()[0])
    assert err.value.path == str(path)


def test_corrupt_geotiff(demo: Path) -> None:
    pid = _first(demo)
    path = demo / SPOT.format(pid)
    path.write_bytes(path.read_bytes()[:200])
    reader = Reader(_store(), demo)
    with pytest.raises(RawFormatError, match="readable GeoTIFF") as err:
        reader.read(reader.index()[0])
    assert err.value.path == str(path)


def test_label_out_of_range(demo: Path) -> None:
    pid = _first(demo)
    path = demo / f"ANNOTATIONS/TARGET_{pid}.npy"
    target = np.load(path)
    target[0, 0, 0] = 42
    np.save(path, target)
    reader = Reader(_store(), demo)
    with pytest.raises(RawFormatError, match=r"class values 0\.\.19") as err:
        reader.read(reader.index()[0])
    assert err.value.path == str(path) and err.value.found == "value 42"


def test_missing_id_property(demo: Path) -> None:
    """Like the original PASTIS metadata: no 'id' (neither property nor feature id)."""
    doc = _metadata(demo)
    for feat in doc["features"]:
        del feat["id"], feat["properties"]["id"]
    _rewrite_metadata(demo, doc)
    with pytest.raises(RawFormatError, match="'id' property") as err:
        Reader(_store(), demo).index()
    assert err.value.path == str(demo / "metadata.geojson")


def test_patch_missing_from_metadata(demo: Path) -> None:
    doc = _metadata(demo)
    gone = doc["features"].pop()["id"]
    _rewrite_metadata(demo, doc)
    with pytest.raises(RawFormatError, match=f"a feature with id '{gone}'") as err:
        Reader(_store(), demo).index()
    assert err.value.path == str(demo / "metadata.geojson")


def test_bad_date_keys(demo: Path) -> None:
    doc = _metadata(demo)
    props = doc["features"][0]["properties"]
    props["dates-S2"] = {str(int(k) + 1): v for k, v in props["dates-S2"].items()}
    _rewrite_metadata(demo, doc)
    with pytest.raises(RawFormatError, match="dates-S2 of patch"):
        Reader(_store(), demo).index()


def test_split_csv_without_image_column(demo: Path) -> None:
    (demo / "val.csv").write_text("patch\n10000\n")
    with pytest.raises(RawFormatError, match="column 'image'") as err:
        Reader(_store(), demo).index()
    assert err.value.path == str(demo / "val.csv")


def test_torchgeo_pastis_r_sample_is_rejected(realdata: Path, tmp_path: Path) -> None:
    """torchgeo's PASTIS-R sample has the real layout but no 'id' / dates in its metadata."""
    root = Path(shutil.copytree(realdata / TORCHGEO, tmp_path / "PASTIS-R"))
    for split, ids in {"train": "0\n1\n2", "val": "3", "test": "4"}.items():
        (root / f"{split}.csv").write_text(f"image\n{ids}\n")
    with pytest.raises(RawFormatError, match="'id' property") as err:
        Reader(_store(320), root).index()
    assert err.value.path == str(root / "metadata.geojson")


@pytest.mark.parametrize(
    ("modality", "dtype", "value", "band"),
    [("s2", np.int32, 40000, "B8"), ("s1_asc", np.float64, 1e6, "VH")],
)
def test_values_beyond_the_storage_dtype_are_an_error(
    demo: Path, modality: str, dtype: type, value: float, band: str
) -> None:
    pid = _first(demo)
    path = demo / SERIES[modality].format(pid)
    arr = np.load(path).astype(dtype)
    store = _store()
    c = store.modality(modality).bands.index(band)
    reader = Reader(store, demo)
    np.save(path, arr)  # a wider dtype whose values fit: read as before
    assert reader.read(reader.index()[0]).rasters[modality].dtype == store.modality(modality).dtype
    arr[0, c, 0, 0] = value
    np.save(path, arr)
    with pytest.raises(RawFormatError, match=f"in band {band} \\(date 0\\)") as err:
        reader.read(reader.index()[0])
    assert err.value.path == str(path) and str(value).rstrip("0").rstrip(".") in err.value.found


def test_random_bytes_in_a_npy_are_not_a_pickle(demo: Path) -> None:
    path = demo / SERIES["s2"].format(_first(demo))
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    reader = Reader(_store(), demo)
    with pytest.raises(RawFormatError, match="NumPy magic") as err:
        reader.read(reader.index()[0])
    assert err.value.path == str(path) and "pickle" not in str(err.value)


def test_spot_at_another_resolution_is_named(demo: Path) -> None:
    """The right pixel count at twice the pixel size covers four times the patch."""
    pid = _first(demo)
    path = demo / SPOT.format(pid)
    with rasterio.open(path) as src:
        profile, pixels = src.profile, src.read()
    t = profile["transform"]
    profile.update(transform=rasterio.Affine(2 * t.a, t.b, t.c, t.d, 2 * t.e, t.f))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pixels)
    reader = Reader(_store(), demo)
    res = _store().modality("spot").resolution_m
    with pytest.raises(RawFormatError, match=rf"{res} m pixels, found {2 * res:g} x") as err:
        reader.read(reader.index()[0])
    assert err.value.path == str(path)


def test_spot_of_another_patch_is_named(demo: Path) -> None:
    """Two patches' SPOT files swapped: each lies on the other's metadata geometry (D27).
    A geometry in degrees (a CRS84 copy) is not compared."""
    reader = Reader(_store(), demo)
    a, b = (r.sample_id for r in reader.index()[:2])
    pa, pb = demo / SPOT.format(a), demo / SPOT.format(b)
    before = reader.read(reader.index()[0]).bounds
    data_a, data_b = pa.read_bytes(), pb.read_bytes()
    pa.write_bytes(data_b)
    pb.write_bytes(data_a)
    with pytest.raises(RawFormatError, match=f"footprint of patch {a} in metadata.geojson") as err:
        Reader(_store(), demo).read(reader.index()[0])
    assert err.value.path == str(pa)
    doc = _metadata(demo)
    ring = [[0, 45], [0, 46], [1, 46], [0, 45]]
    for feature in doc["features"]:  # the geometry as degrees: nothing to compare against
        feature["geometry"] = {"type": "Polygon", "coordinates": [ring]}
    _rewrite_metadata(demo, doc)
    assert Reader(_store(), demo).read(reader.index()[0]).bounds != before
