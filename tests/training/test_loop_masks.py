"""The loop with action masks (training/loop.py's Stepper and adders, the replay they fill, the metric
log): acting takes legal actions only in every mode, replay stores the mask of each next
observation, a state with no legal action stops the run in one line, and ``--action-mask off``
changes nothing. On tests/masked_envs.py's envs, where an illegal action pays 10 and a legal one 1,
so that an episode's return is its length exactly when no illegal action was taken."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_family import train
from dqn_family.agents import load_model
from dqn_family.checkpoints import latest_checkpoint, load_checkpoint
from dqn_family.envs import MaskError
from dqn_family.replay import ReplayBuffer, SequenceReplayBuffer
from dqn_family.replay.masks import unpack_legal
from tests.masked_envs import (
    DICT_SPEC,
    EPISODE_LENGTH,
    INFO_SPEC,
    N_ACTIONS,
    STUCK_AT,
    STUCK_SPEC,
    TRUNCATE_SPEC,
    UNMASKED_SPEC,
    legal_at,
)
from tests.recording import record_instances
from tests.run_logs import read_scalars

REPO_ROOT = Path(__file__).resolve().parents[2]
RECURRENT = dict(recurrent="lstm", recurrent_size=8, sequence_length=8, sequence_overlap=4, burn_in=2)


def masked_config(tiny_config, env_spec: str = INFO_SPEC, **overrides):
    values = dict(
        env_id=env_spec,
        total_steps=200,
        learning_starts=40,
        batch_size=8,
        buffer_size=200,
        eval_frequency=200,
        eval_episodes=3,
        eval_epsilon=0.5,
        log_frequency=50,
    )
    return tiny_config(**{**values, **overrides})


@pytest.mark.parametrize(
    "env_spec, options",
    [
        (INFO_SPEC, {}),
        (DICT_SPEC, {"action_mask": "obs"}),
        (TRUNCATE_SPEC, {"n_step": 3, "num_envs": 2}),
        (INFO_SPEC, {"algo": "rainbow", "num_atoms": 11}),
        (INFO_SPEC, {"numpy_acting": False, "dueling": True}),
        (DICT_SPEC, RECURRENT),
    ],
    ids=["info", "dict", "nstep-truncate", "rainbow", "torch-dueling", "recurrent"],
)
def test_loop_with_masks_never_takes_an_illegal_action(tiny_config, env_spec, options):
    result = train.train(masked_config(tiny_config, env_spec, **options))
    scalars = read_scalars(result.run_dir)
    returns = [value for _, value in scalars["charts/episodic_return"]]
    assert len(returns) >= 30 and set(returns) == {float(EPISODE_LENGTH)}  # exploring at epsilon 1 -> 0.05
    assert result.final_eval.returns == [float(EPISODE_LENGTH)] * 3  # evaluated at epsilon 0.5
    assert [value for _, value in scalars["charts/illegal_actions"]] == [0.0] * 4  # logged at 50, ..., 200


def test_loop_stores_each_next_observations_mask_the_true_final_ones_included(tiny_config, monkeypatch):
    buffers = record_instances(monkeypatch, ReplayBuffer)
    train.train(masked_config(tiny_config, TRUNCATE_SPEC, total_steps=60, num_envs=2, eval_frequency=0))
    (buffer,) = buffers
    size = len(buffer)
    t_next = buffer.next_observations[:size, 0].astype(int)
    stored = unpack_legal(buffer.next_legal_bits[:size], N_ACTIONS)
    np.testing.assert_array_equal(stored, [legal_at(t) for t in t_next])
    assert buffer.truncated[:size].sum() == 12 and (t_next[buffer.truncated[:size]] == EPISODE_LENGTH).all()


def test_loop_stores_a_terminal_states_empty_mask_and_acts_on(tiny_config, monkeypatch):
    buffers = record_instances(monkeypatch, ReplayBuffer)
    train.train(masked_config(tiny_config, INFO_SPEC, total_steps=60, eval_frequency=0))
    (buffer,) = buffers
    stored = unpack_legal(buffer.next_legal_bits[: len(buffer)], N_ACTIONS)
    terminated = buffer.terminated[: len(buffer)]
    assert terminated.sum() == 12 and not stored[terminated].any() and stored[~terminated].sum(axis=1).min() == 2


def test_loop_with_recurrent_masks_stores_a_mask_per_observation(tiny_config, monkeypatch):
    buffers = record_instances(monkeypatch, SequenceReplayBuffer)
    train.train(masked_config(tiny_config, INFO_SPEC, total_steps=60, eval_frequency=0, **RECURRENT))
    (buffer,) = buffers
    batch = buffer.gather(np.arange(len(buffer)))
    for observations, legal, length in zip(batch.observations, batch.legal, buffer.arrays["lengths"]):
        t = observations[: length + 1, 0].astype(int)
        expected = [legal_at(step) if step < EPISODE_LENGTH else np.zeros(N_ACTIONS, bool) for step in t]
        np.testing.assert_array_equal(legal[: length + 1], expected)
        assert not legal[length + 1 :].any()  # padding


def test_loop_with_action_mask_off_on_a_masked_env_is_the_unmasked_run(tiny_config, tmp_path):
    masked_off = train.train(masked_config(tiny_config, INFO_SPEC, action_mask="off", run_dir=str(tmp_path / "a")))
    unmasked = train.train(masked_config(tiny_config, UNMASKED_SPEC, run_dir=str(tmp_path / "b")))
    off_scalars, plain_scalars = read_scalars(masked_off.run_dir), read_scalars(unmasked.run_dir)
    assert off_scalars["charts/episodic_return"] == plain_scalars["charts/episodic_return"]
    assert max(value for _, value in off_scalars["charts/episodic_return"]) > EPISODE_LENGTH  # illegal ones taken
    assert "charts/illegal_actions" not in off_scalars
    assert masked_off.final_eval == unmasked.final_eval
    weights = [load_model(run.run_dir / "model_latest.pt")["q_network"] for run in (masked_off, unmasked)]
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name
    payload = load_checkpoint(latest_checkpoint(masked_off.run_dir))
    assert "next_legal_bits" not in payload["replay"] and "illegal_actions" not in payload["metrics"]


def test_loop_with_masks_checkpoints_the_mask_bits_and_resumes(tiny_config):
    config = masked_config(tiny_config, INFO_SPEC, total_steps=100, checkpoint_every=50, eval_frequency=0)
    result = train.train(config)
    payload = load_checkpoint(latest_checkpoint(result.run_dir))
    assert payload["replay"]["next_legal_bits"].shape == (100, 1)
    assert payload["metrics"]["illegal_actions"] == 0
    resumed = train.resume(result.run_dir, {"total_steps": 160}, trust_imports=True)
    assert resumed.env_steps == 160 and resumed.resumed_from == 100
    scalars = read_scalars(result.run_dir)
    assert [value for _, value in scalars["charts/illegal_actions"]] == [0.0] * 3


def test_loop_stops_at_a_non_terminal_state_with_no_legal_action(tiny_config):
    with pytest.raises(MaskError, match=rf"env '{STUCK_SPEC}' allows no action .*env step {STUCK_AT}\)"):
        train.train(masked_config(tiny_config, STUCK_SPEC))


def run_train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *args, "--total-steps", "50", "--eval-frequency", "0", "--no-progress"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_train_command_all_illegal_state_is_one_line_naming_env_and_step(tmp_path):
    done = run_train("--env", STUCK_SPEC, "--num-envs", "2", "--run-dir", str(tmp_path / "run"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"train.py: error: env '{STUCK_SPEC}' allows no action in a non-terminal state" in done.stderr
    assert "env step 6)" in done.stderr  # both sub-envs reach episode step 3 at the vector step to env step 6


@pytest.mark.parametrize(
    "env_spec, setting, message",
    [
        ("CartPole-v1", "info", "--action-mask info needs info['action_mask'] from the env"),
        (INFO_SPEC, "obs", "--action-mask obs needs a Dict observation with an 'action_mask' key"),
    ],
)
def test_train_command_mask_source_missing_is_one_line_and_writes_nothing(tmp_path, env_spec, setting, message):
    done = run_train("--env", env_spec, "--action-mask", setting, "--run-dir", str(tmp_path / "run"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert not (tmp_path / "run").exists()


def test_train_command_refuses_an_unknown_action_mask_setting(tmp_path):
    done = run_train("--action-mask", "maybe", "--run-dir", str(tmp_path / "run"))
    assert done.returncode == 2 and "auto" in done.stderr and "maybe" in done.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_loop_trains_taxi_with_its_info_mask(tiny_config):
    """Taxi-v4's info mask forbids moves into walls and pickups/dropoffs that fail (-10 each): with
    it, every reward is -1, or +20 for the delivery that ends an episode."""
    config = tiny_config(
        env_id="Taxi-v4",
        total_steps=600,
        learning_starts=100,
        hidden_sizes=(32,),
        eval_frequency=600,
        log_frequency=200,
    )
    result = train.train(config)
    scalars = read_scalars(result.run_dir)
    episodes = zip(scalars["charts/episodic_return"], scalars["charts/episodic_length"])
    for (_, episode_return), (_, length) in episodes:
        assert episode_return in (-length, -length + 21)
    assert [value for _, value in scalars["charts/illegal_actions"]] == [0.0] * 3
    for episode_return, length in zip(result.final_eval.returns, result.final_eval.lengths):
        assert episode_return in (-length, -length + 21)
    assert load_checkpoint(latest_checkpoint(result.run_dir))["replay"]["next_legal_bits"].shape == (
        300,
        1,
    )  # buffer_size 300
