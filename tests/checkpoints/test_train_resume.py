"""train.py's checkpoints and resume: a checkpoint restores every part of the training state bit
for bit; resuming the same checkpoint twice logs identical metrics, with curves that continue
without gaps or duplicates; a finished run has nothing to resume; NaN stops training before it
reaches a checkpoint."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_family import train
from dqn_family.agents import DQNAgent
from dqn_family.checkpoints import latest_checkpoint, list_checkpoints, load_checkpoint
from dqn_family.configs import load_config
from dqn_family.configs.schedules import learning_rate_at
from dqn_family.training import MetricLog, NonFiniteError, loop, state
from dqn_family.training import state as training_state
from dqn_family.training.games import self_play_of
from tests.checkpoints.conftest import VARIANTS, checkpoint_steps, copy_run, file_hashes, leftovers, small_config
from tests.checkpoints.nan_env import NAN_SPEC
from tests.run_logs import read_scalars

WALL_CLOCK_TAGS = {"charts/sps", "eval/elapsed_seconds"}


def assert_same(expected, actual, where: str = "state") -> None:
    """Equal in type, structure and every bit (tensors and arrays compared as raw bytes)."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(actual, torch.Tensor), where
        assert (expected.dtype, expected.shape) == (actual.dtype, actual.shape), where
        assert expected.cpu().numpy().tobytes() == actual.cpu().numpy().tobytes(), where
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and list(expected) == list(actual), where
        for key in expected:
            assert_same(expected[key], actual[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert type(expected) is type(actual) and len(expected) == len(actual), where
        for i, (a, b) in enumerate(zip(expected, actual)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert type(expected) is type(actual), where
        both_nan = isinstance(expected, float) and math.isnan(expected) and math.isnan(actual)
        assert expected == actual or both_nan, where


def restored_state(config, payload) -> dict:
    """Build fresh parts for ``config``, restore ``payload`` into them, and read their state back."""
    device = torch.device("cpu")
    envs, agent, buffer, env_seeds = state.build_parts(config, device)
    try:
        self_play = self_play_of(config, agent.q_network, envs)
        run = state.Run(config, Path(config.run_dir), device, envs, agent, buffer, env_seeds, self_play)
        resumed = state.restore(run, payload)
        log = MetricLog(None, device)
        log.load_state_dict(resumed.metrics)
        return state.training_state(run, resumed.counters, log, resumed.final_eval)
    finally:
        envs.close()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_checkpoint_restores_every_part_of_training_state_bit_for_bit(tmp_path, monkeypatch, variant):
    captured = {}
    real_save = training_state.save_checkpoint

    def capturing_save(run_dir, state, *, env_step, keep):
        captured[env_step] = copy.deepcopy(state)  # the live state, at the moment it is saved
        return real_save(run_dir, state, env_step=env_step, keep=keep)

    monkeypatch.setattr(training_state, "save_checkpoint", capturing_save)
    # Logs every 75 steps, so the checkpoint at 200 holds loss sums not yet logged.
    config = small_config(tmp_path / "run", total_steps=400, log_frequency=75, **VARIANTS[variant])
    train.train(config)
    live = captured[200]
    payload = load_checkpoint(dict(list_checkpoints(config.run_dir))[200])
    assert set(live) == {"config", "spaces", "counters", "agent", "replay", "rng", "metrics", "final_eval", "self_play"}
    if variant == "self_play_pool":  # snapshots at steps 0, 60, 120 and 180; the pool keeps the last 3
        assert live["self_play"]["last_step"] == 200 and len(live["self_play"]["snapshots"]) == 3
    else:
        assert live["self_play"] is None
    assert_same(live, {key: payload[key] for key in live})  # what reached the disk
    assert_same(live, restored_state(config, payload))  # what a resumed run starts from
    assert live["replay"]["size"] > 190 and live["counters"]["updates"] > 0 and live["metrics"]["pending_updates"] > 0


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_resume_same_checkpoint_twice_logs_identical_metrics(finished_runs, tmp_path, variant):
    # Both copies were "killed" after their checkpoint at step 200 but with events logged up to 600.
    runs = [copy_run(finished_runs[variant], tmp_path / name, latest=200) for name in ("a", "b")]
    results = [train.resume(run) for run in runs]
    first, second = (read_scalars(run) for run in runs)
    assert set(first) == set(second) and len(first["losses/td_loss"]) > 5
    for tag in sorted(set(first) - WALL_CLOCK_TAGS):
        assert first[tag] == second[tag], tag
    assert results[0].updates == results[1].updates and results[0].episodes == results[1].episodes
    final = [load_checkpoint(latest_checkpoint(run)) for run in runs]
    for payload in final:  # same state except wall-clock time and where the run lives
        payload["counters"]["seconds"] = 0.0
        del payload["config"]["run_dir"]
    assert_same(final[0], final[1])


def test_resume_continues_curves_without_gaps_or_duplicates(finished_runs, tmp_path):
    original = read_scalars(finished_runs["dqn"])
    run = copy_run(finished_runs["dqn"], tmp_path / "run", latest=200)
    result = train.resume(run)
    resumed = read_scalars(run)
    assert [step for step, _ in resumed["charts/epsilon"]] == list(range(50, 601, 50))
    assert [step for step, _ in resumed["losses/td_loss"]] == list(range(100, 601, 50))
    assert [step for step, _ in resumed["eval/mean_return"]] == [300, 600]
    episode_steps = [step for step, _ in resumed["charts/episodic_return"]]
    assert episode_steps == sorted(set(episode_steps))
    for tag in ("charts/epsilon", "losses/td_loss", "charts/episodic_return"):  # up to the checkpoint: untouched
        assert [e for e in resumed[tag] if e[0] <= 200] == [e for e in original[tag] if e[0] <= 200], tag
    assert (result.env_steps, result.resumed_from) == (600, 200)
    assert result.updates == json.loads((finished_runs["dqn"] / "summary.json").read_text())["updates"]


def test_resume_writes_later_checkpoints_and_records_itself_in_meta(finished_runs, tmp_path):
    run = copy_run(finished_runs["dqn"], tmp_path / "run", latest=200)
    train.resume(run, {"keep_checkpoints": 2, "progress": False})
    assert checkpoint_steps(run) == [400, 600] and leftovers(run) == []
    (entry,) = json.loads((run / "meta.json").read_text())["resumes"]
    assert entry["from_env_step"] == 200 and entry["device"] == "cpu"


def test_resume_finished_run_changes_nothing(finished_runs, tmp_path):
    run = copy_run(finished_runs["dqn"], tmp_path / "run")
    before = file_hashes(run)
    result = train.resume(run)
    assert (result.env_steps, result.resumed_from) == (600, 600)
    assert result.final_eval is not None and result.best_eval_mean is not None
    assert file_hashes(run) == before


def test_resume_with_larger_total_steps_extends_a_finished_run(tmp_path, monkeypatch, capsys):
    rates: list[tuple[int, float]] = []  # (env step, learning rate) at each update

    def recording_learning_rate_at(config, env_step):
        rates.append((env_step, learning_rate_at(config, env_step)))
        return rates[-1][1]

    monkeypatch.setattr(loop, "learning_rate_at", recording_learning_rate_at)
    config = small_config(tmp_path / "run", total_steps=400, learning_rate=1e-3, learning_rate_end=1e-4)
    train.train(config)
    before = list(rates)
    assert train.main(["--resume", config.run_dir, "--total-steps", "600", "--no-progress"]) == 0
    run = Path(config.run_dir)
    assert json.loads((run / "summary.json").read_text())["env_steps"] == 600
    assert (load_config(run / "config.yaml").total_steps, load_config(run / "config.yaml").anneal_steps) == (600, 400)
    assert checkpoint_steps(run) == [200, 400, 600]
    assert "extending" in capsys.readouterr().err
    # Learning from step 100, an update every 2 steps: the decay over 0..400 as trained, then its end.
    assert [step for step, _ in before] == list(range(100, 401, 2))
    assert all(rate == pytest.approx(1e-3 - 9e-4 * step / 400) for step, rate in before)
    after = rates[len(before) :]
    assert [step for step, _ in after] == list(range(402, 601, 2)) and {rate for _, rate in after} == {
        learning_rate_at(config, 400)
    }
    assert train.main(["--resume", config.run_dir]) == 0  # config.yaml's new total: nothing left to do
    assert "already finished (600 env steps)" in capsys.readouterr().out


def test_resume_with_smaller_total_steps_is_one_line_and_changes_nothing(finished_runs, tmp_path, capsys):
    run = copy_run(finished_runs["dqn"], tmp_path / "run")
    before = file_hashes(run)
    assert train.main(["--resume", str(run), "--total-steps", "500"]) == 2
    assert capsys.readouterr().err == (
        "train.py: error: --total-steps 500 is below the run's: it already has total_steps=600; a resume can "
        "extend a run with a larger total, not shorten it (start a new run for fewer steps)\n"
    )
    assert file_hashes(run) == before


def test_train_writes_checkpoints_every_checkpoint_every_steps_and_at_exit(tmp_path):
    config = small_config(tmp_path / "run", total_steps=500, eval_frequency=0, log_frequency=100)
    train.train(config)
    assert checkpoint_steps(config.run_dir) == [200, 400, 500]


def test_train_with_checkpoint_every_0_writes_only_the_exit_checkpoint(tmp_path):
    config = small_config(tmp_path / "run", total_steps=300, checkpoint_every=0, eval_frequency=0)
    train.train(config)
    assert checkpoint_steps(config.run_dir) == [300]


@pytest.mark.parametrize(
    "options, message",
    [
        ({}, r"losses/td_loss is nan at env step 200; training stopped, the last good checkpoint \(env step 100\)"),
        (
            {"prioritized": True},
            r"TD errors are NaN or infinite at env step 1\d\d; training stopped, the last good "
            r"checkpoint \(env step 100\)",
        ),
    ],
    ids=["uniform", "prioritized"],
)
def test_nonfinite_loss_stops_training_naming_the_step_and_keeps_last_good_checkpoint(tmp_path, options, message):
    # Rewards turn NaN after env step 150; the loss is checked at each log (every 100 steps).
    config = small_config(
        tmp_path / "run",
        env_id=NAN_SPEC,
        total_steps=600,
        learning_starts=50,
        train_frequency=1,
        log_frequency=100,
        checkpoint_every=100,
        eval_frequency=0,
        **options,
    )
    with pytest.raises(NonFiniteError, match=message):
        train.train(config)
    assert checkpoint_steps(config.run_dir) == [100]
    payload = load_checkpoint(latest_checkpoint(config.run_dir))
    assert all(torch.isfinite(weights).all() for weights in payload["agent"]["q_network"].values())
    assert np.isfinite(payload["replay"]["rewards"].numpy()).all()


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # acting with inf weights
def test_nonfinite_weights_are_never_checkpointed(tmp_path, monkeypatch):
    config = small_config(tmp_path / "run", total_steps=300, eval_frequency=0)
    real_update = DQNAgent.update

    def poisoning_update(self, batch):
        metrics = real_update(self, batch)
        with torch.no_grad():
            next(self.q_network.parameters()).fill_(float("inf"))
        metrics["td_loss"] = torch.zeros(())  # a loss that looks fine: only the weights are broken
        metrics["q_values"] = torch.zeros(())
        return metrics

    monkeypatch.setattr(DQNAgent, "update", poisoning_update)
    with pytest.raises(
        NonFiniteError,
        match="q_network.torso.1.weight became NaN or infinite by env step 200; "
        "training stopped, no checkpoint was written yet",
    ):
        train.train(config)
    assert checkpoint_steps(config.run_dir) == []
