"""Recurrent runs through train.py (training.loop with recurrent acting and the sequence adder): a
smoke run's directory and evaluation, the recurrent state set to the network's initial state exactly
at episode starts in acting (training and evaluation) and stored with each sequence, exact resume,
and bad input as one line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dqn_family import evaluate, train
from dqn_family.checkpoints import latest_checkpoint, load_checkpoint
from dqn_family.configs import load_config
from dqn_family.envs import AutoresetTracker
from dqn_family.envs.pomdp import HIDDEN_VELOCITY
from tests.checkpoints.conftest import copy_run, small_config
from tests.checkpoints.test_train_resume import WALL_CLOCK_TAGS, assert_same, restored_state
from tests.recurrent.spy_nets import CountingNet
from tests.run_logs import read_scalars

RECURRENT = dict(
    recurrent="lstm",
    recurrent_size=8,
    sequence_length=8,
    sequence_overlap=4,
    burn_in=2,
    n_step=2,
    batch_size=4,
    env_id="envs.pomdp:CartPoleNoVelocity-v1",
)


@pytest.fixture(scope="module")
def recurrent_run(tmp_path_factory) -> Path:
    """600 steps of a rainbow-like recurrent run (prioritized sequences, C51 head, dueling, double),
    checkpoints at 200, 400 and 600."""
    run_dir = tmp_path_factory.mktemp("recurrent") / "run"
    options = dict(RECURRENT, algo="c51", num_atoms=11, v_min=0.0, v_max=50.0, prioritized=True, dueling=True)
    train.train(small_config(run_dir, **options, double=True))
    return run_dir


def test_recurrent_smoke_run_writes_run_directory_and_evaluates(recurrent_run, capsys):
    summary = json.loads((recurrent_run / "summary.json").read_text())
    assert summary["env_steps"] == 600 and summary["updates"] == 251
    assert {"config.yaml", "model_latest.pt", "model_best.pt", "summary.json"} <= {
        p.name for p in recurrent_run.iterdir()
    }
    scalars = read_scalars(recurrent_run)
    assert len(scalars["losses/td_loss"]) >= 5 and [s for s, _ in scalars["eval/mean_return"]] == [300, 600]
    # evaluate.py rebuilds the recurrent network from the run and reproduces the last evaluation
    assert evaluate.main([str(recurrent_run), "--episodes", "2"]) == 0
    assert f"{scalars['eval/mean_return'][-1][1]:.2f}" in capsys.readouterr().out


def test_recurrent_checkpoint_restores_every_part_bit_for_bit(recurrent_run):
    payload = load_checkpoint(latest_checkpoint(recurrent_run))
    config = load_config(recurrent_run / "config.yaml")
    restored = restored_state(config, payload)
    assert_same({key: payload[key] for key in restored}, restored)
    assert payload["replay"]["size"] > 0 and "sum_tree" in payload["replay"]


def test_recurrent_resume_same_checkpoint_twice_is_identical(recurrent_run, tmp_path):
    runs = [copy_run(recurrent_run, tmp_path / name, latest=200) for name in ("a", "b")]
    results = [train.resume(run) for run in runs]
    first, second = (read_scalars(run) for run in runs)
    for tag in sorted(set(first) - WALL_CLOCK_TAGS):
        assert first[tag] == second[tag], tag
    assert results[0].updates == results[1].updates == 251
    final = [load_checkpoint(latest_checkpoint(run)) for run in runs]
    for payload in final:
        payload["counters"]["seconds"] = 0.0
        del payload["config"]["run_dir"]
    assert_same(final[0], final[1])


@pytest.mark.parametrize("network, start", [("CountingNet", 0.0), ("CountingFromHundred", 100.0)])
def test_state_resets_exactly_at_episode_starts_in_acting_and_replay(tmp_path, monkeypatch, network, start):
    """CountingNet's state counts the steps since it was last reset: each action must be chosen from
    the count of steps its episode has had, and each sequence must store its start's count. Every
    episode starts from the network's own initial state (100 for CountingFromHundred), not zeros."""
    CountingNet.steps_seen.clear()
    real_masks: list[np.ndarray] = []
    real_steps = AutoresetTracker.real_steps

    def recording(self, terminated, truncated):
        real = real_steps(self, terminated, truncated)
        real_masks.append(real.copy())
        return real

    monkeypatch.setattr(AutoresetTracker, "real_steps", recording)
    config = small_config(
        tmp_path / "run",
        **{**RECURRENT, "env_id": "CartPole-v1", "recurrent": "custom", "sequence_overlap": 3},
        network=f"tests.recurrent.spy_nets:{network}",
        num_envs=2,
        total_steps=300,
        learning_starts=10_000,
        eval_frequency=300,
        eval_episodes=3,
        checkpoint_every=0,
    )
    train.train(config)
    # First build_network's probe of the interface, then the loop's [vector steps, 2], then the evaluation's.
    assert CountingNet.steps_seen[0] == [start, start]
    training = np.array(CountingNet.steps_seen[1 : 1 + len(real_masks)]) - start
    expected = np.zeros_like(training)
    for t in range(1, len(training)):  # the step after an autoreset step (not real) starts an episode
        expected[t] = np.where(real_masks[t - 1], expected[t - 1] + 1, 0)
    assert np.array_equal(training, expected)
    assert (training == 0).sum() >= 10  # several episodes in each sub-env
    evaluation = [states[0] - start for states in CountingNet.steps_seen[1 + len(real_masks) :]]
    episode_starts = [k for k, steps in enumerate(evaluation) if steps == 0]
    assert len(episode_starts) == 3 and all(
        evaluation[k] == k - max(s for s in episode_starts if s <= k) for k in range(len(evaluation))
    )
    replay = load_checkpoint(latest_checkpoint(config.run_dir))["replay"]
    states = replay["states"][:, 0] - start
    assert set(np.unique(states)) <= {0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0}  # starts every 8 - 3 steps
    assert (states == 0).sum() >= 5


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--burn-in", "8", "--sequence-length", "8"], "burn_in (8) must be below sequence_length (8)"),
        (
            ["--buffer-size", "10", "--batch-size", "4", "--sequence-length", "20", "--burn-in", "2"],
            "must hold at least one sequence",
        ),
        (["--torso", "nature_cnn"], "--recurrent lstm: torso nature_cnn needs 3-D observations"),
        (["--recurrent", "custom", "--network", "tests.recurrent.spy_nets:NotRecurrent"], "is not recurrent"),
        (["--compile"], "torch.compile does not trace nn.LSTM/nn.GRU"),
    ],
)
def test_recurrent_bad_input_exits_2_with_one_line(tmp_path, capsys, args, expected):
    argv = ["--env", "envs.pomdp:CartPoleNoVelocity-v1", "--recurrent", "lstm", "--total-steps", "10"]
    code = train.main([*argv, "--run-dir", str(tmp_path / "run"), "--no-progress", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and expected in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize(
    "env_id", [f"envs.pomdp:{name}" for name in HIDDEN_VELOCITY] + ["dqn_family.envs.pomdp:CartPoleNoVelocity-v1"]
)
def test_pomdp_env_ids_hide_the_velocities(env_id):
    from dqn_family.envs import make_env

    env = make_env(env_id)
    observation, _ = env.reset(seed=0)
    assert observation.shape == ((2,) if "CartPole" in env_id else (4,)) and env.spec.max_episode_steps == 500
    env.close()


def test_project_env_module_is_trusted_in_a_run_config_but_user_modules_are_not(tmp_path):
    from dqn_family.configs.trust import UntrustedImportError, check_run_imports

    check_run_imports({"env_id": "envs.pomdp:CartPoleNoVelocity-v1"}, tmp_path)
    with pytest.raises(UntrustedImportError):
        check_run_imports({"env_id": "envs_pomdp_lookalike:CartPoleNoVelocity-v1"}, tmp_path)


def test_popgym_tasks_are_reachable_by_id():
    pytest.importorskip("popgym")
    from dqn_family.envs import make_env

    for task, shape in (("StatelessCartPoleEasy", (2,)), ("RepeatPreviousEasy", ()), ("AutoencodeEasy", (6,))):
        env = make_env(f"envs.popgym_tasks:POPGym-{task}-v0")
        assert env.observation_space.shape == shape
        env.close()
