"""analysis.runs: finding run directories and reading their final scores."""

from __future__ import annotations

import pytest

from analysis.runs import find_runs, final_score, read_run
from configs import UserError
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
