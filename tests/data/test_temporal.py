"""Temporal aggregation rules (IGNF/MAESTRO's date-chunk selection, our T < N and eval choices)."""

from __future__ import annotations

import numpy as np
import pytest

from maestro.data.temporal import chunk_bounds, dirty_dates, medoid_index, select_dates


def _series(t: int, c: int = 2, p: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(t, c, p, p)).astype(np.float32)


def test_equal_length_keeps_everything_even_cloudy() -> None:
    x = _series(4)
    invalid = np.ones((4, 3, 3), bool)
    for rng in (None, np.random.default_rng(0)):
        np.testing.assert_array_equal(select_dates(x, invalid, 4, rng), [0, 1, 2, 3])


@pytest.mark.parametrize(("t", "n", "expected"), [(3, 4, [0, 1, 1, 2]), (1, 3, [0, 0, 0])])
def test_shorter_series_repeats_nearest_dates_in_order(t: int, n: int, expected: list) -> None:
    got = select_dates(_series(t), None, n, np.random.default_rng(5))
    np.testing.assert_array_equal(got, expected)
    got_eval = select_dates(_series(t), None, n, None)
    np.testing.assert_array_equal(got_eval, expected)


def test_shorter_series_uses_every_acquisition() -> None:
    for t in range(1, 16):
        idx = select_dates(_series(t), None, 16, None)
        assert idx.shape == (16,)
        assert set(idx.tolist()) == set(range(t))
        assert np.all(np.diff(idx) >= 0)


def test_empty_series_is_an_error() -> None:
    with pytest.raises(ValueError, match="T = 0"):
        select_dates(np.zeros((0, 2, 3, 3), np.float32), None, 4, None)


def test_chunks_and_centred_eval_offset() -> None:
    np.testing.assert_array_equal(chunk_bounds(11, 3, 1), [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    # T=11, N=3: k=3, T mod N = 2 -> eval offset 1, chunks [1..3], [4..6], [7..9]
    idx = select_dates(_series(11), None, 3, None)
    for j, i in enumerate(idx):
        assert 1 + 3 * j <= i <= 3 + 3 * j


def test_random_mode_stays_within_chunks_and_covers_offsets() -> None:
    t, n, k = 13, 4, 3  # offsets 0 or 1
    x = _series(t)
    offsets, picks = set(), set()
    for seed in range(200):
        idx = select_dates(x, None, n, np.random.default_rng(seed))
        feasible = [
            s for s in (0, 1) if all(s + k * j <= i < s + k * (j + 1) for j, i in enumerate(idx))
        ]
        assert feasible, f"selection {idx} is not one pick per chunk for any offset"
        if len(feasible) == 1:
            offsets.add(feasible[0])
        picks.update(idx.tolist())
    assert offsets == {0, 1}  # both offsets are drawn
    assert picks == set(range(t))  # every date can be picked


def test_clean_dates_preferred_unless_chunk_all_dirty() -> None:
    t, n = 8, 2  # chunks [0..3], [4..7]
    x = _series(t)
    invalid = np.zeros((t, 3, 3), bool)
    invalid[[0, 1, 3], 1, 1] = True  # chunk 0: only date 2 clean
    invalid[4:8, 0, 0] = True  # chunk 1: all dirty -> nothing excluded
    np.testing.assert_array_equal(dirty_dates(invalid, t), [1, 1, 0, 1, 1, 1, 1, 1])
    seen = set()
    for seed in range(100):
        idx = select_dates(x, invalid, n, np.random.default_rng(seed))
        assert idx[0] == 2
        seen.add(int(idx[1]))
    assert seen == {4, 5, 6, 7}
    assert select_dates(x, invalid, n, None)[0] == 2


def test_medoid_picks_the_most_central_acquisition() -> None:
    base = np.zeros((1, 2, 2, 2), np.float32)
    # values 0, 1, 2, 10 per acquisition: median 1.5, |dev| means 1.5, 0.5, 0.5, 8.5 -> 1
    x = np.concatenate([base + v for v in (0.0, 1.0, 2.0, 10.0)])
    assert medoid_index(x, None, np.arange(4)) == 1
    np.testing.assert_array_equal(select_dates(x, None, 1, None), [1])
    # date 1 cloudy -> excluded; date 2 is the medoid among the clean ones
    invalid = np.zeros((4, 2, 2), bool)
    invalid[1, 0, 0] = True
    np.testing.assert_array_equal(select_dates(x, invalid, 1, None), [2])


def test_medoid_treats_cloudy_pixels_as_nan() -> None:
    x = np.zeros((3, 1, 1, 2), np.float32)
    x[:, 0, 0, 0] = [0.0, 5.0, 6.0]
    x[:, 0, 0, 1] = [0.0, 1000.0, 0.0]  # huge outlier pixel on date 1 ...
    invalid = np.zeros((3, 1, 2), bool)
    invalid[1, 0, 1] = True  # ... that is cloudy: ignored in the median and the deviation
    # median pixel0 = 5, pixel1 = nanmedian(0, nan, 0) = 0; date 1 dev = mean(|5-5|) = 0
    assert medoid_index(x, invalid, np.arange(3)) == 1
    assert medoid_index(x, None, np.arange(3)) == 2  # without the mask the outlier counts
    assert medoid_index(x, invalid, np.array([0, 2])) == 2


def test_eval_is_deterministic_and_train_reproducible() -> None:
    x = _series(23, seed=3)
    invalid = np.random.default_rng(1).random((23, 3, 3)) < 0.05
    a = select_dates(x, invalid, 5, None)
    np.testing.assert_array_equal(a, select_dates(x, invalid, 5, None))
    b = select_dates(x, invalid, 5, np.random.default_rng([7, 1]))
    np.testing.assert_array_equal(b, select_dates(x, invalid, 5, np.random.default_rng([7, 1])))
    assert b.dtype == np.int64 and b.shape == (5,)


def test_mask_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="invalid mask shape"):
        select_dates(_series(6), np.zeros((6, 2, 2), bool), 2, None)


def test_nan_pixels_make_an_acquisition_dirty() -> None:
    base = np.zeros((1, 2, 2, 2), np.float32)
    x = np.concatenate([base + v for v in (0.0, 1.0, 2.0, 10.0)])  # medoid: date 1
    x[1, 0, 1, 1] = np.nan  # a NaN pixel in one band of date 1, no cloud mask
    np.testing.assert_array_equal(select_dates(x, None, 1, None), [2])
    np.testing.assert_array_equal(select_dates(x, np.zeros((4, 2, 2), bool), 1, None), [2])
    for seed in range(50):  # nor is it drawn at training
        assert select_dates(x, None, 1, np.random.default_rng(seed))[0] != 1


def test_a_chunk_with_no_clean_date_is_picked_without_the_cloud_mask():
    # three acquisitions of a 2 x 2 crop, pixel (1, 1) cloudy in each: no clean date
    x = np.array([[0, 0, 0, 0], [0, 0, 0, 10], [5, 5, 5, 10]], np.float32).reshape(3, 1, 2, 2)
    clouds = np.zeros((3, 2, 2), bool)
    clouds[:, 1, 1] = True
    # as IGNF/MAESTRO: the medoid over every pixel (the cloudy one's median is 10) is date 1;
    # with the cloud mask applied, dates 0 and 1 would tie at 0 and the earliest (0) win
    assert select_dates(x, clouds, 1, None).tolist() == [1]
    # with one clean date the mask still rules: the clean one is taken
    clouds[2] = False
    assert select_dates(x, clouds, 1, None).tolist() == [2]
    # non-finite pixels stay out of the distances even then (date 1 keeps distance 0)
    x[1, 0, 0, 0] = np.nan
    clouds[2] = True
    assert select_dates(x, clouds, 1, None).tolist() == [1]
