"""multirun.py: a grid where one trial crashes mid-training still trains the others, locally and
on a local Ray instance; flags reach train.py; used run directories are refused or skipped."""

from __future__ import annotations

import json

import pytest

from dqn_family import multirun
from dqn_family.configs import train_overrides
from tests.analysis.crashing_env import CRASHING_SPEC

TINY = [
    "--set",
    "total_steps=300",
    "learning_starts=50",
    "batch_size=8",
    "buffer_size=300",
    "hidden_sizes=16",
    "eval_frequency=150",
    "eval_episodes=1",
    "--seeds",
    "1",
    "--workers",
    "1",
]  # one training at a time


def check_survived_crash(root, exit_code, output):
    assert exit_code == 1
    good = root / "CartPole-v1__dqn__s1"
    assert json.loads((good / "summary.json").read_text())["env_steps"] == 300
    assert (good / "model_latest.pt").is_file()
    outcomes = {o["name"]: o for o in json.loads((root / "multirun" / "outcomes.json").read_text())}
    assert outcomes["CartPole-v1__dqn__s1"]["returncode"] == 0
    crashed = outcomes["TestOnly_CrashingEnv-v0__dqn__s1"]
    assert crashed["error"] == "RuntimeError: CrashingEnv crashed on purpose at step 20"
    assert "1 of 2 trials failed" in output


def test_multirun_local_survives_a_crashing_trial(tmp_path, capsys):
    code = multirun.main(["--envs", "CartPole-v1", CRASHING_SPEC, "--root", str(tmp_path), *TINY])
    check_survived_crash(tmp_path, code, capsys.readouterr().out)


@pytest.mark.slow
def test_multirun_ray_survives_a_crashing_trial(tmp_path, capsys):
    pytest.importorskip("ray")
    code = multirun.main(["--envs", "CartPole-v1", CRASHING_SPEC, "--root", str(tmp_path), "--backend", "ray", *TINY])
    check_survived_crash(tmp_path, code, capsys.readouterr().out)


def test_multirun_dry_run_passes_flags_after_double_dash_to_train(tmp_path, capsys):
    assert multirun.main(["--root", str(tmp_path), "--seeds", "1", "--dry-run", "--", "--total-steps", "1234"]) == 0
    assert "CartPole-v1__dqn__s1: 1,234 env steps" in capsys.readouterr().out


def test_multirun_refuses_a_used_run_directory(tmp_path, capsys):
    (tmp_path / "CartPole-v1__dqn__s1").mkdir()
    (tmp_path / "CartPole-v1__dqn__s1" / "config.yaml").write_text("env_id: CartPole-v1\n")
    assert multirun.main(["--root", str(tmp_path), "--seeds", "1", "--dry-run"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_multirun_skip_finished_trains_only_the_rest(tmp_path, capsys):
    (tmp_path / "CartPole-v1__dqn__s1").mkdir()
    (tmp_path / "CartPole-v1__dqn__s1" / "summary.json").write_text("{}")
    assert multirun.main(["--root", str(tmp_path), "--seeds", "1", "2", "--skip-finished", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "1 trial to train" in out and "1 already finished" in out and "__s1:" not in out


def test_multirun_set_with_unknown_key_is_one_line_error(tmp_path, capsys):
    assert multirun.main(["--root", str(tmp_path), "--set", "learning_rat=1e-3", "--dry-run"]) == 2
    assert capsys.readouterr().err == (
        "multirun.py: error: unknown config key 'learning_rat' in --set; did you mean 'learning_rate'?\n"
    )


def test_multirun_set_parses_values_like_train_flags(tmp_path):
    overrides, config_file = train_overrides(
        ["learning_rate=1e-3", "double=false", "hidden_sizes=64,64", "max_grad_norm=none"], ["--config", "my.yaml"]
    )
    assert overrides == {"learning_rate": 1e-3, "double": False, "hidden_sizes": (64, 64), "max_grad_norm": None}
    assert config_file == "my.yaml"


def test_multirun_accepts_train_flags_without_a_double_dash(capsys):
    assert multirun.main(["--envs", "CartPole-v1", "--seeds", "1", "--total-steps", "5000", "--dry-run"]) == 0
    assert "5,000 env steps" in capsys.readouterr().out


def test_multirun_unknown_flag_is_one_line_naming_it(capsys):
    with pytest.raises(SystemExit) as raised:
        multirun.main(["--envs", "CartPole-v1", "--bogus", "5", "--dry-run"])
    assert raised.value.code == 2 and "unrecognized arguments: --bogus 5" in capsys.readouterr().err
