"""Discrete observations end to end (FrozenLake without slipping, tests/discrete_envs.py): DQN
learns the 6-step path to the goal in 2,000 env steps; evaluate.py reloads the run and acts the
same with the numpy and the torch forward; a checkpoint of the run resumes to the end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dqn_family import evaluate, train
from dqn_family.configs import resolve_config
from dqn_family.envs import EnvOptions
from tests.checkpoints.conftest import copy_run
from tests.discrete_envs import FROZEN_LAKE_SPEC, SHORTEST_PATH_STEPS

TOTAL_STEPS = 2000


def frozen_lake_config(run_dir: Path):
    return resolve_config(
        {
            "env_id": FROZEN_LAKE_SPEC,
            "seed": 1,
            "total_steps": TOTAL_STEPS,
            "learning_starts": 300,
            "train_frequency": 1,
            "target_update_interval": 100,
            "epsilon_decay_steps": 1000,
            "learning_rate": 1e-3,
            "gamma": 0.9,
            "hidden_sizes": (32,),
            "buffer_size": 5000,
            "eval_frequency": 500,
            "eval_episodes": 1,
            "checkpoint_every": 1000,
            "keep_checkpoints": 5,
            "progress": False,
            "device": "cpu",
            "run_dir": str(run_dir),
        }
    )


@pytest.fixture(scope="module")
def frozen_lake_run(tmp_path_factory) -> train.TrainResult:
    return train.train(frozen_lake_config(tmp_path_factory.mktemp("discrete") / "run"))


@pytest.mark.slow
def test_train_dqn_on_discrete_observations_reaches_the_goal_greedily(frozen_lake_run):
    assert frozen_lake_run.final_eval.returns == [1.0]
    assert frozen_lake_run.final_eval.lengths == [SHORTEST_PATH_STEPS]


def test_evaluate_cli_on_discrete_observation_run_reaches_the_goal(frozen_lake_run, tmp_path):
    assert (
        evaluate.main(
            [str(frozen_lake_run.run_dir), "--episodes", "3", "--json", str(tmp_path / "e.json"), "--trust-imports"]
        )
        == 0
    )
    summary = json.loads((tmp_path / "e.json").read_text())
    assert summary["returns"] == [1.0, 1.0, 1.0] and summary["lengths"] == [SHORTEST_PATH_STEPS] * 3


def test_evaluate_policy_on_discrete_observations_same_with_numpy_and_torch(frozen_lake_run):
    config, q_network = evaluate.load_run(frozen_lake_run.run_dir, device=torch.device("cpu"), trust_imports=True)
    results = [
        evaluate.evaluate_policy(
            q_network,
            config.env_id,
            episodes=3,
            seed=0,
            epsilon=0.3,
            env_options=EnvOptions.of(config),
            numpy_acting=numpy_acting,
        )
        for numpy_acting in (True, False)
    ]
    assert results[0] == results[1]


def test_resume_discrete_observation_run_from_checkpoint_finishes(frozen_lake_run, tmp_path):
    run_dir = copy_run(frozen_lake_run.run_dir, tmp_path / "run", latest=TOTAL_STEPS // 2)
    result = train.resume(run_dir, trust_imports=True)
    assert (result.resumed_from, result.env_steps) == (TOTAL_STEPS // 2, TOTAL_STEPS)
