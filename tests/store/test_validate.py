"""Sample checks of ``maestro.store.validate`` not covered by the converter tests: dates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maestro.data.errors import RawFormatError
from maestro.data.sample import RawSample, SampleRef
from maestro.store.convert import convert
from maestro.store.validate import MAX_YEARS_FROM_REF, validate_sample
from tests.data.fakes import FakeReader, small_store


class _DateReader(FakeReader):
    """The fake FLAIR-HUB distribution with one date of sample ``tile_001`` replaced."""

    def __init__(self, *args: object, row: tuple[int, int, int], ref: bool = False, **kw: object):
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.row, self.on_ref = row, ref

    def make(self, k: int, ref: SampleRef) -> RawSample:
        sample = super().make(k, ref)
        if ref.sample_id == "tile_001":
            if self.on_ref:
                sample.ref_date = np.array(self.row, np.int16)
            else:
                sample.dates["s2"] = sample.dates["s2"].copy()
                sample.dates["s2"][-1] = self.row
        return sample


@pytest.mark.parametrize(
    ("row", "on_ref", "message"),
    [
        ((1019, 100, 0), False, "year 1019 outside 1950-2100"),  # a typo in the year
        ((2020, 367, 0), False, r"day of year 367 in 2020 \(1-366\)"),
        ((2019, 366, 0), False, r"day of year 366 in 2019 \(1-365\)"),
        ((2020, 0, 0), False, "day of year 0"),
        ((2020, 100, 24), False, "hour 24"),
        ((2045, 100, 0), False, r"\+25\.0 years away"),
        ((2190, 100, 0), True, "ref_date: expected .* found year 2190"),
    ],
)
def test_impossible_or_far_dates_are_named(
    tmp_path: Path, row: tuple[int, int, int], on_ref: bool, message: str
) -> None:
    reader = _DateReader(small_store("flair_hub"), 2, 1, 1, tlim=(3, 6), row=row, ref=on_ref)
    with pytest.raises(RawFormatError, match=message) as err:
        convert(reader, tmp_path / "x.zarr", shard_samples=2)
    assert "tile_001" in str(err.value)
    assert "modality 's2'" in str(err.value) or "ref_date" in str(err.value)
    assert not (tmp_path / "x.zarr").exists()


def test_a_series_of_one_repeated_day_is_named(tmp_path: Path) -> None:
    """Every line of a date file set to the first product: T dates, one day (no time left
    in the date codes). Two same-day acquisitions (two granules) are fine."""
    spec = small_store("flair_hub")
    reader = FakeReader(spec, 1, 1, 1, tlim=(3, 6))
    ref = reader.index()[0]
    sample = reader.make(0, ref)
    sample.dates["s2"][1] = sample.dates["s2"][0]
    validate_sample(sample, ref, spec, reader.root)
    sample.dates["s2"][:] = sample.dates["s2"][0]
    with pytest.raises(RawFormatError, match=r"more than one day .* found all \d+ dates"):
        validate_sample(sample, ref, spec, reader.root)


def test_dates_at_the_limits_are_accepted(tmp_path: Path) -> None:
    """A leap day 366, hour 23, and an acquisition just within the distance are fine."""
    spec = small_store("flair_hub")
    reader = _DateReader(spec, 1, 1, 1, tlim=(3, 6), row=(2020, 366, 23))
    ref = reader.index()[1]
    sample = reader.make(1, ref)
    validate_sample(sample, ref, spec, reader.root)
    r = sample.ref_date
    sample.dates["s2"][-1] = (int(r[0]) + int(MAX_YEARS_FROM_REF), int(r[1]), 0)
    validate_sample(sample, ref, spec, reader.root)
    sample.dates["s2"][-1] = (int(r[0]) + int(MAX_YEARS_FROM_REF) + 1, int(r[1]), 0)
    with pytest.raises(RawFormatError, match="years away"):
        validate_sample(sample, ref, spec, reader.root)


def test_a_float_reference_date_is_named(tmp_path: Path) -> None:
    spec = small_store("flair_hub")
    reader = FakeReader(spec, 1, 1, 1)
    ref = reader.index()[0]
    sample = reader.make(0, ref)
    sample.ref_date = sample.ref_date.astype(np.float32)
    with pytest.raises(RawFormatError, match="integer \\(year, doy, hour\\)"):
        validate_sample(sample, ref, spec, reader.root)


class _EmptyReader(FakeReader):
    """Fake TreeSatAI-TS: ``tile_001``'s S1 ascending all NaN, ``tile_002``'s S2 all cloudy."""

    def make(self, k: int, ref: SampleRef) -> RawSample:
        sample = super().make(k, ref)
        if ref.sample_id == "tile_001":
            sample.rasters["s1_asc"] = np.full_like(sample.rasters["s1_asc"], np.nan)
        if ref.sample_id == "tile_002":
            sample.invalid["s2"] = np.ones_like(sample.invalid["s2"])
        return sample


def test_series_without_measurement_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """They convert (a missing modality is legitimate) but the summary, the store and the log
    say how many there are (D24)."""
    import zarr

    caplog.set_level("WARNING")
    summary = convert(_EmptyReader(small_store("treesatai_ts"), 3, 1, 1), tmp_path / "x.zarr", 2)
    counts = summary["without_measurement"]
    assert counts == {"aerial": 0, "s1_asc": 1, "s1_des": 0, "s2": 1}
    group = zarr.open_group(tmp_path / "x.zarr", mode="r")
    assert group["s1_asc"].attrs["samples_without_measurement"] == 1
    assert group["s1_des"].attrs["samples_without_measurement"] == 0
    text = caplog.text
    assert "1 of 5 samples have no measurement in 's1_asc' (e.g. tile_001)" in text
    assert "in 's2' (e.g. tile_002)" in text


class _ShiftedLabels(FakeReader):
    """Fake PASTIS-HD whose label rasters are coded from 1 (every class + 1, none at 0)."""

    def make(self, k: int, ref: SampleRef) -> RawSample:
        sample = super().make(k, ref)
        top = len(self.store.label.names) - 1
        sample.label = np.minimum(sample.label, top - 1) + 1
        return sample


def test_label_counts_and_a_label_coded_from_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Pixels per class land in the summary and the store; no class 0 anywhere warns that
    the labels are likely coded from 1 (only a patch holding the top class would fail the
    range check)."""
    import zarr

    spec = small_store("pastis_hd")
    caplog.set_level("WARNING")
    good = convert(FakeReader(spec, 2, 1, 1), tmp_path / "a.zarr", 2)
    counts = good["label_counts"]
    assert len(counts) == len(spec.label.names) and counts[0] > 0
    assert sum(counts) == good["n_samples"] * 32 * 32
    assert zarr.open_group(tmp_path / "a.zarr", mode="r").attrs["label_counts"] == counts
    assert "coded from 1" not in caplog.text
    shifted = convert(_ShiftedLabels(spec, 2, 1, 1), tmp_path / "b.zarr", 2)
    assert shifted["label_counts"][0] == 0
    assert "label value 0 ('Background') occurs in no sample" in caplog.text
    fractions = convert(FakeReader(small_store("treesatai_ts"), 1, 1, 1), tmp_path / "c.zarr", 2)
    assert fractions["label_counts"] == []


def test_one_footprint_in_two_splits_is_named():
    """A training tile copied under another id into test is refused (D29); a copy within one
    split is returned (it weighs twice in training); unknown footprints are not compared."""
    from maestro.store.validate import check_split_footprints

    ids = ["a", "b", "a_copy", "c", "d"]
    bounds = np.array([[0, 0, 60, 60], [60, 0, 120, 60], [0, 0, 60, 60],
                       [np.nan] * 4, [np.nan] * 4], dtype=np.float64)  # fmt: skip
    crs = ["EPSG:25832"] * 5
    leak = {"default": np.array([0, 0, 2, 1, 2], np.int8)}
    with pytest.raises(RawFormatError, match=r"'a' \(train\) and 'a_copy' \(test\) both cover"):
        check_split_footprints(Path("raw"), ids, leak, bounds, crs)
    twice = {"default": np.array([0, 0, 0, 1, 2], np.int8)}
    assert check_split_footprints(Path("raw"), ids, twice, bounds, crs) == [("a", "a_copy")]
    other_crs = ["EPSG:25832", "EPSG:25832", "EPSG:25833", None, None]
    assert check_split_footprints(Path("raw"), ids, leak, bounds, other_crs) == []
