"""The converter: validation errors, atomicity, bounded memory, determinism.

Parallel and resumed conversions: ``test_convert_resume.py``.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from maestro.data.errors import RawFormatError
from maestro.data.sample import RawSample, SampleRef
from maestro.store.convert import RunningStats, convert
from maestro.store.zarr_store import Store, store_hash
from tests.data.fakes import FakeReader, small_store


@pytest.mark.parametrize(
    ("kind", "store", "what", "expected"),
    [
        ("bands", "treesatai_ts", "modality 's2'", r"\(T, C, H, W\)"),
        ("ndates", "pastis_hd", "modality 's2'", r"T from the index"),
        ("dtype", "flair_hub", "modality 's2'", "dtype uint16"),
        ("label", "treesatai_ts", "label", r"\(15,\) class fractions"),
        ("label", "pastis_hd", "label", r"raster of shape \(32, 32\)"),
        ("mask", "pastis_hd", "modality 'spot'", "no invalid mask"),
        ("missing", "treesatai_ts", "modality 's2'", "a raster"),
    ],
)
def test_bad_sample_names_sample_and_leaves_nothing(
    tmp_path: Path, kind: str, store: str, what: str, expected: str
) -> None:
    reader = FakeReader(small_store(store), 3, 2, 2, corrupt={"tile_004": kind})
    out = tmp_path / "out" / "x.zarr"
    with pytest.raises(RawFormatError, match=expected) as err:
        convert(reader, out, shard_samples=2)
    assert "tile_004" in str(err.value) and what in str(err.value)
    assert str(reader.root) in err.value.path
    # no output; only the work directory, kept for a rerun
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.zarr.partial"]


def test_failure_keeps_an_existing_store(tmp_path: Path) -> None:
    out = tmp_path / "x.zarr"
    convert(FakeReader(small_store("pastis_hd"), 2, 1, 1), out, shard_samples=2)
    before = store_hash(out)
    bad = FakeReader(small_store("pastis_hd"), 2, 1, 1, seed=1, corrupt={"tile_003": "dtype"})
    with pytest.raises(RawFormatError):
        convert(bad, out, shard_samples=2)
    assert store_hash(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.zarr", "x.zarr.partial"]


def test_index_errors(tmp_path: Path) -> None:
    reader = FakeReader(small_store("pastis_hd"), 2, 1, 1)
    reader._refs.append(reader._refs[0])
    with pytest.raises(RawFormatError, match="unique sample ids"):
        convert(reader, tmp_path / "a.zarr")
    reader = FakeReader(small_store("pastis_hd"), 2, 1, 1)
    reader._refs[1].ndates.pop("s2")
    with pytest.raises(RawFormatError, match="ndates of temporal modality 's2'"):
        convert(reader, tmp_path / "b.zarr")
    reader = FakeReader(small_store("pastis_hd"), 2, 1, 1)
    reader._refs[0].splits["default"] = "training"
    with pytest.raises(RawFormatError, match="splits"):
        convert(reader, tmp_path / "c.zarr")
    reader = FakeReader(small_store("pastis_hd"), 0, 0, 0)
    with pytest.raises(RawFormatError, match="at least one sample"):
        convert(reader, tmp_path / "d.zarr")
    assert list(tmp_path.iterdir()) == []


def test_summary_and_padding(tmp_path: Path) -> None:
    reader = FakeReader(small_store("flair_hub"), 5, 2, 2, tlim=(2, 9))
    summary = convert(reader, tmp_path / "f.zarr", shard_samples=4)
    refs = reader.index()
    assert summary["n_samples"] == 9
    assert summary["tmax"]["s2"] == max(r.ndates["s2"] for r in refs)
    assert summary["tmax"]["aerial"] == 1
    assert summary["content_hash"] == store_hash(tmp_path / "f.zarr")
    flair2 = {k: sum(r.splits["flair2"] == k for r in refs) for k in ("train", "val", "test")}
    assert summary["splits"]["flair2"] == flair2
    store = Store(tmp_path / "f.zarr")
    raw = store.group["s2/data"]
    i = int(np.argmin([store.ndates(j, "s2") for j in range(9)]))
    t = store.ndates(i, "s2")
    assert t < summary["tmax"]["s2"]
    assert not np.any(raw[i, t:])  # padded dates are zeros
    assert not np.any(store.group["s2/dates"][i, t:])
    assert not np.any(store.group["s2/invalid"][i, t:])
    codes = store.split_codes("flair2")
    assert set(codes.tolist()) <= {-1, 0, 1, 2}
    assert (codes == -1).sum() == sum(r.splits["flair2"] is None for r in refs)


def test_same_input_same_bytes(tmp_path: Path) -> None:
    a = convert(FakeReader(small_store("treesatai_ts"), 4, 2, 2), tmp_path / "a.zarr", 3)
    b = convert(FakeReader(small_store("treesatai_ts"), 4, 2, 2), tmp_path / "b.zarr", 3)
    c = convert(FakeReader(small_store("treesatai_ts"), 4, 2, 2, seed=9), tmp_path / "c.zarr", 3)
    assert a["content_hash"] == b["content_hash"] != c["content_hash"]


def test_streams_one_sample_at_a_time(tmp_path: Path) -> None:
    reader = FakeReader(small_store("pastis_hd"), 10, 3, 3)
    convert(reader, tmp_path / "p.zarr", shard_samples=4)
    assert reader.reads == 16
    assert reader.max_live == 0  # the previous sample is released before the next read
    assert reader.live == 0


def _peak_memory(tmp: Path, n: int, workers: int = 1, shard: int = 4) -> int:
    """Peak of this process's Python-tracked allocations (numpy arrays included)."""
    reader = FakeReader(small_store("pastis_hd"), n, 0, 0, tlim=(6, 6))
    tracemalloc.start()
    try:
        convert(reader, tmp / f"m{n}_{workers}.zarr", shard_samples=shard, workers=workers)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_bounded_by_one_shard(tmp_path: Path) -> None:
    store = small_store("pastis_hd")
    per_sample = sum(
        (6 if m.temporal else 1)
        * len(m.bands)
        * m.pixels(store.tile_m) ** 2
        * np.dtype(m.dtype).itemsize
        for m in store.modalities
    )  # ~0.2 MB
    small, large = _peak_memory(tmp_path, 8), _peak_memory(tmp_path, 48)
    assert large < 1.2 * small, (small, large)  # the peak does not grow with the dataset
    # one shard buffer (4 samples) + one sample and its float64 statistics temporaries,
    # far below the 48 samples of the dataset
    assert large < 20 * per_sample, (large, per_sample)
    # with workers, the shards live in the workers (the same task code): the parent holds
    # less than one shard buffer (small arrays, markers, tile index, manifest hashing)
    parent = _peak_memory(tmp_path, 48, workers=2, shard=16)
    assert parent < 16 * per_sample, (parent, per_sample)


def test_running_stats_merges_exactly() -> None:
    rng = np.random.default_rng(0)
    parts = [rng.normal(1e4, 3.0, size=(t, 2, 4, 4)) for t in (1, 3, 5)]
    masks = [rng.random((p.shape[0], 4, 4)) < 0.2 for p in parts]
    acc = RunningStats(2)
    for p, m in zip(parts, masks, strict=True):
        acc.update(p, m)
    for b in range(2):
        v = np.concatenate([p[:, b][~m] for p, m in zip(parts, masks, strict=True)])
        assert acc.count[b] == v.size
        np.testing.assert_allclose(acc.mean[b], v.mean(), rtol=1e-12)
        np.testing.assert_allclose(acc.as_attrs()["std"][b], v.std(), rtol=1e-9)
    empty = RunningStats(1).as_attrs()
    assert empty == {"mean": [None], "std": [None], "count": [0]}


def test_refuses_to_replace_the_input_or_a_foreign_directory(tmp_path: Path) -> None:
    from maestro.utils.atomic import RefusedOutputError

    reader = FakeReader(small_store("pastis_hd"), 2, 1, 1)
    with pytest.raises(RefusedOutputError, match="would replace the input"):
        convert(reader, reader.root, shard_samples=2)
    with pytest.raises(RefusedOutputError, match="would replace the input"):
        convert(reader, Path(reader.root).parent, shard_samples=2)
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep")
    with pytest.raises(RefusedOutputError, match=r"not|refusing"):
        convert(reader, user, shard_samples=2)
    partial = tmp_path / "x.zarr.partial"  # a foreign folder where the work directory goes
    partial.mkdir()
    (partial / "notes.txt").write_text("keep")
    with pytest.raises(RefusedOutputError, match="conversion work directory"):
        convert(reader, tmp_path / "x.zarr", shard_samples=2)
    assert (user / "notes.txt").read_text() == "keep" and (partial / "notes.txt").is_file()
    assert not (tmp_path / "x.zarr").exists()
    # a store this program wrote is replaced
    (partial / "notes.txt").unlink()
    convert(reader, tmp_path / "x.zarr", shard_samples=2)
    again = FakeReader(small_store("pastis_hd"), 2, 1, 1, seed=1)
    convert(again, tmp_path / "x.zarr", shard_samples=2)
    assert Store(tmp_path / "x.zarr").n_samples == 4


class _ReversedReader(FakeReader):
    """The fake distribution with every time series listed newest first."""

    def make(self, k: int, ref: SampleRef) -> RawSample:
        sample = super().make(k, ref)
        for name in list(sample.dates):
            if len(sample.dates[name]) > 1:
                sample.dates[name] = sample.dates[name][::-1]
                sample.rasters[name] = sample.rasters[name][::-1]
                if name in sample.invalid:
                    sample.invalid[name] = sample.invalid[name][::-1]
        return sample


def test_series_are_stored_in_time_order(tmp_path: Path) -> None:
    """A file listing acquisitions newest first gives the store of the chronological one
    (the temporal chunks assume time order), masks and values moving with their dates."""
    spec = small_store("flair_hub")
    ordered = convert(FakeReader(spec, 3, 1, 1, tlim=(3, 6)), tmp_path / "a.zarr", 2)
    reversed_ = convert(_ReversedReader(spec, 3, 1, 1, tlim=(3, 6)), tmp_path / "b.zarr", 2)
    assert reversed_["content_hash"] == ordered["content_hash"]
    store = Store(tmp_path / "b.zarr")
    for i in range(store.n_samples):
        t = store.ndates(i, "s2")
        days = store.group["s2/dates"][i, :t, 1]
        assert t >= 3 and np.all(np.diff(days) > 0)


def test_in_time_order_is_stable_and_leaves_sorted_series_alone() -> None:
    from maestro.data.sample import in_time_order

    dates = np.array([[2020, 50, 0], [2019, 300, 0], [2020, 50, 0], [2020, 10, 0]], np.int16)
    x = np.arange(4)[:, None, None, None] * np.ones((4, 2, 3, 3))
    inv = np.zeros((4, 3, 3), bool)
    inv[2] = True  # the second of the two same-day acquisitions
    s = RawSample("a", {"s2": x, "aerial": x[:1]}, {"s2": dates, "aerial": dates[:1]},
                  {"s2": inv}, None, dates[0])  # fmt: skip
    out = in_time_order(s)
    assert out.dates["s2"][:, 1].tolist() == [300, 10, 50, 50]
    assert out.rasters["s2"][:, 0, 0, 0].tolist() == [1, 3, 0, 2]  # same day: file order
    assert out.invalid["s2"][:, 0, 0].tolist() == [False, False, False, True]
    kept = out.rasters["s2"]
    assert in_time_order(out).rasters["s2"] is kept  # already in order: untouched


class _UnitsReader(FakeReader):
    """The fake TreeSatAI-TS distribution with one modality's values in another unit."""

    def __init__(self, *args: object, unit: str, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.unit = unit

    def make(self, k: int, ref: SampleRef) -> RawSample:
        sample = super().make(k, ref)
        s1 = np.where(np.isfinite(sample.rasters["s1_asc"]), sample.rasters["s1_asc"], 0.1)
        if self.unit == "s2_fraction":  # reflectance in 0-1 instead of x 1e4
            sample.rasters["s2"] = (sample.rasters["s2"] / 10000).astype(np.float32)
        elif self.unit == "s1_db":  # 10 log10 of the linear power
            sample.rasters["s1_asc"] = (10 * np.log10(np.maximum(s1, 1e-4))).astype(np.float32)
        elif self.unit == "s1_linear":  # PASTIS-HD declares dB; linear power given
            for name in ("s1_asc", "s1_des"):
                db = np.nan_to_num(sample.rasters[name], nan=-12.0).astype(np.float32)
                sample.rasters[name] = (10 ** (-np.abs(db) / 10)).astype(np.float16)
        elif self.unit == "s1_some_zeros":  # GRD no-data fill on a third of the values
            s1 = s1.copy()
            s1[..., :2, :] = 0.0
            sample.rasters["s1_asc"] = s1.astype(np.float32)
        return sample


@pytest.mark.parametrize(
    ("unit", "modality", "message"),
    [
        ("s2_fraction", "s2", "reflectance in 0-1"),
        ("s1_db", "s1_asc", "dB values"),
        ("s1_linear", "s1_asc", "linear power"),
    ],
)
def test_values_in_another_unit_are_named(
    tmp_path: Path, unit: str, modality: str, message: str
) -> None:
    store = "pastis_hd" if unit == "s1_linear" else "treesatai_ts"
    reader = _UnitsReader(small_store(store), 2, 1, 1, unit=unit)
    with pytest.raises(RawFormatError, match=message) as err:
        convert(reader, tmp_path / "x.zarr", shard_samples=2)
    assert f"modality {modality!r}" in str(err.value)


def test_backscatter_with_some_no_data_zeros_converts(tmp_path: Path) -> None:
    reader = _UnitsReader(small_store("treesatai_ts"), 2, 1, 1, unit="s1_some_zeros")
    assert convert(reader, tmp_path / "x.zarr", shard_samples=2)["n_samples"] == 4
