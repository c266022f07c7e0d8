"""train.py: the loop's bookkeeping on a scripted env (what is stored, counted and logged), an
in-process smoke run's directory, determinism, the command line's errors, and a learning test."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_family import train
from dqn_family.agents import load_model
from dqn_family.configs import ConfigError, load_config
from dqn_family.configs.schedules import crossed, linear_schedule
from dqn_family.replay import ReplayBuffer
from dqn_family.training import state as training_state
from dqn_family.training.hooks import StopTraining
from tests.recording import record_instances
from tests.run_logs import read_scalars, read_text
from tests.scripted_envs import EPISODE_LENGTH, TERMINATE_SPEC, TRUNCATE_SPEC

REPO_ROOT = Path(__file__).resolve().parent.parent


# --- crossed ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "before, after, interval, expected",
    [
        (0, 1, 4, 0),
        (3, 4, 4, 1),  # reaching a multiple counts
        (4, 5, 4, 0),  # leaving one does not
        (0, 4, 4, 1),
        (3, 9, 4, 2),  # 4 and 8
        (7, 16, 4, 3),  # 8, 12 and 16
        (5, 5, 4, 0),  # no progress (all sub-envs autoresetting)
        (0, 1, 1, 1),
        (999, 1001, 1000, 1),
    ],
)
def test_crossed_counts_multiples_in_half_open_interval(before, after, interval, expected):
    assert crossed(before, after, interval) == expected


# --- the loop on scripted envs -------------------------------------------------------------------


@pytest.fixture
def buffers(monkeypatch) -> list[ReplayBuffer]:
    """Every ReplayBuffer the code under test creates, to look inside after train() returns."""
    return record_instances(monkeypatch, ReplayBuffer)


def scripted_config(tiny_config, env_spec: str, **overrides):
    return tiny_config(
        env_id=env_spec,
        learning_starts=4,
        batch_size=4,
        buffer_size=100,
        train_frequency=1,
        target_update_interval=2,
        log_frequency=3,
        **overrides,
    )


def test_train_never_stores_autoreset_step(tiny_config, buffers):
    result = train.train(scripted_config(tiny_config, TERMINATE_SPEC, total_steps=9))
    (buffer,) = buffers
    observations, next_observations = buffer.observations[: len(buffer)], buffer.next_observations[: len(buffer)]
    # 9 real steps = 3 whole episodes; the 2 autoreset steps between them are not transitions.
    assert (result.env_steps, result.episodes, len(buffer)) == (9, 3, 9)
    np.testing.assert_array_equal(observations[:, 0], [0, 1, 2] * 3)
    np.testing.assert_array_equal(observations[:, 1], [0, 0, 0, 1, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(next_observations - observations, np.tile([1.0, 0.0], (9, 1)))


def test_train_stores_termination_with_terminated_1(tiny_config, buffers):
    train.train(scripted_config(tiny_config, TERMINATE_SPEC, total_steps=9))
    (buffer,) = buffers
    np.testing.assert_array_equal(np.flatnonzero(buffer.terminated[:9]), [2, 5, 8])
    assert not buffer.truncated[:9].any()


def test_train_stores_truncation_with_true_final_observation_and_terminated_0(tiny_config, buffers):
    result = train.train(scripted_config(tiny_config, TRUNCATE_SPEC, total_steps=12, num_envs=2))
    (buffer,) = buffers
    n = len(buffer)
    observations, next_observations = buffer.observations[:n], buffer.next_observations[:n]
    ends = np.flatnonzero(buffer.truncated[:n])
    assert (result.env_steps, result.episodes, n) == (12, 4, 12)
    assert len(ends) == 4
    np.testing.assert_array_equal(next_observations[ends, 0], [EPISODE_LENGTH] * 4)  # the final obs, t = 3
    np.testing.assert_array_equal(next_observations[ends, 1], observations[ends, 1])  # of the same episode
    assert not buffer.terminated[:n].any()  # so all of them bootstrap
    assert (observations[:, 0] < EPISODE_LENGTH).all()  # no autoreset step (obs t = 3 -> reset) stored


def test_train_logs_each_episode_at_its_last_step(tiny_config):
    result = train.train(scripted_config(tiny_config, TERMINATE_SPEC, total_steps=9))
    scalars = read_scalars(result.run_dir)
    assert scalars["charts/episodic_return"] == [(3, 3.0), (6, 3.0), (9, 3.0)]
    assert scalars["charts/episodic_length"] == [(3, 3.0), (6, 3.0), (9, 3.0)]


def test_train_counts_updates_per_train_frequency_after_learning_starts(tiny_config):
    # Updates at env steps 4, 5, ..., 9 (train_frequency 1, learning_starts 4): 6 of them.
    result = train.train(scripted_config(tiny_config, TERMINATE_SPEC, total_steps=9))
    assert result.updates == 6


def test_train_final_eval_on_scripted_env_scores_episode_length(tiny_config):
    result = train.train(scripted_config(tiny_config, TERMINATE_SPEC, total_steps=9, eval_frequency=9, eval_episodes=2))
    assert result.final_eval.returns == [3.0, 3.0]
    assert result.final_eval.lengths == [3, 3]


def test_train_refuses_non_empty_run_dir_and_leaves_it_alone(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists and is not empty"):
        train.train(tiny_config(run_dir=str(run_dir)))
    assert [p.name for p in run_dir.iterdir()] == ["notes.txt"]
    assert (run_dir / "notes.txt").read_text() == "mine"


def test_train_accepts_existing_empty_run_dir(tiny_config, tmp_path):
    (tmp_path / "run").mkdir()
    result = train.train(tiny_config(total_steps=20, learning_starts=100))
    assert (result.run_dir / "config.yaml").is_file()


def test_train_on_evaluation_gets_each_evaluation_step_and_mean(tiny_config):
    seen = []
    train.train(
        scripted_config(tiny_config, TERMINATE_SPEC, total_steps=9, eval_frequency=3, eval_episodes=2),
        on_evaluation=lambda step, mean: seen.append((step, mean)),
    )
    assert seen == [(3, 3.0), (6, 3.0), (9, 3.0)]  # every scripted episode lasts 3 steps, reward 1 each


def test_train_stop_training_ends_run_cleanly_and_summary_says_why(tiny_config):
    def stop_at_6(step: int, mean: float) -> None:
        if step == 6:
            raise StopTraining("pruned at 6")

    result = train.train(
        scripted_config(tiny_config, TERMINATE_SPEC, total_steps=30, eval_frequency=3, eval_episodes=2),
        on_evaluation=stop_at_6,
    )
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert (result.env_steps, result.stopped_early) == (6, "pruned at 6")
    assert (summary["env_steps"], summary["stopped_early"]) == (6, "pruned at 6")
    assert (result.run_dir / "model_latest.pt").is_file()


def test_train_summary_of_a_full_run_says_not_stopped_early(cartpole_run):
    _, result = cartpole_run
    assert json.loads((result.run_dir / "summary.json").read_text())["stopped_early"] is None


# --- smoke run: what a finished run leaves behind ----------------------------------------------


def test_train_smoke_run_writes_run_directory_files(cartpole_run):
    _, result = cartpole_run
    names = {p.name for p in result.run_dir.iterdir()}
    assert {"config.yaml", "meta.json", "summary.json", "model_latest.pt", "model_best.pt"} <= names
    assert any(name.startswith("events.out.tfevents.") for name in names)


def test_train_smoke_run_config_yaml_is_the_resolved_config(cartpole_run):
    config, result = cartpole_run
    assert load_config(result.run_dir / "config.yaml") == dataclasses.replace(config, run_dir=str(result.run_dir))


def test_train_smoke_run_meta_records_versions_and_device(cartpole_run):
    _, result = cartpole_run
    meta = json.loads((result.run_dir / "meta.json").read_text())
    assert meta["device"] == "cpu"
    assert {"torch", "gymnasium", "numpy", "python", "command", "started"} <= set(meta)


def test_train_smoke_run_summary_matches_result(cartpole_run):
    _, result = cartpole_run
    summary = json.loads((result.run_dir / "summary.json").read_text())
    # Updates at every 4th env step from 100 to 600: 100/4 .. 600/4 is 126 of them.
    assert (summary["env_steps"], summary["updates"], result.updates) == (600, 126, 126)
    assert summary["episodes"] == result.episodes > 0
    assert summary["final_eval_mean_return"] == result.final_eval.mean
    assert summary["best_eval_mean_return"] == result.best_eval_mean


def test_train_smoke_run_models_hold_latest_and_best(cartpole_run):
    _, result = cartpole_run
    evals = read_scalars(result.run_dir)["eval/mean_return"]
    latest, best = load_model(result.run_dir / "model_latest.pt"), load_model(result.run_dir / "model_best.pt")
    assert latest["env_step"] == 600
    assert best["eval_mean_return"] == pytest.approx(max(value for _, value in evals))
    assert best["env_step"] in (300, 600)


def test_train_smoke_run_logs_namespaced_tags(cartpole_run):
    _, result = cartpole_run
    tags = set(read_scalars(result.run_dir))
    assert {
        "charts/episodic_return",
        "charts/episodic_length",
        "charts/epsilon",
        "charts/sps",
        "losses/td_loss",
        "losses/q_values",
        "eval/mean_return",
    } <= tags


def test_train_smoke_run_logs_every_log_frequency_and_eval_frequency(cartpole_run):
    _, result = cartpole_run
    scalars = read_scalars(result.run_dir)
    every_100 = [100, 200, 300, 400, 500, 600]
    assert [step for step, _ in scalars["charts/epsilon"]] == every_100
    assert [step for step, _ in scalars["losses/td_loss"]] == every_100  # first update at step 100
    assert [step for step, _ in scalars["eval/mean_return"]] == [300, 600]


def test_train_smoke_run_logs_epsilon_of_the_latest_step(cartpole_run):
    config, result = cartpole_run
    # The env step that reached step s was taken with epsilon of step s - 1: 1 - 0.95 * 99 / 400 at s = 100.
    for step, value in read_scalars(result.run_dir)["charts/epsilon"]:
        expected = linear_schedule(step - 1, start=1.0, end=0.05, decay_steps=config.epsilon_decay_steps)
        assert value == pytest.approx(expected, abs=1e-6)


def test_train_smoke_run_logs_hyperparameters_text(cartpole_run):
    _, result = cartpole_run
    text = read_text(result.run_dir, "hyperparameters")
    assert text.startswith("|param|value|")
    assert "|total_steps|600|" in text and "|learning_starts|100|" in text


# --- determinism -------------------------------------------------------------------------------------


def test_train_same_seed_gives_identical_logged_metrics(tiny_config, tmp_path):
    options = dict(
        total_steps=2000,
        learning_starts=200,
        train_frequency=1,
        buffer_size=2000,
        batch_size=32,
        target_update_interval=100,
        epsilon_decay_steps=1000,
        log_frequency=100,
        eval_frequency=1000,
        eval_episodes=2,
        seed=5,
    )
    first = read_scalars(train.train(tiny_config(**options, run_dir=str(tmp_path / "a"))).run_dir)
    second = read_scalars(train.train(tiny_config(**options, run_dir=str(tmp_path / "b"))).run_dir)
    wall_clock = {"charts/sps", "eval/elapsed_seconds"}
    assert set(first) == set(second)
    assert len(first["losses/td_loss"]) == 19 and len(set(v for _, v in first["losses/td_loss"])) > 1
    for tag in sorted(set(first) - wall_clock):
        assert first[tag] == second[tag], tag


@pytest.mark.parametrize("options", [{}, {"prioritized": True, "n_step": 3, "num_envs": 2}])
def test_train_with_device_replay_copy_learns_exactly_as_host_replay(tiny_config, tmp_path, monkeypatch, options):
    """On CUDA the buffer gathers batches from its device copy; forced here on the CPU, where the
    arithmetic is the same, the run must be identical to one that gathers on the host."""
    config = dict(
        total_steps=1200,
        learning_starts=200,
        train_frequency=1,
        buffer_size=500,
        batch_size=32,
        target_update_interval=100,
        log_frequency=100,
        seed=3,
        **options,
    )
    host = read_scalars(train.train(tiny_config(**config, run_dir=str(tmp_path / "host"))).run_dir)
    build_replay = training_state.build_replay
    copies = []

    def with_device_copy(*args, device=None, **kwargs):
        buffer = build_replay(*args, device=torch.device("cpu"), **kwargs)
        copies.append(buffer.mirror)
        return buffer

    monkeypatch.setattr(training_state, "build_replay", with_device_copy)
    device = read_scalars(train.train(tiny_config(**config, run_dir=str(tmp_path / "device"))).run_dir)
    assert len(copies) == 1 and copies[0] is not None
    assert len(host["losses/td_loss"]) >= 10 and len({value for _, value in host["losses/td_loss"]}) > 1
    for tag in ("losses/td_loss", "losses/q_values", "charts/episodic_return"):
        assert device[tag] == host[tag], tag


# --- command line --------------------------------------------------------------------------------------


def run_train_cli(*args: str) -> subprocess.CompletedProcess:
    # Tiny settings, so that a check that wrongly passes ends quickly instead of training for minutes.
    return subprocess.run(
        [sys.executable, "train.py", *args, "--total-steps", "50", "--eval-frequency", "0", "--no-progress"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--env", "NoSuchEnv-v0"], "NoSuchEnv-v0"),
        (["--env", "Pendulum-v1"], "Discrete action space"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["--learning-rate", "-0.001"], "learning_rate must be a finite number > 0"),
        (["--gamma", "1.5"], "gamma must be in [0, 1]"),
        (["--batch-size", "64", "--buffer-size", "32"], "batch_size (64) must not exceed buffer_size (32)"),
        (["--config", "{tmp}/missing.yaml"], "missing.yaml does not exist"),
        (["--config", "{tmp}/broken.yaml"], "broken.yaml is not valid YAML"),
    ],
)
def test_train_cli_bad_input_exits_2_with_one_line(tmp_path, args, expected):
    (tmp_path / "broken.yaml").write_text("gamma: [0.9\n")
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    completed = run_train_cli(*args, "--run-dir", str(tmp_path / "run"))
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert completed.stderr.startswith("train.py: error: ") and expected in completed.stderr
    assert not (tmp_path / "run").exists()


def test_train_cli_non_empty_run_dir_exits_2_and_keeps_its_file(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("seed: 7\n")
    completed = run_train_cli("--run-dir", str(run_dir))
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr and completed.stderr.count("\n") == 1
    assert "already exists and is not empty" in completed.stderr
    assert (run_dir / "config.yaml").read_text() == "seed: 7\n"
    assert [p.name for p in run_dir.iterdir()] == ["config.yaml"]


# --- learning ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_train_dqn_learns_cartpole(tiny_config):
    # Random play scores ~22 on CartPole; these settings reach 150-500 on each of seeds 1-6 in 20k steps.
    config = tiny_config(
        seed=3,
        total_steps=20_000,
        learning_rate=5e-4,
        batch_size=64,
        buffer_size=20_000,
        learning_starts=1_000,
        train_frequency=1,
        target_update_interval=200,
        double=True,
        loss="mse",
        epsilon_end=0.02,
        epsilon_decay_steps=8_000,
        hidden_sizes=(64, 64),
        log_frequency=1_000,
        eval_frequency=20_000,
        eval_episodes=10,
    )
    result = train.train(config)
    assert result.final_eval.mean >= 150, result.final_eval.returns


def test_train_config_text_in_tensorboard_names_the_run_directory(tiny_config, tmp_path):
    config = tiny_config(run_dir=None)
    previous = Path.cwd()
    try:  # the default run directory is made under the current folder
        import os

        os.chdir(tmp_path)
        result = train.train(config)
    finally:
        os.chdir(previous)
    assert f"|run_dir|{result.run_dir}|" in read_text(tmp_path / result.run_dir, "hyperparameters")


def test_train_says_why_a_vector_step_passed_total_steps(tiny_config, capsys, monkeypatch):
    from dqn_family.training import progress as progress_module

    monkeypatch.setattr(progress_module, "LINE_INTERVAL_S", 3600.0)
    result = train.train(tiny_config(num_envs=4, total_steps=302, progress=True))
    assert result.env_steps > 302  # 4 envs move at once (autoreset steps are not counted)
    assert (
        f"stopped at {result.env_steps} env steps, past total_steps 302: "
        "the last step of the 4 envs together went past it" in capsys.readouterr().err
    )
