"""train.py on pixels: what learning sees of Atari steps (clipped rewards, lost lives as terminal),
and short smoke runs on an ALE game and on MinAtar with their presets and a tiny buffer."""

from __future__ import annotations

import numpy as np
import pytest

from dqn_family import evaluate, train
from dqn_family.configs import resolve_config
from dqn_family.envs import learning_signal
from dqn_family.replay import FrameStackStorage, ReplayBuffer
from tests.recording import record_instances

pytest.importorskip("ale_py")
pytest.importorskip("minatar")


@pytest.fixture
def buffers(monkeypatch) -> list[ReplayBuffer]:
    """Every ReplayBuffer train() creates."""
    return record_instances(monkeypatch, ReplayBuffer)


def test_learning_signal_clips_rewards_and_ends_lives_only_for_learning():
    config = resolve_config({"env_id": "ALE/Breakout-v5"})
    rewards, terminated = np.array([0.0, 4.0, -2.5, 7.0]), np.array([False, False, False, True])
    infos = {"life_loss": np.array([False, True, True, False]), "_life_loss": np.array([True, True, False, True])}
    learn_rewards, learn_terminated = learning_signal(config, rewards, terminated, infos)
    np.testing.assert_array_equal(learn_rewards, [0.0, 1.0, -1.0, 1.0])
    # env 2's life_loss is not set (its mask is False): only env 1 lost a life; env 3 really ended.
    np.testing.assert_array_equal(learn_terminated, [False, True, False, True])
    np.testing.assert_array_equal(rewards, [0.0, 4.0, -2.5, 7.0])  # the env's own stay for logging


def test_learning_signal_with_both_switches_off_is_the_env_step():
    config = resolve_config({"env_id": "ALE/Breakout-v5", "clip_rewards": False, "terminal_on_life_loss": False})
    rewards, terminated = np.array([4.0]), np.array([False])
    learn_rewards, learn_terminated = learning_signal(
        config, rewards, terminated, {"life_loss": np.array([True]), "_life_loss": np.array([True])}
    )
    assert (learn_rewards[0], learn_terminated[0]) == (4.0, False)


def _tiny(env_id: str, tmp_path, **overrides):
    values = dict(
        env_id=env_id,
        total_steps=400,
        learning_starts=100,
        batch_size=8,
        buffer_size=400,
        train_frequency=4,
        target_update_interval=100,
        epsilon_decay_steps=200,
        hidden_sizes=(16,),
        log_frequency=100,
        eval_frequency=400,
        eval_episodes=1,
        checkpoint_every=0,
        progress=False,
        device="cpu",
        run_dir=str(tmp_path / "run"),
    )
    return resolve_config({**values, **overrides})


def test_train_atari_smoke_run_stores_frames_once_and_ends_lives_for_learning(tmp_path, buffers):
    config = _tiny("ALE/Breakout-v5", tmp_path, sticky_actions=0.0)
    result = train.train(config)
    (buffer,) = buffers
    assert isinstance(buffer.storage, FrameStackStorage) and len(buffer) == 400
    # Stacks share frames: ~one stored frame per transition, not 8.
    assert buffer.storage.live_frames <= len(buffer) + 4 * (result.episodes + 2)
    terminated = buffer.terminated[: len(buffer)]
    # Every game of Breakout has 5 lives: each finished game ended 5 times for learning.
    assert terminated.sum() >= 5 * result.episodes and result.episodes >= 1
    assert set(np.unique(buffer.rewards[: len(buffer)])) <= {0.0, 1.0}  # clipped; Breakout has no negative rewards
    assert result.final_eval is not None and (tmp_path / "run" / "model_latest.pt").is_file()
    _, network = evaluate.load_run(tmp_path / "run", device="cpu")
    assert network.torso_kind == "nature_cnn"


def test_train_atari_without_life_loss_terminal_stores_only_game_ends(tmp_path, buffers):
    config = _tiny("ALE/Breakout-v5", tmp_path, sticky_actions=0.0, terminal_on_life_loss=False, eval_frequency=0)
    result = train.train(config)
    (buffer,) = buffers
    assert buffer.terminated[: len(buffer)].sum() == result.episodes


def test_train_minatar_smoke_run_and_evaluate(tmp_path, buffers):
    config = _tiny("MinAtar/Breakout-v1", tmp_path, max_episode_steps=50)
    result = train.train(config)
    (buffer,) = buffers
    assert buffer.observations.dtype == np.bool_ and buffer.observations.shape[1:] == (10, 10, 4)
    assert result.env_steps == 400 and result.final_eval is not None
    outcome = evaluate.main([str(tmp_path / "run"), "--episodes", "2"])
    assert outcome == 0


def test_train_cli_wrong_torso_for_atari_frames_is_one_line_exit_2(tmp_path, capsys):
    code = train.main(["--env", "ALE/Breakout-v5", "--torso", "minatar_cnn", "--run-dir", str(tmp_path / "run")])
    stderr = capsys.readouterr().err
    assert code == 2 and stderr.count("\n") == 1 and "torso minatar_cnn needs channels-last grids" in stderr
    assert not (tmp_path / "run").exists()
