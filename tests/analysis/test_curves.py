"""analysis.curves: seeds' logged points on a common step grid, and their mean."""

from __future__ import annotations

import numpy as np
import pytest

from dqn_family.analysis.curves import common_grid, learning_curves, seed_curve
from dqn_family.analysis.runs import find_runs
from dqn_family.configs import UserError
from tests.analysis.synthetic_runs import linear_evals, write_run


def test_common_grid_spans_only_steps_every_seed_covers():
    grid = common_grid([np.array([0.0, 100, 200, 300]), np.array([100.0, 200, 300, 400])], points=3)
    np.testing.assert_array_equal(grid, [100.0, 200.0, 300.0])


def test_common_grid_has_at_most_as_many_points_as_distinct_steps():
    assert len(common_grid([np.array([0.0, 50, 100])], points=200)) == 3


def test_common_grid_of_disjoint_runs_is_user_error():
    with pytest.raises(UserError, match="do not overlap"):
        common_grid([np.array([0.0, 100]), np.array([200.0, 300])])


def test_seed_curve_interpolates_each_seed_then_averages():
    # Seed A rises linearly 0 -> 100 over steps 0..100; seed B is 0 until step 50, then 0 -> 100.
    # At step 50: A = 50, B = 0, mean 25. At step 100 both are 100.
    steps_G, mean_G, low_G, high_G = seed_curve(
        [[(0, 0.0), (100, 100.0)], [(0, 0.0), (50, 0.0), (100, 100.0)]], points=3
    )
    np.testing.assert_array_equal(steps_G, [0.0, 50.0, 100.0])
    np.testing.assert_allclose(mean_G, [0.0, 25.0, 100.0])
    assert low_G[1] >= 0.0 and high_G[1] <= 50.0


def test_seed_curve_averages_values_logged_at_the_same_step():
    steps_G, mean_G, _, _ = seed_curve([[(0, 0.0), (10, 2.0), (10, 4.0)]], points=2)
    np.testing.assert_allclose(mean_G, [0.0, 3.0])


def test_learning_curves_one_per_env_and_algo(tmp_path):
    for seed in (1, 2):
        write_run(tmp_path, env_id="CartPole-v1", algo="dqn", seed=seed, evals=linear_evals(0.1, seed))
        write_run(tmp_path, env_id="CartPole-v1", algo="rainbow", seed=seed, evals=linear_evals(0.2, seed))
    curves = learning_curves(find_runs([tmp_path]), "eval/mean_return", points=11)
    assert [(c.env_id, c.algo, c.seeds) for c in curves] == [("CartPole-v1", "dqn", 2), ("CartPole-v1", "rainbow", 2)]
    np.testing.assert_allclose(curves[1].mean_G, 0.2 * np.arange(0, 1001, 100) + 1.5)  # mean offset of seeds 1, 2


def test_learning_curves_of_missing_tag_is_user_error(tmp_path):
    write_run(tmp_path, env_id="CartPole-v1", algo="dqn", seed=1, evals=linear_evals(0.1, 0.0))
    with pytest.raises(UserError, match="charts/nothing"):
        learning_curves(find_runs([tmp_path]), "charts/nothing")
