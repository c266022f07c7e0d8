"""analysis.multirun without training: planning the grid, and reading a trial's log."""

from __future__ import annotations

import pytest
import yaml

from dqn_family.analysis.multirun import last_line, plan_trials, steps_done
from dqn_family.configs import ConfigError, config_to_dict, resolve_config


def plan(tmp_path, **changes):
    options = dict(env_ids=["CartPole-v1"], algos=["dqn"], seeds=[1], root=tmp_path, overrides={}, config_file=None)
    return plan_trials(**{**options, **changes})


def test_plan_trials_makes_one_trial_per_env_algo_seed(tmp_path):
    trials = plan(tmp_path, env_ids=["CartPole-v1", "Acrobot-v1"], algos=["dqn", "rainbow"], seeds=[1, 2])
    assert [t.name for t in trials][:3] == ["CartPole-v1__dqn__s1", "CartPole-v1__dqn__s2", "CartPole-v1__rainbow__s1"]
    assert len(trials) == 8
    assert trials[0].run_dir == str(tmp_path.resolve() / "CartPole-v1__dqn__s1")


def test_plan_trials_config_is_resolved_preset_with_overrides(tmp_path):
    (trial,) = plan(tmp_path, algos=["rainbow"], seeds=[4], overrides={"total_steps": 2000})
    expected = resolve_config(
        {"env_id": "CartPole-v1", "algo": "rainbow", "seed": 4, "total_steps": 2000, "run_dir": trial.run_dir}
    )
    assert yaml.safe_load(trial.config_yaml) == config_to_dict(expected)
    assert expected.noisy and trial.total_steps == 2000  # Rainbow's defaults, then the override


def test_plan_trials_rejects_unregistered_env_before_training(tmp_path):
    with pytest.raises(ConfigError, match="'Nope-v0' is not registered"):
        plan(tmp_path, env_ids=["CartPole-v1", "Nope-v0"])


def test_plan_trials_rejects_unknown_algo(tmp_path):
    with pytest.raises(ConfigError, match="algo must be one of"):
        plan(tmp_path, algos=["dqm"])


def test_plan_trials_rejects_override_of_grid_field(tmp_path):
    with pytest.raises(ConfigError, match="--seeds"):
        plan(tmp_path, overrides={"seed": 3})


def test_plan_trials_rejects_invalid_config(tmp_path):
    with pytest.raises(ConfigError, match="total_steps must be >= 1"):
        plan(tmp_path, overrides={"total_steps": 0})


def test_plan_trials_rejects_repeated_seed(tmp_path):
    with pytest.raises(ConfigError, match="twice"):
        plan(tmp_path, seeds=[1, 1])


def test_last_line_skips_progress_bar_redrawn_after_traceback(tmp_path):
    log = tmp_path / "trial.log"
    log.write_bytes(
        b"  5%|5 | 19/400 [00:00<00:05]\rTraceback (most recent call last):\n  File x\n"
        b"RuntimeError: boom\n\r  5%|5 | 19/400 [00:00<00:05]\n"
    )
    assert last_line(log) == "RuntimeError: boom"


def test_steps_done_is_last_progress_update(tmp_path):
    log = tmp_path / "trial.log"
    log.write_bytes(
        b"\r  0%|  | 0/400 [00:00<?, ?step/s]\r 25%|##| 100/400 [00:01<00:03]\r 50%|##| 200/400 [00:02<00:02]"
    )
    assert steps_done(log) == 200


def test_steps_done_before_first_update_is_none(tmp_path):
    assert steps_done(tmp_path / "not-started.log") is None
