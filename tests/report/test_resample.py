"""The hierarchical bootstrap of a mean over seeds (tables and margins)."""

from __future__ import annotations

import numpy as np
import pytest

from maestro.report.resample import seed_mean_draws, stack_replicates
from maestro.report.signal import Run, paired_margin
from maestro.report.tables import hierarchical_ci


def test_interval_is_that_of_the_mean_not_of_one_seed():
    # four seeds at 50 and one at 70 (no item noise): the mean is 54; a single-run interval
    # would reach 70, the interval of a mean over five seeds does not
    seeds = [np.full(100, 50.0)] * 4 + [np.full(100, 70.0)]
    lo, hi = hierarchical_ci(seeds)
    assert lo == pytest.approx(50.0) and 54.0 < hi < 70.0


def test_one_replicate_index_is_shared_by_every_seed_of_a_draw():
    # identical seeds whose replicates vary: the draws are exactly those replicates
    item_noise = np.arange(10.0)
    stack = stack_replicates([item_noise, item_noise.copy(), item_noise[::-1][::-1]])
    r = np.random.default_rng(1).integers(0, 10, 500)
    np.testing.assert_array_equal(seed_mean_draws(stack, r, np.random.default_rng(2)), r)


def test_replicates_are_cut_to_the_shortest():
    assert stack_replicates([np.zeros(7), np.ones(5)]).shape == (2, 5)


def test_margin_interval_is_tighter_than_the_worst_pair():
    # every seed of a beats b, one only by 5: the mean margin's interval lies above 5
    a = Run("a", [55, 60, 60, 60, 60], [np.full(50, v) for v in (55, 60, 60, 60, 60)], 9, [])
    b = Run("b", [50.0] * 5, [np.full(50, 50.0)] * 5, 9, [])
    value, lo, hi = paired_margin(a, b)
    assert value == pytest.approx(9.0) and 5.0 < lo < value < hi <= 10.0
