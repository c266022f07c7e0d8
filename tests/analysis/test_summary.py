"""analysis.summary: final scores grouped by env and algo, their estimates and the table."""

from __future__ import annotations

import pytest

from dqn_family.analysis.runs import find_runs
from dqn_family.analysis.summary import format_table, summarize
from tests.analysis.synthetic_runs import write_run


@pytest.fixture
def scored_runs(tmp_path):
    """CartPole dqn with final scores 1..8 (seeds 1..8), Acrobot dqn with -100 and -80, and one
    CartPole run that never evaluated."""
    for seed in range(1, 9):
        write_run(tmp_path, env_id="CartPole-v1", algo="dqn", seed=seed, evals=[], final=float(seed))
    write_run(tmp_path, env_id="Acrobot-v1", algo="dqn", seed=1, evals=[], final=-100.0)
    write_run(tmp_path, env_id="Acrobot-v1", algo="dqn", seed=2, evals=[], final=-80.0)
    write_run(tmp_path, env_id="CartPole-v1", algo="dqn", seed=9, evals=[])
    return find_runs([tmp_path])


def test_summarize_groups_runs_by_env_and_algo(scored_runs):
    summaries, _ = summarize(scored_runs, n_resamples=200)
    assert [(s.env_id, s.algo, s.seeds) for s in summaries] == [
        ("Acrobot-v1", "dqn", [1, 2]),
        ("CartPole-v1", "dqn", list(range(1, 9))),
    ]


def test_summarize_estimates_match_hand_computed_values(scored_runs):
    summaries, _ = summarize(scored_runs, n_resamples=200)
    cartpole = summaries[1].estimates
    # Scores 1..8: mean 4.5, median 4.5, IQM mean(3, 4, 5, 6) = 4.5; Acrobot: mean(-100, -80) = -90.
    assert (cartpole["mean"].value, cartpole["median"].value, cartpole["iqm"].value) == (4.5, 4.5, 4.5)
    assert summaries[0].estimates["mean"].value == -90.0
    assert 1.0 <= cartpole["iqm"].low < 4.5 < cartpole["iqm"].high <= 8.0


def test_summarize_leaves_out_runs_without_evaluation(scored_runs):
    _, unscored = summarize(scored_runs, n_resamples=200)
    assert [run.seed for run in unscored] == [9]


def test_format_table_has_a_row_per_group_with_intervals(scored_runs):
    summaries, _ = summarize(scored_runs, n_resamples=200)
    lines = format_table(summaries).splitlines()
    assert lines[0].split()[:3] == ["env", "algo", "seeds"]
    assert lines[3].startswith("CartPole-v1  dqn   8      4.5 [")
