"""The store layout on disk and the read-side ``Store`` (round trip, metadata, stats, manifest)."""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from maestro.data.transforms import scale
from maestro.datasets.spec import to_dict
from maestro.store.convert import convert
from maestro.store.zarr_store import (
    MANIFEST_NAME,
    META_CHUNK_SHARDS,
    Store,
    chunk_px,
    decode_ids,
    encode_ids,
    store_hash,
    verify_manifest,
)
from tests.data.fakes import FakeReader, small_store

SHARD = 4


@pytest.fixture(scope="module", params=["treesatai_ts", "pastis_hd", "flair_hub"])
def converted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    reader = FakeReader(small_store(request.param), n_train=6, n_val=3, n_test=2)
    path = tmp_path_factory.mktemp(request.param) / f"{request.param}.zarr"
    convert(reader, path, shard_samples=SHARD)
    return reader, path


def _raw(reader: FakeReader) -> dict:
    return {r.sample_id: (r, reader.make(int(r.sample_id[5:]), r)) for r in reader.index()}


def test_round_trip_every_array(converted) -> None:
    reader, path = converted
    store, raw = Store(path), _raw(reader)
    assert store.n_samples == len(raw) == len(store)
    assert sorted(store.sample_ids) == sorted(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no zarr warning on the read path
        for i, sid in enumerate(store.sample_ids):
            ref, s = raw[sid]
            for m in reader.store.modalities:
                data, dates, invalid = store.read(i, m.name)
                np.testing.assert_array_equal(data, s.rasters[m.name])
                assert data.dtype == np.dtype(m.dtype)
                np.testing.assert_array_equal(dates, s.dates[m.name])
                assert dates.dtype == np.int16
                if m.has_mask:
                    np.testing.assert_array_equal(invalid, s.invalid[m.name])
                else:
                    assert invalid is None
                assert store.ndates(i, m.name) == (ref.ndates[m.name] if m.temporal else 1)
            np.testing.assert_array_equal(store.label(i), s.label)
            assert store.label(i).dtype == s.label.dtype
            np.testing.assert_array_equal(store.ref_date(i), s.ref_date)
            expected = np.full(4, np.nan) if s.bounds is None else np.array(s.bounds)
            np.testing.assert_array_equal(store.bounds(i), expected)


def test_order_and_split_indices(converted) -> None:
    reader, path = converted
    store = Store(path)
    split_of = {r.sample_id: r.splits for r in reader.index()}
    order = {"train": 0, "val": 1, "test": 2}
    keys = [(order[split_of[s]["default"]], s) for s in store.sample_ids]
    assert keys == sorted(keys)
    for scheme in reader.store.split_schemes:
        for split in ("train", "val", "test"):
            got = store.indices(scheme, [split])
            want = [i for i, s in enumerate(store.sample_ids) if split_of[s][scheme] == split]
            np.testing.assert_array_equal(got, want)
        both = store.indices(scheme, ["val", "train"])
        assert np.all(np.diff(both) > 0) and both.dtype == np.int64
    assert store.attrs["splits"]["default"] == {"train": 6, "val": 3, "test": 2}
    with pytest.raises(KeyError, match="no split scheme"):
        store.indices("nope", ["train"])
    with pytest.raises(ValueError, match="unknown splits"):
        store.indices("default", ["training"])


def test_chunks_shards_codecs_and_consolidation(converted) -> None:
    reader, path = converted
    spec = reader.store
    root = json.loads((path / "zarr.json").read_text())
    consolidated = root["consolidated_metadata"]["metadata"]
    assert "s2/data" in consolidated and "sample_id" in consolidated
    assert root["attributes"]["format"] == "maestro-store"
    for m in spec.modalities:
        meta = json.loads((path / m.name / "data" / "zarr.json").read_text())
        p, c = m.pixels(spec.tile_m), len(m.bands)
        # inner chunks: one crop's pixels per side where crops are smaller than tiles
        k = m.pixels(spec.crop_m) if spec.crop_m < spec.tile_m else p
        assert k == chunk_px(spec, m) and (k < p) == (spec.name == "pastis_hd")
        tmax = Store(path).group[m.name].attrs["tmax"]
        assert meta["shape"] == [11, tmax, c, p, p]
        assert meta["data_type"] == m.dtype
        assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [SHARD, tmax, c, p, p]
        (codec,) = meta["codecs"]
        assert codec["name"] == "sharding_indexed"
        assert codec["configuration"]["chunk_shape"] == [1, tmax, c, k, k]
        inner = [x["name"] for x in codec["configuration"]["codecs"]]
        assert inner == ["bytes", "zstd"]
        assert codec["configuration"]["codecs"][1]["configuration"]["level"] == 3
        shard_files = [f for f in (path / m.name / "data" / "c").rglob("*") if f.is_file()]
        assert len(shard_files) == 3  # ceil(11 / 4)
        dates = json.loads((path / m.name / "dates" / "zarr.json").read_text())
        assert dates["codecs"][0]["configuration"]["chunk_shape"] == [1, tmax, 3]
    ids = json.loads((path / "sample_id" / "zarr.json").read_text())
    assert ids["data_type"] == "uint8"  # not an unstable fixed-width string dtype
    assert [c["name"] for c in ids["codecs"]] == ["bytes", "zstd"]
    width = ids["shape"][1]
    assert ids["chunk_grid"]["configuration"]["chunk_shape"] == [META_CHUNK_SHARDS * SHARD, width]
    assert len([f for f in (path / "sample_id").rglob("*") if f.is_file()]) == 2  # json + 1
    if spec.label.kind == "raster":
        lab = json.loads((path / "label" / "zarr.json").read_text())
        assert lab["codecs"][0]["name"] == "sharding_indexed"
        k = chunk_px(spec, spec.modality(spec.label.grid_modality))
        assert lab["codecs"][0]["configuration"]["chunk_shape"] == [1, k, k]


def test_dimension_names_and_coordinates(converted) -> None:
    """Every array names its axes (Zarr ``dimension_names``) and the named axes with labels
    have 1-D coordinate arrays, so xarray opens each group with labelled dimensions."""
    import xarray as xr

    reader, path = converted
    spec = reader.store
    root = xr.open_zarr(
        path,
    )
    assert root["bounds"].dims == ("sample", "bound")
    assert list(root["bound"].values) == ["minx", "miny", "maxx", "maxy"]
    assert root["ref_date"].dims == ("sample", "ymd") and root.sizes["sample"] == 11
    if spec.label.kind == "fractions":
        assert root["label"].dims == ("sample", "class")
        assert list(root["class"].values) == list(spec.label.names)
    else:
        assert root["label"].dims == ("sample", "y", "x")
    store = Store(path)
    for m in spec.stored_modalities:
        ds = xr.open_zarr(
            path,
            group=m.name,
        )
        assert ds["data"].dims == ("sample", "date", "band", "y", "x")
        assert list(ds["band"].values) == list(m.bands)
        assert ds["dates"].dims == ("sample", "date", "ymd")
        data, _, _ = store.read(0, m.name)  # the same values as the store reader
        np.testing.assert_array_equal(ds["data"].isel(sample=0).values[: len(data)], data)
        sub = ds["data"].sel(band=m.bands[-1]).isel(sample=0).values[: len(data)]
        np.testing.assert_array_equal(sub, data[:, -1])


def test_attrs_and_spec(converted) -> None:
    reader, path = converted
    store = Store(path)
    assert store.spec == reader.store
    assert store.attrs["store_spec"] == json.loads(json.dumps(to_dict(reader.store)))
    assert store.attrs["n_samples"] == 11
    assert store.attrs["created_by"].startswith("maestro ")
    assert store.attrs["version"] == 3
    assert store.crs == store.attrs["crs"] == reader.store.crs != ""
    for m in reader.store.modalities:
        attrs = store.group[m.name].attrs
        assert attrs["bands"] == list(m.bands)
        assert attrs["wavelengths_um"] == list(m.wavelengths_um)
        assert attrs["dtype"] == m.dtype and attrs["resolution_m"] == m.resolution_m
        assert attrs["scaling"] == {"divisor": m.scaling.divisor, "log": m.scaling.log}
        geo = attrs["geotransform"]
        assert geo["pixel_size_m"] == m.resolution_m and geo["footprint"] == "bounds"
        assert geo["affine"] == ["pixel_size_m", 0, "minx", 0, "-pixel_size_m", "maxy"]
        assert set(attrs["stats"]) == set(reader.store.split_schemes)


def test_stats_equal_numpy_on_train_split(converted) -> None:
    reader, path = converted
    store, raw = Store(path), _raw(reader)
    for scheme in reader.store.split_schemes:
        train = [s for r, s in raw.values() if r.splits[scheme] == "train"]
        for m in reader.store.modalities:
            got = store.stats(m.name, scheme)
            for b in range(len(m.bands)):
                vals = []
                for s in train:
                    x = scale(s.rasters[m.name], m)[:, b]  # (T, H, W)
                    ok = np.isfinite(x)
                    if m.has_mask:
                        ok &= ~s.invalid[m.name]
                    vals.append(x[ok].astype(np.float64))
                v = np.concatenate(vals)
                assert got["count"][b] == v.size
                np.testing.assert_allclose(got["mean"][b], v.mean(), rtol=1e-10)
                np.testing.assert_allclose(got["std"][b], v.std(), rtol=1e-9)


def test_store_is_lazy_and_picklable(converted, tmp_path: Path) -> None:
    _, path = converted
    missing = Store(tmp_path / "nothing.zarr")  # no error until used
    with pytest.raises(FileNotFoundError, match=r"nothing\.zarr"):
        missing.n_samples  # noqa: B018
    store = Store(path)
    assert store._group is None
    first = store.read(0, "s2")[0]
    clone = pickle.loads(pickle.dumps(store))
    assert clone._group is None
    np.testing.assert_array_equal(clone.read(0, "s2")[0], first)
    with pytest.raises(IndexError, match="out of range"):
        store.read(store.n_samples, "s2")


def test_foreign_zarr_group_is_rejected(tmp_path: Path) -> None:
    import zarr

    zarr.open_group(tmp_path / "other.zarr", mode="w", zarr_format=3).attrs["format"] = "x"
    with pytest.raises(ValueError, match="expected a maestro-store"):
        Store(tmp_path / "other.zarr").spec  # noqa: B018


def test_manifest_hashes_match_files(converted) -> None:
    _, path = converted
    manifest = json.loads((path / MANIFEST_NAME).read_text())
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
    assert [f["path"] for f in manifest["files"]] == [p.relative_to(path).as_posix() for p in files]
    for entry, p in zip(manifest["files"], files, strict=True):
        assert entry["size"] == p.stat().st_size
        assert entry["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    lines = "".join(f"{f['path']}\t{f['size']}\t{f['sha256']}\n" for f in manifest["files"])
    assert (
        store_hash(path) == manifest["content_hash"] == hashlib.sha256(lines.encode()).hexdigest()
    )
    assert verify_manifest(path) == []


def test_manifest_detects_tampering(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    convert(FakeReader(small_store("pastis_hd"), 2, 1, 1), path, shard_samples=2)
    victim = next(
        p for p in sorted((path / "s2" / "data").rglob("*")) if p.is_file() and "c" in p.parts
    )
    victim.write_bytes(victim.read_bytes() + b"x")
    (path / "extra.txt").write_text("hi")
    problems = verify_manifest(path)
    assert f"changed: {victim.relative_to(path).as_posix()}" in problems
    assert "unlisted: extra.txt" in problems
    with pytest.raises(FileNotFoundError, match="no manifest"):
        store_hash(tmp_path)


def test_id_encoding_round_trip() -> None:
    ids = ["a", "D-2019_ZONE_12", "ünïcode_é"]
    enc = encode_ids(ids, 16)
    assert enc.dtype == np.uint8 and enc.shape == (3, 16)
    assert decode_ids(enc) == ids
    with pytest.raises(ValueError, match="does not fit"):
        encode_ids(["x" * 17], 16)
