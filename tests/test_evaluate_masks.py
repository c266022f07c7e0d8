"""evaluate.py with action masks: evaluate_policy's greedy and random actions are legal ones on every
acting path (numpy, torch, recurrent), ``off`` ignores the mask, and a state with no legal action is
one line naming the env; ``evaluate.py RUN_DIR`` evaluates with the run's setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dqn_family import train
from dqn_family.agents import MLPQNetwork, build_recurrent_network
from dqn_family.envs import MaskError
from dqn_family.evaluate import evaluate_policy
from tests.masked_envs import DICT_SPEC, EPISODE_LENGTH, INFO_SPEC, N_ACTIONS, STUCK_SPEC

REPO_ROOT = Path(__file__).resolve().parent.parent


def mlp() -> MLPQNetwork:
    torch.manual_seed(0)
    return MLPQNetwork((2,), N_ACTIONS, hidden_sizes=(8,))


@pytest.mark.parametrize("numpy_acting", [True, False])
@pytest.mark.parametrize("env_spec", [INFO_SPEC, DICT_SPEC])
def test_evaluate_policy_with_masks_takes_legal_actions_only(env_spec, numpy_acting):
    result = evaluate_policy(
        mlp(), env_spec, episodes=8, seed=0, epsilon=0.5, numpy_acting=numpy_acting, action_mask="auto"
    )
    assert result.returns == [float(EPISODE_LENGTH)] * 8  # an illegal action would pay 10


def test_evaluate_policy_with_masks_recurrent_takes_legal_actions_only():
    torch.manual_seed(0)
    network = build_recurrent_network((2,), N_ACTIONS, core="lstm", hidden_size=8, hidden_sizes=(8,), activation="relu")
    result = evaluate_policy(network, INFO_SPEC, episodes=8, seed=0, epsilon=0.5, action_mask="info")
    assert result.returns == [float(EPISODE_LENGTH)] * 8


def test_evaluate_policy_with_action_mask_off_ignores_the_mask():
    result = evaluate_policy(mlp(), INFO_SPEC, episodes=8, seed=0, epsilon=0.5, action_mask="off")
    assert max(result.returns) > EPISODE_LENGTH


def test_evaluate_policy_state_with_no_legal_action_is_a_mask_error():
    with pytest.raises(MaskError, match=r"allows no action in a non-terminal state \(sub-env 0, env step 3\)"):
        evaluate_policy(mlp(), STUCK_SPEC, episodes=2, seed=0, action_mask="auto")


def test_evaluate_cli_evaluates_with_the_runs_masks(tiny_config, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    config = tiny_config(env_id=INFO_SPEC, total_steps=60, learning_starts=20, eval_frequency=0)
    run_dir = train.train(config).run_dir
    done = subprocess.run(
        [sys.executable, "evaluate.py", str(run_dir), "--episodes", "5", "--epsilon", "0.5", "--trust-imports"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "mean return 5.00 ± 0.00 over 5 episodes" in done.stdout
