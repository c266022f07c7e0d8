"""evaluate.py: greedy evaluation on a scripted env, reloading a run (also with the user's own
network), and the command line's output and errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dqn_family import train
from dqn_family.agents import DQNAgent, MLPQNetwork, save_model
from dqn_family.configs import Config, UserError, load_config, save_config
from dqn_family.evaluate import EVAL_SEED_OFFSET, EvalResult, evaluate_policy, load_run
from tests.custom_nets import BranchyQNet
from tests.recording import record_instances
from tests.scripted_envs import TERMINATE_SPEC, TRUNCATE_SPEC

REPO_ROOT = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
# CartPole observations, with an all-zero one that takes BranchyQNet's other branch.
OBSERVATIONS_B4 = torch.tensor(
    [
        [0.0, 0.0, 0.0, 0.0],
        [0.02, 0.1, -0.03, -0.2],
        [0.1, -0.5, 0.05, 0.8],
        [-0.3, 0.2, 0.1, -0.1],
        [1.0, 1.5, -0.2, -1.0],
    ]
)


def test_eval_result_mean_and_std():
    result = EvalResult(returns=[1.0, 3.0], lengths=[1, 3])
    assert (result.mean, result.std) == (2.0, 1.0)


@pytest.mark.parametrize("env_spec", [TERMINATE_SPEC, TRUNCATE_SPEC])
def test_evaluate_policy_plays_whole_episodes(env_spec):
    result = evaluate_policy(MLPQNetwork((2,), 2, hidden_sizes=(4,)), env_spec, episodes=3, seed=0)
    assert result.returns == [3.0, 3.0, 3.0]  # 3 steps of reward 1, ended by termination or time limit
    assert result.lengths == [3, 3, 3]


def test_evaluate_policy_restores_training_mode():
    network = MLPQNetwork((2,), 2, hidden_sizes=(4,))
    evaluate_policy(network, TERMINATE_SPEC, episodes=1, seed=0)
    assert network.training


class Recorder(nn.Module):
    """Q-values of a fixed greedy action, remembering whether it was called in training mode."""

    def __init__(self) -> None:
        super().__init__()
        self.modes: list[bool] = []

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.training)
        return torch.tensor([[0.0, 1.0]]).expand(len(observations), 2)


def test_evaluate_policy_acts_greedily_in_eval_mode():
    network = Recorder()
    evaluate_policy(network, TERMINATE_SPEC, episodes=2, seed=0)
    assert network.modes == [False] * 6  # 2 episodes of 3 steps, each one greedy


def test_evaluate_policy_with_epsilon_one_never_calls_network():
    network = Recorder()
    evaluate_policy(network, TERMINATE_SPEC, episodes=2, seed=0, epsilon=1.0)
    assert network.modes == []


def test_evaluate_policy_same_seed_same_returns():
    torch.manual_seed(0)
    network = MLPQNetwork((4,), 2, hidden_sizes=(8,))
    first = evaluate_policy(network, "CartPole-v1", episodes=3, seed=11, epsilon=0.5)
    second = evaluate_policy(network, "CartPole-v1", episodes=3, seed=11, epsilon=0.5)
    assert first.returns == second.returns


def test_evaluate_policy_numpy_acting_plays_the_same_episodes_without_torch_forwards(monkeypatch):
    torch.manual_seed(3)
    network = MLPQNetwork((4,), 2, hidden_sizes=(16, 16))
    with_torch = evaluate_policy(network, "CartPole-v1", episodes=5, seed=2, epsilon=0.1, numpy_acting=False)

    def no_forward(*args, **kwargs):
        raise AssertionError("the torch forward ran")

    monkeypatch.setattr(network, "forward", no_forward)
    with_numpy = evaluate_policy(network, "CartPole-v1", episodes=5, seed=2, epsilon=0.1)
    assert with_numpy.returns == with_torch.returns and with_numpy.lengths == with_torch.lengths


# --- load_run ------------------------------------------------------------------------------------


def test_load_run_reproduces_final_training_evaluation(cartpole_run):
    config, result = cartpole_run
    loaded_config, network = load_run(result.run_dir, device=CPU)
    replay = evaluate_policy(
        network,
        loaded_config.env_id,
        episodes=config.eval_episodes,
        seed=config.seed + EVAL_SEED_OFFSET,
        epsilon=config.eval_epsilon,
    )
    assert replay.returns == result.final_eval.returns


def test_load_run_best_model_is_the_best_evaluation(cartpole_run):
    config, result = cartpole_run
    _, network = load_run(result.run_dir, model="best", device=CPU)
    replay = evaluate_policy(
        network,
        config.env_id,
        episodes=config.eval_episodes,
        seed=config.seed + EVAL_SEED_OFFSET,
        epsilon=config.eval_epsilon,
    )
    assert replay.mean == result.best_eval_mean


@pytest.fixture
def agents_made(monkeypatch) -> list[DQNAgent]:
    """Every DQNAgent the code under test creates, to compare the trained network afterwards."""
    return record_instances(monkeypatch, DQNAgent)


def assert_same_greedy_actions(trained: nn.Module, loaded: nn.Module) -> None:
    with torch.no_grad():
        trained_q, loaded_q = trained(OBSERVATIONS_B4), loaded(OBSERVATIONS_B4)
    assert torch.equal(loaded_q, trained_q)
    assert torch.equal(loaded_q.argmax(dim=1), trained_q.argmax(dim=1))


def test_load_run_rebuilds_custom_network_passed_as_factory(tiny_config, agents_made):
    result = train.train(tiny_config(), network=BranchyQNet)
    assert load_config(result.run_dir / "config.yaml").network == "tests.custom_nets:BranchyQNet"
    _, loaded = load_run(result.run_dir, device=CPU, trust_imports=True)
    assert isinstance(loaded, BranchyQNet)
    assert_same_greedy_actions(agents_made[0].q_network, loaded)


def test_load_run_rebuilds_custom_network_named_in_config(tiny_config, agents_made):
    result = train.train(tiny_config(network="tests.custom_nets:BranchyQNet"))
    _, loaded = load_run(result.run_dir, device=CPU, trust_imports=True)
    assert isinstance(loaded, BranchyQNet)
    assert_same_greedy_actions(agents_made[0].q_network, loaded)


def test_custom_network_branches_per_batch_during_training(tiny_config, agents_made):
    # The all-zero observation never occurs in CartPole, so only `head` learns; `zero_head` stays as built.
    torch.manual_seed(0)
    untrained = BranchyQNet((4,), 2)
    train.train(tiny_config(network="tests.custom_nets:BranchyQNet", seed=0))
    trained = agents_made[0].q_network
    assert torch.equal(trained.zero_head.weight, untrained.zero_head.weight)
    assert not torch.equal(trained.head.weight, untrained.head.weight)


def test_train_unimportable_network_warns_and_run_cannot_be_reloaded(tiny_config, capsys):
    result = train.train(tiny_config(), network=lambda shape, n: BranchyQNet(shape, n))
    assert "cannot be imported by name" in capsys.readouterr().err
    with pytest.raises(UserError, match="does not fit the network"):
        load_run(result.run_dir, device=CPU)


def test_load_run_missing_directory_is_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_run(tmp_path / "nope", device=CPU)


def test_load_run_directory_without_config_is_user_error(tmp_path):
    with pytest.raises(UserError, match="is not a run directory"):
        load_run(tmp_path, device=CPU)


def hand_made_run(run_dir: Path, *, hidden_sizes=(8,)) -> Path:
    """A run directory written by hand: a CartPole config and an untrained MLP's weights."""
    save_config(
        Config(env_id="CartPole-v1", hidden_sizes=hidden_sizes, seed=4, run_dir=str(run_dir)), run_dir / "config.yaml"
    )
    torch.manual_seed(0)
    save_model(run_dir / "model_latest.pt", MLPQNetwork((4,), 2, hidden_sizes=hidden_sizes).state_dict(), env_step=0)
    return run_dir


def test_load_run_model_of_other_shape_is_user_error(tmp_path):
    hand_made_run(tmp_path)
    save_config(Config(hidden_sizes=(32,), run_dir=str(tmp_path)), tmp_path / "config.yaml")
    with pytest.raises(UserError, match="does not fit the network"):
        load_run(tmp_path, device=CPU)


# --- command line -------------------------------------------------------------------------------------


def run_evaluate_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "evaluate.py", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def test_evaluate_cli_json_matches_printed_mean(tmp_path):
    run_dir = hand_made_run(tmp_path / "run")
    completed = run_evaluate_cli(
        str(run_dir), "--episodes", "4", "--epsilon", "0.5", "--json", str(tmp_path / "out.json")
    )
    assert completed.returncode == 0, completed.stderr
    summary = json.loads((tmp_path / "out.json").read_text())
    assert summary["episodes"] == 4 and len(summary["returns"]) == 4
    assert len(set(summary["returns"])) > 1  # (seeded) unequal returns, so the mean is not just any of them
    assert summary["mean_return"] == pytest.approx(np.mean(summary["returns"]))
    assert summary["std_return"] == pytest.approx(np.std(summary["returns"]))
    printed_mean = re.search(r"mean return (\S+) ± (\S+) over 4 episodes", completed.stdout)
    assert printed_mean is not None, completed.stdout
    assert printed_mean.group(1) == f"{summary['mean_return']:.2f}"
    assert summary["seed"] == 4 + EVAL_SEED_OFFSET  # the run's own evaluation seed


@pytest.mark.parametrize("json_path", ["-", "/dev/stdout"])
def test_evaluate_cli_json_to_stdout_is_json_alone(tmp_path, json_path):
    run_dir = hand_made_run(tmp_path / "run")
    completed = run_evaluate_cli(str(run_dir), "--episodes", "3", "--json", json_path)
    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout)  # stdout is the JSON and nothing else
    assert summary["mean_return"] == pytest.approx(np.mean(summary["returns"])) and len(summary["returns"]) == 3
    assert f"mean return {summary['mean_return']:.2f} ± " in completed.stderr  # the summary line, on stderr
    assert not (tmp_path / "-").exists() and not (REPO_ROOT / "-").exists()


@pytest.mark.parametrize(
    "setup, expected",
    [
        ("missing", "does not exist"),
        ("not a run", "is not a run directory"),
        ("corrupt model", "cannot load model file"),
    ],
)
def test_evaluate_cli_bad_run_dir_exits_2_with_one_line(tmp_path, setup, expected):
    run_dir = tmp_path / "run"
    if setup == "not a run":
        run_dir.mkdir()
        (run_dir / "notes.txt").write_text("not a run")
    elif setup == "corrupt model":
        hand_made_run(run_dir)
        (run_dir / "model_latest.pt").write_bytes(b"\x00garbage" * 8)
    completed = run_evaluate_cli(str(run_dir), "--episodes", "1")
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert completed.stderr.startswith("evaluate.py: error: ") and expected in completed.stderr
