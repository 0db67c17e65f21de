"""The TreeSatAI-TS reader on the real fixture, on demo output and on broken input."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from maestro.data.dates import product_date
from maestro.data.demo import DemoConfig, generate
from maestro.data.errors import RawFormatError
from maestro.data.readers import get_reader
from maestro.data.readers.treesatai_ts import Reader
from maestro.data.sample import SampleRef
from maestro.datasets import catalog
from maestro.datasets.treesatai_ts import GENERA

REAL = "treesatai_ts/IGNF_MAESTRO__tests_data"
ACQ = {"s2": 10, "s1_asc": 5, "s1_des": 7}


def _store():
    return catalog().store("treesatai_ts")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("treesat") / "TreeSatAI-TS"
    generate(_store(), root, DemoConfig(n_train=3, n_val=1, n_test=1, acquisitions=ACQ, seed=5))
    return root


@pytest.fixture
def broken(demo: Path, tmp_path: Path) -> tuple[Reader, SampleRef]:
    """A writable copy of the demo and the reader + first sample over it."""
    root = tmp_path / "copy"
    shutil.copytree(demo, root)
    reader = Reader(_store(), root)
    return reader, reader.index()[0]


def _paths(reader: Reader, ref: SampleRef) -> tuple[Path, Path]:
    stem = ref.sample_id
    (h5,) = (reader.root / "sentinel-ts").glob(f"{stem}_*.h5")
    return reader.root / "aerial" / f"{stem}.tif", h5


# --- the real fixture ------------------------------------------------------------------
def test_real_sample(realdata: Path) -> None:
    root = realdata / REAL
    reader = get_reader(_store(), root)
    with pytest.warns(UserWarning, match="already in train.csv"):
        refs = reader.index()  # the fixture lists the same row in train, val and test
    assert refs == [
        SampleRef(
            "Betula_spec._1_15679_WEFL_NLF",
            {"default": "train"},
            {"s2": 146, "s1_asc": 115, "s1_des": 235},
        )
    ]
    s = reader.read(refs[0])
    assert s.rasters["aerial"].shape == (1, 4, 300, 300) and s.rasters["aerial"].dtype == np.uint8
    assert s.rasters["s2"].shape == (146, 10, 6, 6) and s.rasters["s2"].dtype == np.float32
    assert s.rasters["s1_asc"].shape == (115, 2, 6, 6)
    assert s.rasters["s1_des"].shape == (235, 2, 6, 6)
    assert np.isnan(s.rasters["s1_des"]).sum() == 4  # kept as distributed
    assert s.dates["s2"].dtype == np.int16 and s.dates["s2"].shape == (146, 3)
    assert tuple(s.dates["s2"][0]) == (2019, 3, 0)
    assert tuple(s.dates["s1_asc"][0]) == (2019, 1, 0)
    assert (s.dates["s1_des"][:, 0] == 2019).all()
    assert tuple(s.ref_date) == (2019, 182, 0) and s.ref_date.dtype == np.int16
    assert tuple(s.dates["aerial"][0]) == (2019, 182, 0)
    expected = dict.fromkeys(GENERA, 0.0) | {
        "Betula": 0.72542,
        "Quercus": 0.04406,
        "Picea": 0.10447,
    }
    assert s.label.dtype == np.float32
    np.testing.assert_allclose(s.label, [expected[g] for g in GENERA], atol=1e-7)
    # centred window: 2 px border, band order NIR, G, B, R (NIR brightest)
    with rasterio.open(next((root / "aerial").glob("*.tif"))) as src:
        window = src.read(window=Window(2, 2, 300, 300))
    np.testing.assert_array_equal(s.rasters["aerial"][0], window)
    np.testing.assert_allclose(
        s.rasters["aerial"][0].reshape(4, -1).mean(1), [172.6, 83.1, 83.0, 69.6], atol=0.1
    )
    np.testing.assert_allclose(s.bounds, (428370.4, 5862901.8, 428430.4, 5862961.8), atol=1e-3)
    with h5py.File(next((root / "sentinel-ts").glob("*.h5")), "r") as f:
        masks = f["sen-2-masks"][()]
    assert s.invalid["s2"].dtype == bool
    np.testing.assert_array_equal(s.invalid["s2"], (masks > 0).any(axis=1))
    assert 0 < s.invalid["s2"].mean() < 1


# --- demo round trip -------------------------------------------------------------------
def test_demo_round_trip(demo: Path) -> None:
    reader = get_reader(_store(), demo)
    refs = reader.index()
    rows = {}
    for split in ("train", "val", "test"):
        with (demo / f"{split}.csv").open(newline="") as fh:
            rows |= {Path(r["aerial_name"]).stem: (split, r) for r in csv.DictReader(fh)}
    assert [r.sample_id for r in refs] == list(rows)
    for ref in refs:
        split, row = rows[ref.sample_id]
        assert ref.splits == {"default": split}
        s = reader.read(ref)
        assert {m: s.rasters[m].shape[0] for m in ref.ndates} == ref.ndates == ACQ
        np.testing.assert_array_equal(s.label, np.array([row[g] for g in GENERA], np.float32))
        assert s.label.sum() == pytest.approx(1.0, abs=1e-5)
        assert s.rasters["aerial"].shape == (1, 4, 300, 300)
        aerial, h5 = _paths(reader, ref)
        with rasterio.open(aerial) as src:
            np.testing.assert_array_equal(s.rasters["aerial"][0], src.read()[:, 2:302, 2:302])
        with h5py.File(h5, "r") as f:
            np.testing.assert_array_equal(s.rasters["s2"], f["sen-2-data"][()])
            np.testing.assert_array_equal(s.invalid["s2"], (f["sen-2-masks"][()] > 0).any(1))
            names = f["sen-1-des-products"][()]
        assert [tuple(d) for d in s.dates["s1_des"]] == [product_date(n) for n in names]
        year = int(h5.stem.rsplit("_", 1)[1])
        assert (s.dates["s2"][:, 0] == year).all() and s.ref_date[0] == year
        minx, miny, maxx, maxy = s.bounds
        assert (maxx - minx, maxy - miny) == pytest.approx((60.0, 60.0))


# --- broken input ----------------------------------------------------------------------
def _raises(reader: Reader, ref: SampleRef, path: Path, match: str) -> None:
    with pytest.raises(RawFormatError, match=match) as info:
        reader.read(ref)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_truncated_geotiff(broken: tuple[Reader, SampleRef]) -> None:
    reader, ref = broken
    aerial, _ = _paths(reader, ref)
    aerial.write_bytes(aerial.read_bytes()[: aerial.stat().st_size // 2])
    _raises(reader, ref, aerial, "readable GeoTIFF")


def test_truncated_hdf5(broken: tuple[Reader, SampleRef]) -> None:
    reader, ref = broken
    _, h5 = _paths(reader, ref)
    h5.write_bytes(h5.read_bytes()[: h5.stat().st_size // 2])
    _raises(reader, ref, h5, "readable HDF5")
    with pytest.raises(RawFormatError, match="truncated"):
        reader.index()


def _rewrite_aerial(path: Path, data: np.ndarray) -> None:
    with rasterio.open(path) as src:
        profile = src.profile
    profile.update(count=data.shape[0], height=data.shape[1], width=data.shape[2])
    profile.pop("photometric", None)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def test_three_band_aerial(broken: tuple[Reader, SampleRef]) -> None:
    reader, ref = broken
    aerial, _ = _paths(reader, ref)
    _rewrite_aerial(aerial, np.zeros((3, 304, 304), np.uint8))
    _raises(reader, ref, aerial, r"expected 4 bands .* found 3")


def test_too_small_aerial(broken: tuple[Reader, SampleRef]) -> None:
    reader, ref = broken
    aerial, _ = _paths(reader, ref)
    _rewrite_aerial(aerial, np.zeros((4, 200, 200), np.uint8))
    _raises(reader, ref, aerial, r"at least 300x300 px .* found 200x200 px")


def test_missing_hdf5_key(broken: tuple[Reader, SampleRef]) -> None:
    reader, ref = broken
    _, h5 = _paths(reader, ref)
    with h5py.File(h5, "a") as f:
        del f["sen-2-masks"]
    _raises(reader, ref, h5, "'sen-2-masks'")


def test_wrong_s2_size(broken: tuple[Reader, SampleRef]) -> None:
    reader, ref = broken
    _, h5 = _paths(reader, ref)
    with h5py.File(h5, "a") as f:
        del f["sen-2-data"]
        f["sen-2-data"] = np.ones((ACQ["s2"], 10, 5, 5), np.float32)
    _raises(reader, ref, h5, r"\(T, 10, 6, 6\), found \(10, 10, 5, 5\)")


def test_bad_product_name(broken: tuple[Reader, SampleRef]) -> None:
    reader, ref = broken
    _, h5 = _paths(reader, ref)
    with h5py.File(h5, "a") as f:
        names = f["sen-1-asc-products"][()]
        names[1] = b"S1A_IW_GRDH_1SDV_2019XXXX_x_y_z_w"
        del f["sen-1-asc-products"]
        f.create_dataset("sen-1-asc-products", data=names, dtype=h5py.string_dtype())
    _raises(reader, ref, h5, "product names")


def test_csv_row_with_missing_file(broken: tuple[Reader, SampleRef]) -> None:
    reader, ref = broken
    _, h5 = _paths(reader, ref)
    h5.unlink()
    with pytest.raises(RawFormatError, match="missing") as info:
        Reader(_store(), reader.root).index()
    assert info.value.path == str(reader.root / "train.csv") and str(h5) in str(info.value)


def test_csv_header_must_name_the_genera(broken: tuple[Reader, SampleRef]) -> None:
    reader, _ = broken
    path = reader.root / "val.csv"
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace("Quercus", "Qercus")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RawFormatError, match="Qercus") as info:
        Reader(_store(), reader.root).index()
    assert info.value.path == str(path)


def test_csv_class_columns_are_matched_by_name(broken: tuple[Reader, SampleRef]) -> None:
    reader, ref = broken
    before = reader.read(ref).label
    path = reader.root / "train.csv"
    with path.open(newline="") as fh:
        table = list(csv.reader(fh))
    order = [0, 1, 2, *range(len(table[0]) - 1, 2, -1)]  # genus columns reversed
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([[r[i] for i in order] for r in table])
    np.testing.assert_array_equal(Reader(_store(), reader.root).read(ref).label, before)


def test_split_csv_with_a_byte_order_mark_or_not_utf8(broken: tuple[Reader, SampleRef]) -> None:
    reader, _ = broken
    path = reader.root / "train.csv"
    text = path.read_bytes()
    path.write_bytes(b"\xef\xbb\xbf" + text)  # saved by a spreadsheet: read as plain UTF-8
    assert [r.sample_id for r in Reader(_store(), reader.root).index()] == [
        r.sample_id for r in reader.index()
    ]
    path.write_bytes(text.replace(b"\n", b"\n\xe9", 1))  # Latin-1 bytes
    with pytest.raises(RawFormatError, match="UTF-8 text") as err:
        Reader(_store(), reader.root).index()
    assert err.value.path == str(path) and "0xe9" in err.value.found


def test_csv_row_pairing_another_tiles_series_is_named(broken: tuple[Reader, SampleRef]) -> None:
    """Two rows' sen_name swapped: both files exist, but each image gets the other's series."""
    reader, _ = broken
    path = reader.root / "train.csv"
    with path.open(newline="") as fh:
        table = list(csv.reader(fh))
    table[1][1], table[2][1] = table[2][1], table[1][1]
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(table)
    with pytest.raises(RawFormatError, match=r"sen_name .*_<YYYY>\.h5 on line 2") as info:
        Reader(_store(), reader.root).index()
    assert info.value.path == str(path) and table[1][1] in str(info.value)


def test_same_tile() -> None:
    from maestro.data.readers.treesatai_ts import same_tile

    tif = "Betula_spec._1_15679_WEFL_NLF.tif"
    assert same_tile(tif, "Betula_spec._1_15679_WEFL_NLF_2019.h5")
    assert not same_tile(tif, "Betula_spec._1_15680_WEFL_NLF_2019.h5")
    assert not same_tile(tif, "Betula_spec._1_15679_WEFL_NLF.h5")
    assert not same_tile(tif, "Betula_spec._1_15679_WEFL_NLF_2019.tif")


@pytest.mark.parametrize("value", [np.nan, -1.0, 101.0])
def test_cloud_probabilities_outside_0_100_are_named(
    broken: tuple[Reader, SampleRef], value: float
) -> None:
    """A NaN or -1 probability read as "clear" (> 0 is False) before."""
    reader, ref = broken
    _, h5 = _paths(reader, ref)
    with h5py.File(h5, "a") as f:
        masks = f["sen-2-masks"][()].astype(np.float32)
        masks[1, 0, 2, 3] = value
        del f["sen-2-masks"]
        f["sen-2-masks"] = masks
    _raises(reader, ref, h5, r"probabilities in \[0, 100\], found .* at date 1, channel 0")


def test_numeric_product_names_and_an_all_zero_label_row(broken: tuple[Reader, SampleRef]) -> None:
    reader, ref = broken
    _, h5 = _paths(reader, ref)
    with h5py.File(h5, "a") as f:
        n = len(f["sen-2-products"])
        del f["sen-2-products"]
        f["sen-2-products"] = np.arange(n)  # an AttributeError traceback before
    _raises(reader, ref, h5, "product names")
    path = reader.root / "train.csv"
    with path.open(newline="") as fh:
        table = list(csv.reader(fh))
    table[1][3:] = ["0.0"] * (len(table[1]) - 3)  # a tile of no genus at all
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(table)
    with pytest.raises(RawFormatError, match=r"summing to more than 0 .* on line 2") as info:
        Reader(_store(), reader.root).index()
    assert info.value.path == str(path)


def test_products_of_another_year_than_the_file_name_are_named(
    broken: tuple[Reader, SampleRef],
) -> None:
    """``<stem>_<YYYY>.h5`` holds that year's series: S2 products of three years earlier
    would give date codes the file name contradicts."""
    reader, ref = broken
    _, h5 = _paths(reader, ref)
    year = h5.stem.rpartition("_")[2]
    with h5py.File(h5, "a") as f:
        names = [n.decode() for n in f["sen-2-products"][()]]
        moved = [n.replace(f"_{year}", f"_{int(year) - 3}") for n in names]
        del f["sen-2-products"]
        f.create_dataset("sen-2-products", data=moved, dtype=h5py.string_dtype())
    _raises(reader, ref, h5, rf"acquisitions in {year} .*found product 0 dated {int(year) - 3}")
