"""analysis.plots: figures from synthetic runs, checked through their matplotlib objects."""

from __future__ import annotations

import numpy as np
import pytest

from dqn_family.analysis.curves import learning_curves
from dqn_family.analysis.plots import plot_aggregates, plot_curve_grid, plot_learning_curves, save_figure
from dqn_family.analysis.runs import find_runs
from dqn_family.analysis.summary import summarize
from tests.analysis.synthetic_runs import linear_evals, write_run

ENVS, ALGOS, SEEDS = ("Acrobot-v1", "CartPole-v1"), ("dqn", "rainbow"), (1, 2, 3)
SLOPES = {"dqn": 0.1, "rainbow": 0.2}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """2 envs x 2 algos x 3 seeds; eval/mean_return = slope * step + seed at steps 0..1000."""
    root = tmp_path_factory.mktemp("runs")
    for env_id in ENVS:
        for algo in ALGOS:
            for seed in SEEDS:
                evals = linear_evals(SLOPES[algo], seed)
                write_run(root, env_id=env_id, algo=algo, seed=seed, evals=evals, final=evals[-1][1])
    return find_runs([root])


@pytest.fixture(scope="module")
def curves(runs):
    return learning_curves(runs, "eval/mean_return", points=11)


def test_plot_learning_curves_makes_one_figure_per_env(curves):
    assert list(plot_learning_curves(curves)) == list(ENVS)


def test_plot_learning_curves_draws_one_labelled_line_per_algo(curves):
    ax = plot_learning_curves(curves)["CartPole-v1"].axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["dqn (3 seeds)", "rainbow (3 seeds)"]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["dqn (3 seeds)", "rainbow (3 seeds)"]


def test_plot_learning_curves_line_is_mean_over_seeds_against_env_steps(curves):
    dqn_line = plot_learning_curves(curves)["CartPole-v1"].axes[0].get_lines()[0]
    steps = np.arange(0, 1001, 100)
    np.testing.assert_allclose(dqn_line.get_xdata(), steps)
    np.testing.assert_allclose(dqn_line.get_ydata(), 0.1 * steps + 2.0)  # mean of seed offsets 1, 2, 3


def test_plot_learning_curves_shades_a_band_per_algo(curves):
    ax = plot_learning_curves(curves)["CartPole-v1"].axes[0]
    assert len(ax.collections) == 2


def test_plot_learning_curves_labels_axes_and_title(curves):
    ax = plot_learning_curves(curves)["Acrobot-v1"].axes[0]
    assert ax.get_xlabel() == "Environment steps"
    assert ax.get_ylabel() == "Evaluation return (sum of rewards per episode)"
    assert ax.get_title() == "Acrobot-v1"


def test_plot_curve_grid_has_one_axes_per_env(curves):
    figure = plot_curve_grid(curves)
    assert [ax.get_title() for ax in figure.axes] == list(ENVS)
    assert all(len(ax.get_lines()) == 2 for ax in figure.axes)


def test_plot_aggregates_bar_heights_are_iqm_of_final_scores(runs):
    summaries, _ = summarize(runs, n_resamples=200)
    ax = plot_aggregates(summaries).axes[1]
    # Final scores at step 1000: dqn 100 + seed, rainbow 200 + seed; IQM of 3 scores (trim_mean
    # cuts int(0.25 * 3) = 0 from each end) is their mean: 102 and 202.
    assert [bar.get_height() for bar in ax.patches] == pytest.approx([102.0, 202.0])
    assert [label.get_text() for label in ax.get_xticklabels()] == ["dqn\n(3 seeds)", "rainbow\n(3 seeds)"]


def test_save_figure_writes_png_and_svg(curves, tmp_path):
    paths = save_figure(plot_curve_grid(curves), tmp_path / "out", "curves")
    assert [p.name for p in paths] == ["curves.png", "curves.svg"]
    assert paths[0].read_bytes().startswith(b"\x89PNG") and b"<svg" in paths[1].read_bytes()
