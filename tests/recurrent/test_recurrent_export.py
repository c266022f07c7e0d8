"""Exporting a recurrent Q-network as one acting step, (observations, state) -> (actions, Q-values,
next state): the exported step computes torch's step for each core and head, a fed-back state
reproduces torch's unroll, export.py --verify checks whole episodes (and catches a state path that
does not advance), the sidecar carries the state size and initial state, and the ONNX player plays
the same episodes as evaluate.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_family import export, train
from dqn_family.agents.recurrent import build_recurrent_network
from dqn_family.deployment.formats import EXPORTERS, RUNNERS
from dqn_family.deployment.policy import RecurrentGreedyPolicy, observation_spec
from dqn_family.deployment.verify import ATOL, RTOL
from dqn_family.evaluate import EVAL_SEED_OFFSET, evaluate_policy, load_run
from tests.checkpoints.conftest import small_config
from tests.recurrent.test_recurrent_train import RECURRENT

pytestmark = pytest.mark.slow  # each export traces a graph (a few seconds for an LSTM)

ENV = "dqn_family.envs.pomdp:CartPoleNoVelocity-v1"  # the run's env, as the player names it


@pytest.fixture(scope="module")
def recurrent_run(tmp_path_factory) -> Path:
    """400 steps of an LSTM C51 run with a dueling head (the head whose Q-values are expectations)."""
    run_dir = tmp_path_factory.mktemp("recurrent_export") / "run"
    options = dict(RECURRENT, algo="c51", num_atoms=11, v_min=0.0, v_max=50.0, dueling=True, total_steps=400)
    options.update(eval_frequency=400, checkpoint_every=0)
    train.train(small_config(run_dir, **options))
    return run_dir


def _close(exported: np.ndarray, reference: torch.Tensor) -> bool:
    expected = reference.numpy()
    return bool(np.all(np.abs(exported - expected) <= ATOL + RTOL * np.abs(expected)))


@pytest.mark.parametrize(
    "core, head",
    [("lstm", {}), ("gru", {"dueling": True}), ("lstm", {"output": "qr", "num_outputs": 5})],
)
@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_exported_step_computes_torchs_step_and_a_fed_back_state_its_unroll(tmp_path, core, head, fmt):
    torch.manual_seed(0)
    network = build_recurrent_network((2,), 3, core=core, hidden_size=6, hidden_sizes=(16,), activation="relu", **head)
    path = tmp_path / f"step.{fmt}"
    path.write_bytes(EXPORTERS[fmt](RecurrentGreedyPolicy(network), observation_spec(network, (2,), "float32", None)))
    step = RUNNERS[fmt](path)
    # One step, a batch of 3 with 3 different states (the batch axis is dynamic on both inputs)
    observations = torch.randn(3, 2)
    state = torch.randn(3, network.state_size)
    actions, q_values, next_state = step(observations.numpy(), state.numpy())
    with torch.no_grad():
        q_ref, next_ref = network.eval().step(observations, state)
    assert np.array_equal(actions, q_ref.argmax(dim=1).numpy())
    assert _close(q_values, q_ref) and _close(next_state, next_ref)
    # Five steps from the initial state, the exported model fed its own next state: torch's unroll
    sequence = torch.randn(5, 1, 2)
    with torch.no_grad():
        q_unrolled, last_ref = network.unroll(sequence, network.initial_state(1))
    carried = np.zeros((1, network.state_size), np.float32)  # RecurrentQNetwork's initial state is zeros
    for t in range(5):
        _, q_t, carried = step(sequence[t].numpy(), carried)
        assert _close(q_t, q_unrolled[t])
    assert _close(carried, last_ref)


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_export_cli_verifies_a_recurrent_run_and_writes_its_state_in_the_sidecar(recurrent_run, tmp_path, capsys, fmt):
    out = tmp_path / f"policy.{fmt}"
    assert export.main([str(recurrent_run), "--format", fmt, "--out", str(out), "--verify"]) == 0
    printed = capsys.readouterr().out
    assert "verified: 0 of 1,000 greedy actions differ, 0 Q-value rows, 0 next-state rows outside" in printed
    sidecar = json.loads(Path(f"{out}.json").read_text())
    assert sidecar["state_size"] == 16 and sidecar["initial_state"] == [0.0] * 16  # LSTM 8: h and c
    assert set(sidecar["inputs"]) == {"observations", "state"}
    assert set(sidecar["outputs"]) == {"actions", "q_values", "next_state"}


def test_export_verify_catches_a_state_that_does_not_advance(recurrent_run, tmp_path, capsys, monkeypatch):
    real = RUNNERS["onnx"]

    def frozen_state(path):
        run = real(path)
        return lambda observations, state: (*run(observations, state)[:2], state)  # next state = the state given

    monkeypatch.setitem(export.RUNNERS, "onnx", frozen_state)
    argv = [str(recurrent_run), "--out", str(tmp_path / "m.onnx"), "--verify", "--verify-observations", "50"]
    code = export.main(argv)
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("export.py: verification failed:")
    # Every next state differs (the model hands back the state it was given), and so do the Q-values
    # from each episode's second step on; at an episode's first step both start from the initial state.
    q_rows, state_rows = (int(n) for n in re.findall(r"(\d+) (?:Q-value|next-state) rows", err))
    assert state_rows == 50 and 0 < q_rows < 50


def play_exported(recurrent_run: Path, tmp_path: Path, *args: str, wrapper: tuple[str, ...] = ()) -> str:
    """Export the run to tmp_path/policy.onnx and play it with examples/play_onnx.py ARGS (run
    through ``wrapper``, e.g. the torch-free one); its stdout."""
    out = tmp_path / "policy.onnx"
    assert export.main([str(recurrent_run), "--out", str(out)]) == 0
    player = Path(__file__).resolve().parents[2] / "examples" / "play_onnx.py"
    done = subprocess.run(
        [sys.executable, *wrapper, str(player), str(out), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_play_onnx_plays_a_recurrent_policy_as_evaluate_does(recurrent_run, tmp_path):
    from tests.test_export import summary_line

    stdout = play_exported(recurrent_run, tmp_path, "--env", ENV, "--episodes", "3", "--epsilon", "0.2")
    config, network = load_run(recurrent_run, device=torch.device("cpu"))
    seed = config.seed + EVAL_SEED_OFFSET
    result = evaluate_policy(network, ENV, episodes=3, seed=seed, epsilon=0.2)
    assert stdout == summary_line(ENV, result, seed=seed, epsilon=0.2)


@pytest.mark.parametrize("env_flag", [[], ["--env", ENV]])
def test_play_onnx_plays_the_projects_pomdp_env_without_torch_or_the_project(recurrent_run, tmp_path, env_flag):
    """The new user's case: a model trained on envs.pomdp:CartPoleNoVelocity-v1 plays where only
    onnxruntime, gymnasium and numpy are installed (the sidecar's play_env names CartPole-v1 and the
    entries kept), with or without --env, and prints evaluate.py's line."""
    from tests.test_export import _NO_TORCH_WRAPPER, summary_line

    stdout = play_exported(recurrent_run, tmp_path, *env_flag, "--episodes", "3", wrapper=("-c", _NO_TORCH_WRAPPER))
    sidecar = json.loads((tmp_path / "policy.onnx.json").read_text())
    assert sidecar["play_env"] == {"env_id": "CartPole-v1", "kept_entries": [0, 2]}
    config, network = load_run(recurrent_run, device=torch.device("cpu"))
    seed = config.seed + EVAL_SEED_OFFSET
    result = evaluate_policy(network, ENV, episodes=3, seed=seed)
    shown = ENV if env_flag else config.env_id  # the env as the user named it, else as the sidecar does
    assert stdout == summary_line(shown, result, seed=seed, epsilon=0.0)


@pytest.mark.parametrize(
    "initial",
    ["abc", [0.0] * 3, [True] * 16, [float("nan")] * 16, [[0.0]] * 16, [1e300] * 16, [10**400] * 16],
)
def test_play_onnx_malformed_initial_state_is_one_line(recurrent_run, tmp_path, initial):
    from tests.hostile.conftest import assert_one_line_error, run_command

    model = tmp_path / "policy.onnx"
    assert export.main([str(recurrent_run), "--out", str(model)]) == 0
    sidecar = json.loads(Path(f"{model}.json").read_text())
    Path(f"{model}.json").write_text(json.dumps({**sidecar, "initial_state": initial}))
    player = Path(__file__).resolve().parents[2] / "examples" / "play_onnx.py"
    done = run_command(player, model, "--env", ENV, "--episodes", "1", cwd=tmp_path)
    assert_one_line_error(done, contains="the sidecar's initial_state must be a list of 16 finite float32 numbers")
