"""analysis.stats: IQM, and bootstrap intervals, against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from dqn_family.analysis.stats import estimate, iqm, mean, mean_band, median


def test_iqm_of_one_to_eight_is_mean_of_middle_four():
    # Cut 25% (2 scores) from each end: mean of [3, 4, 5, 6] = 4.5.
    assert iqm(np.arange(1, 9)) == pytest.approx(4.5)


def test_iqm_ignores_outliers_in_outer_quarters():
    assert iqm(np.array([-1000.0, 2, 3, 4, 5, 6, 7, 1000])) == pytest.approx(4.5)


def test_iqm_along_axis_is_per_row():
    np.testing.assert_allclose(
        iqm(np.array([[1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1.0]]) * [[1], [2]], axis=1), [4.5, 9.0]
    )


def test_estimate_interval_contains_true_mean_on_fixed_seed():
    scores = np.random.default_rng(7).normal(loc=100.0, scale=10.0, size=20)
    result = estimate([scores], mean, seed=0)
    assert result.low < 100.0 < result.high
    assert result.value == pytest.approx(scores.mean())


def test_estimate_median_interval_brackets_point_estimate():
    result = estimate([np.array([1.0, 5.0, 2.0, 8.0, 3.0])], median, seed=0)
    assert result.value == 3.0
    assert 1.0 <= result.low <= 3.0 <= result.high <= 8.0


def test_estimate_of_equal_scores_has_zero_width():
    result = estimate([np.full(5, 200.0)], iqm, seed=0)
    assert (result.value, result.low, result.high) == (200.0, 200.0, 200.0)


def test_estimate_of_one_score_has_no_interval():
    result = estimate([np.array([42.0])], mean)
    assert (result.value, result.low, result.high) == (42.0, None, None)


@pytest.mark.parametrize("scores", [[1.0, 3.0], [1.0, 2.0, 7.0]])
def test_estimate_of_the_mean_of_two_or_three_scores_is_their_range(scores):
    # A resample of n copies of the lowest (highest) score has probability 1/n^n: 1/4 or 1/27, above
    # the 2.5% cut, so the percentile interval is [min, max] (why aggregate.py notes few runs).
    result = estimate([np.array(scores)], mean, seed=0)
    assert (result.low, result.high) == (min(scores), max(scores))


def test_estimate_resamples_each_stratum_apart():
    # Stratified: every resample keeps 2 scores from the first stratum (all 0) and 4 from the
    # second (all 10), so its mean is always 40 / 6. Pooled resampling would vary from 0 to 10.
    result = estimate([np.zeros(2), np.full(4, 10.0)], mean, n_resamples=500, seed=0)
    assert (result.low, result.value, result.high) == pytest.approx((40 / 6, 40 / 6, 40 / 6))


def test_estimate_is_deterministic_for_a_seed():
    scores = [np.array([1.0, 4.0, 9.0, 16.0, 25.0])]
    assert estimate(scores, iqm, seed=3) == estimate(scores, iqm, seed=3)


def test_mean_band_of_one_seed_is_the_line_itself():
    mean_G, low_G, high_G = mean_band(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_array_equal(mean_G, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(low_G, mean_G)
    np.testing.assert_array_equal(high_G, mean_G)


def test_mean_band_is_mean_over_seeds_within_seed_range():
    values_SG = np.array([[0.0, 10.0], [2.0, 30.0], [4.0, 20.0]])
    mean_G, low_G, high_G = mean_band(values_SG, seed=0)
    np.testing.assert_allclose(mean_G, [2.0, 20.0])
    assert np.all(values_SG.min(axis=0) <= low_G) and np.all(low_G <= mean_G)
    assert np.all(mean_G <= high_G) and np.all(high_G <= values_SG.max(axis=0))
