"""The tile index inside a store: one GeoParquet row per sample, in the store or per-tile CRS."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
import zarr
from pyproj import Transformer

from maestro.data.errors import RawFormatError
from maestro.store.convert import convert
from maestro.store.manifest import MANIFEST_NAME
from maestro.store.tile_index import TILE_INDEX_NAME
from maestro.store.zarr_store import Store, verify_manifest
from tests.data.fakes import FakeReader, small_store


@pytest.fixture(scope="module")
def pastis(tmp_path_factory: pytest.TempPathFactory) -> tuple[FakeReader, Store]:
    reader = FakeReader(small_store("pastis_hd"), 5, 2, 2)
    path = tmp_path_factory.mktemp("pastis") / "p.zarr"
    convert(reader, path, shard_samples=4)
    return reader, Store(path)


@pytest.fixture(scope="module")
def naip(tmp_path_factory: pytest.TempPathFactory) -> tuple[FakeReader, Store]:
    reader = FakeReader(small_store("s2_naip"), 5, 2, 2, tlim=(1, 4))
    path = tmp_path_factory.mktemp("naip") / "n.zarr"
    convert(reader, path, shard_samples=4)
    return reader, Store(path)


def _made(reader: FakeReader, store: Store) -> list:
    refs = {r.sample_id: r for r in reader.index()}
    return [reader.make(int(s[5:]), refs[s]) for s in store.sample_ids]


def test_one_row_per_sample_in_the_store_crs(pastis) -> None:
    reader, store = pastis
    index = store.tile_index()
    assert list(index.columns) == [
        "index",
        "sample_id",
        "split_default",
        "ref_date",
        "geometry",
    ]
    assert index.crs == "EPSG:2154" == store.crs
    assert index["index"].tolist() == list(range(store.n_samples))
    assert index["sample_id"].tolist() == store.sample_ids
    names = {0: "train", 1: "val", 2: "test"}
    assert index["split_default"].tolist() == [names[c] for c in store.split_codes("default")]
    for row, s in zip(index.itertuples(), _made(reader, store), strict=True):
        year, doy, _ = (int(v) for v in s.ref_date)
        assert row.ref_date == dt.datetime(year, 1, 1) + dt.timedelta(days=doy - 1)
        if s.bounds is None:
            assert row.geometry is None
            assert np.isnan(store.bounds(row.index)).all()
        else:
            assert row.geometry.equals(shapely.box(*s.bounds))
    assert index.geometry.isna().any() and index.geometry.notna().any()


def test_manifest_covers_the_index(pastis) -> None:
    _, store = pastis
    assert TILE_INDEX_NAME in (store.path / MANIFEST_NAME).read_text()
    assert verify_manifest(store.path) == []


def test_per_tile_crs_is_reprojected_to_lonlat(naip) -> None:
    reader, store = naip
    index = store.tile_index()
    assert store.crs == ""
    assert index.crs == "EPSG:4326"
    assert {"crs", "minx", "miny", "maxx", "maxy"} <= set(index.columns)
    for row, s in zip(index.itertuples(), _made(reader, store), strict=True):
        if s.bounds is None:
            assert row.geometry is None and pd.isna(row.crs) and np.isnan(row.minx)
            continue
        assert row.crs == s.crs
        assert (row.minx, row.miny, row.maxx, row.maxy) == s.bounds
        to_lonlat = Transformer.from_crs(s.crs, "EPSG:4326", always_xy=True)
        corners = [to_lonlat.transform(x, y) for x, y in [s.bounds[:2], s.bounds[2:]]]
        got = np.array(row.geometry.exterior.coords)
        for lon, lat in corners:
            assert np.min(np.hypot(got[:, 0] - lon, got[:, 1] - lat)) < 1e-9
    assert index["crs"].nunique() == 2  # two UTM zones


@pytest.mark.parametrize(
    ("store", "expected"),
    [("pastis_hd", "bounds in the store CRS EPSG:2154"), ("s2_naip", "the tile's own CRS")],
)
def test_bounds_in_the_wrong_crs_are_rejected(tmp_path: Path, store: str, expected: str) -> None:
    reader = FakeReader(small_store(store), 3, 1, 1, tlim=(1, 3), corrupt={"tile_002": "crs"})
    with pytest.raises(RawFormatError, match=expected) as err:
        convert(reader, tmp_path / "x.zarr", shard_samples=2)
    assert "tile_002" in str(err.value) and "crs" in str(err.value)


def test_missing_index_and_old_stores_are_named(pastis, tmp_path: Path) -> None:
    _, store = pastis
    copy = tmp_path / "copy.zarr"
    shutil.copytree(store.path, copy)
    (copy / TILE_INDEX_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=r"copy\.zarr/tile_index\.parquet"):
        Store(copy).tile_index()
    group = zarr.open_group(copy, mode="r+", zarr_format=3)
    group.attrs["version"] = 1
    with pytest.raises(ValueError, match=r"version 1 .*convert again"):
        Store(copy).spec  # noqa: B018
