"""analysis.runs: finding run directories and reading their final scores."""

from __future__ import annotations

import json

import pytest

from dqn_family.analysis.curves import learning_curves
from dqn_family.analysis.runs import final_score, find_runs, read_run, run_scalars
from dqn_family.analysis.summary import summarize
from dqn_family.configs import UserError
from tests.analysis.synthetic_runs import linear_evals, write_run


def test_find_runs_searches_folders_for_config_yaml(tmp_path):
    write_run(tmp_path / "a", env_id="CartPole-v1", algo="dqn", seed=1, evals=[(0, 1.0)])
    write_run(tmp_path / "b" / "deeper", env_id="Acrobot-v1", algo="rainbow", seed=2, evals=[(0, 1.0)])
    runs = find_runs([tmp_path])
    assert [(r.env_id, r.algo, r.seed) for r in runs] == [("CartPole-v1", "dqn", 1), ("Acrobot-v1", "rainbow", 2)]


def test_find_runs_lists_a_run_given_twice_once(tmp_path):
    run_dir = write_run(tmp_path, env_id="CartPole-v1", algo="dqn", seed=1, evals=[(0, 1.0)])
    assert len(find_runs([run_dir, tmp_path])) == 1


def test_find_runs_of_missing_path_is_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        find_runs([tmp_path / "nowhere"])


def test_find_runs_of_folder_without_runs_is_user_error(tmp_path):
    with pytest.raises(UserError, match="no run directories"):
        find_runs([tmp_path])


def test_read_run_of_config_without_env_id_is_user_error(tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 1\n")
    with pytest.raises(UserError, match="no env_id"):
        read_run(tmp_path)


def test_final_score_prefers_summary_json(tmp_path):
    run_dir = write_run(tmp_path, env_id="CartPole-v1", algo="dqn", seed=1, evals=[(0, 1.0), (100, 2.0)], final=7.5)
    assert final_score(read_run(run_dir)) == 7.5


def test_final_score_without_summary_is_last_eval_scalar(tmp_path):
    run_dir = write_run(tmp_path, env_id="CartPole-v1", algo="dqn", seed=1, evals=linear_evals(0.1, 0.0))
    assert final_score(read_run(run_dir)) == 100.0  # 0.1 * step 1000


def test_final_score_of_run_that_never_evaluated_is_none(tmp_path):
    run_dir = write_run(tmp_path, env_id="CartPole-v1", algo="dqn", seed=1, evals=[])
    assert final_score(read_run(run_dir)) is None


def _results_file(tmp_path, results):
    path = tmp_path / "presets_CartPole-v1_dqn.json"
    path.write_text(json.dumps({"env": "CartPole-v1", "algo": "dqn", "threshold": 475.0, "results": results}))
    return path


def test_find_runs_reads_a_presets_results_file_as_one_run_per_seed(tmp_path):
    path = _results_file(
        tmp_path,
        [
            {"seed": 1, "final_eval": 500.0, "evals": [[100, 20.0], [200, 500.0]]},
            {"seed": 2, "final_eval": 310.5, "evals": [[100, 30.0], [200, 310.5]]},
        ],
    )
    runs = find_runs([path])
    assert [(r.env_id, r.algo, r.seed, final_score(r)) for r in runs] == [
        ("CartPole-v1", "dqn", 1, 500.0),
        ("CartPole-v1", "dqn", 2, 310.5),
    ]
    assert run_scalars(runs[1], "eval/mean_return") == [(100, 30.0), (200, 310.5)]
    assert run_scalars(runs[1], "charts/episodic_return") == []


def test_results_file_curves_and_aggregates_match_the_recorded_numbers(tmp_path):
    path = _results_file(
        tmp_path,
        [
            {"seed": 1, "final_eval": 4.0, "evals": [[0, 0.0], [10, 4.0]]},
            {"seed": 2, "final_eval": 8.0, "evals": [[0, 2.0], [10, 8.0]]},
        ],
    )
    (curve,) = learning_curves(find_runs([path]), "eval/mean_return")
    assert curve.mean_G[0] == pytest.approx(1.0) and curve.mean_G[-1] == pytest.approx(6.0)
    (summary,), unscored = summarize(find_runs([path]), n_resamples=200)
    assert unscored == [] and summary.scores == [4.0, 8.0] and summary.estimates["mean"].value == 6.0


def test_find_runs_of_a_json_that_is_not_a_results_file_is_user_error(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"groups": []}')
    with pytest.raises(UserError, match="not a results file"):
        find_runs([path])
