"""export.py and deployment/: the exported graph (ONNX, pt2) computes the torch network's greedy
actions and Q-values for every torso and head, with a dynamic batch and noisy layers in evaluation
mode; the sidecar describes the model and hashes it; --verify fails loudly on a mismatch; bad input
is one line with exit code 2; a run naming a module follows the trust rule."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from dqn_family import export, train
from dqn_family.agents import build_q_network
from dqn_family.configs import Config
from dqn_family.deployment.formats import EXPORTERS, RUNNERS, ExportError
from dqn_family.deployment.policy import GreedyPolicy, ObservationSpec
from dqn_family.deployment.verify import ATOL, RTOL, compare

pytestmark = pytest.mark.slow  # each export traces a graph (about a second)


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    """A tiny trained CartPole run (400 env steps, 16-unit MLP)."""
    run_dir = tmp_path_factory.mktemp("runs") / "cartpole"
    config = Config(
        env_id="CartPole-v1",
        total_steps=400,
        learning_starts=100,
        batch_size=16,
        buffer_size=400,
        train_frequency=2,
        hidden_sizes=(16,),
        eval_frequency=400,
        eval_episodes=2,
        progress=False,
        device="cpu",
        run_dir=str(run_dir),
        checkpoint_every=0,
    )
    return train.train(config).run_dir


def _export_and_compare(network, spec: ObservationSpec, observations: np.ndarray, tmp_path, fmt: str = "onnx"):
    path = tmp_path / f"model.{fmt}"
    path.write_bytes(EXPORTERS[fmt](GreedyPolicy(network), spec))
    return compare(network, RUNNERS[fmt](path), observations)


HEADS = {
    "plain": {},
    "dueling": {"dueling": True},
    "noisy": {"noisy": True},
    "c51": {"output": "c51", "num_outputs": 11, "support": torch.linspace(-5, 5, 11), "dueling": True},
    "qr": {"output": "qr", "num_outputs": 8, "noisy": True},
}


@pytest.mark.parametrize("head", sorted(HEADS))
def test_export_onnx_mlp_head_matches_torch(tmp_path, head):
    torch.manual_seed(0)
    network = build_q_network((4,), 3, hidden_sizes=(16,), activation="relu", **HEADS[head])
    observations = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)
    agreement = _export_and_compare(network, ObservationSpec((4,), "float32"), observations, tmp_path)
    assert agreement.ok, agreement.describe()


@pytest.mark.parametrize(
    "shape, dtype, torso, high",
    [
        ((4, 40, 40), "uint8", "nature_cnn", 256),
        ((10, 10, 4), "bool", "minatar_cnn", 2),
        ((6, 7, 2), "int8", "board_cnn", 2),
    ],
)
def test_export_onnx_cnn_torso_matches_torch(tmp_path, shape, dtype, torso, high):
    torch.manual_seed(0)
    network = build_q_network(shape, 4, hidden_sizes=(16,), activation="relu", torso=torso, **HEADS["c51"])
    observations = np.random.default_rng(0).integers(0, high, size=(64, *shape)).astype(dtype)
    agreement = _export_and_compare(network, ObservationSpec(shape, dtype), observations, tmp_path)
    assert agreement.ok, agreement.describe()


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_export_discrete_observations_are_one_hot_inside(tmp_path, fmt):
    torch.manual_seed(0)
    network = build_q_network((), 4, hidden_sizes=(8,), activation="relu", observation_states=16)
    agreement = _export_and_compare(network, ObservationSpec((), "int64", 16), np.arange(16), tmp_path, fmt)
    assert agreement.ok, agreement.describe()


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_exported_batch_axis_is_dynamic(tmp_path, fmt):
    torch.manual_seed(0)
    network = build_q_network((4,), 2, hidden_sizes=(8,), activation="relu")
    path = tmp_path / f"model.{fmt}"
    path.write_bytes(EXPORTERS[fmt](GreedyPolicy(network), ObservationSpec((4,), "float32")))
    run = RUNNERS[fmt](path)
    for batch in (1, 2, 37):
        actions, q_values = run(np.ones((batch, 4), np.float32))
        assert actions.shape == (batch,) and actions.dtype == np.int64 and q_values.shape == (batch, 2)


def test_exported_noisy_head_uses_the_mean_weights(tmp_path):
    """NoisyLinear in eval mode is F.linear(x, weight_mu, bias_mu): the export must not hold a noise sample."""
    torch.manual_seed(0)
    network = build_q_network((4,), 2, hidden_sizes=(8,), activation="relu", noisy=True).train()
    path = tmp_path / "model.onnx"
    path.write_bytes(EXPORTERS["onnx"](GreedyPolicy(network), ObservationSpec((4,), "float32")))
    observations = np.ones((3, 4), np.float32)
    _, q_values = RUNNERS["onnx"](path)(observations)
    features = network.torso(torch.from_numpy(observations))
    mean_q = torch.nn.functional.linear(features, network.advantage.weight_mu, network.advantage.bias_mu)
    noisy_q = network(torch.from_numpy(observations))
    np.testing.assert_allclose(q_values, mean_q.detach().numpy(), atol=ATOL, rtol=RTOL)
    assert not np.allclose(q_values, noisy_q.detach().numpy(), atol=1e-3)
    assert network.training  # exporting left the caller's network as it was


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_export_custom_network_without_data_dependent_branches(tmp_path, fmt):
    torch.manual_seed(0)
    network = build_q_network((4,), 2, hidden_sizes=(8,), activation="relu", network="tests.custom_nets:PlainQNet")
    observations = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    agreement = _export_and_compare(network, ObservationSpec((4,), "float32"), observations, tmp_path, fmt)
    assert agreement.ok, agreement.describe()


def test_export_of_a_data_dependent_network_is_one_line_saying_why():
    network = build_q_network((4,), 2, hidden_sizes=(8,), activation="relu", network="tests.custom_nets:BranchyQNet")
    with pytest.raises(ExportError, match="torch.export cannot trace this network") as raised:
        EXPORTERS["onnx"](GreedyPolicy(network), ObservationSpec((4,), "float32"))
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_export_cli_writes_model_and_sidecar_and_verifies(cartpole_run, tmp_path, capsys, fmt):
    out = tmp_path / f"policy.{fmt}"
    assert (
        export.main([str(cartpole_run), "--format", fmt, "--out", str(out), "--verify", "--verify-observations", "300"])
        == 0
    )
    sidecar = json.loads((tmp_path / f"policy.{fmt}.json").read_text())
    assert sidecar["model_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert (sidecar["env_id"], sidecar["algo"], sidecar["n_actions"]) == ("CartPole-v1", "dqn", 2)
    assert (sidecar["observation_shape"], sidecar["observation_dtype"]) == ([4], "float32")
    assert sidecar["project_version"] and sidecar["eval_seed"] == 1 + 10_000
    assert "verified: 0 of 300 greedy actions differ" in capsys.readouterr().out


def test_export_cli_default_output_is_beside_the_model(cartpole_run, tmp_path):
    run = shutil.copytree(cartpole_run, tmp_path / "run")
    assert export.main([str(run), "--model", "best"]) == 0
    assert (run / "model_best.onnx").is_file() and (run / "model_best.onnx.json").is_file()


def test_export_verify_mismatch_exits_1_with_one_line(cartpole_run, tmp_path, capsys, monkeypatch):
    real = RUNNERS["onnx"]

    def off_by_a_little(path):
        run = real(path)
        return lambda observations: (lambda actions, q: (1 - actions, q + 1e-2))(*run(observations))

    monkeypatch.setitem(export.RUNNERS, "onnx", off_by_a_little)
    code = export.main(
        [str(cartpole_run), "--out", str(tmp_path / "m.onnx"), "--verify", "--verify-observations", "50"]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("export.py: verification failed: 50 of 50 greedy actions differ")
    assert "worst Q-value difference 0.01" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "tflite"], "invalid choice: 'tflite'"),
        (["--model", "best", "--out", "{tmp}/missing/m.onnx"], "folder {tmp}/missing does not exist"),
        (["--verify-observations", "0"], "--verify-observations must be in [1, 1,000,000]"),
        (["--verify-observations", "1000001"], "--verify-observations must be in [1, 1,000,000]"),
    ],
)
def test_export_cli_bad_input_is_one_line_exit_2(cartpole_run, tmp_path, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert _exit_code([str(cartpole_run), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.replace("{tmp}", str(tmp_path)) in err
    assert not (tmp_path / "missing").exists()


def _exit_code(argv: list[str]) -> int:
    """export.main's exit code, whether returned or raised by the argument parser."""
    try:
        return export.main(argv)
    except SystemExit as exit:
        return exit.code


def test_export_cli_run_without_a_model_is_one_line_exit_2(cartpole_run, tmp_path, capsys):
    run = shutil.copytree(cartpole_run, tmp_path / "run")
    (run / "model_latest.pt").unlink()
    assert export.main([str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model_latest.pt does not exist" in err
    assert not (run / "model_latest.onnx").exists()


def test_export_cli_follows_the_trust_rule_for_a_named_module(tmp_path, capsys):
    config = Config(
        env_id="CartPole-v1",
        total_steps=50,
        learning_starts=100,
        eval_frequency=50,
        eval_episodes=1,
        progress=False,
        device="cpu",
        run_dir=str(tmp_path / "run"),
        checkpoint_every=0,
        network="tests.custom_nets:BranchyQNet",
    )
    run = train.train(config).run_dir
    assert export.main([str(run)]) == 2
    assert "--trust-imports" in capsys.readouterr().err
    assert export.main([str(run), "--trust-imports"]) == 2  # imported, then refused: it branches on the data
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torch.export cannot trace this network" in err


def summary_line(env_id: str, result, *, seed: int, epsilon: float) -> str:
    """The line evaluate.py (and the player) prints for ``result`` (an EvalResult)."""
    return (
        f"{env_id}: mean return {result.mean:.2f} ± {result.std:.2f} over {len(result.returns)} episodes "
        f"(min {min(result.returns):.2f}, max {max(result.returns):.2f}; seed {seed}, epsilon {epsilon})\n"
    )


# The player runs in a fresh interpreter that fails (exit 3) if torch or any of this project's
# packages was imported by the time it finishes.
_NO_TORCH_WRAPPER = """
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exit:
    code = exit.code
else:
    code = 0
forbidden = sorted({"torch", "dqn_family", "agents", "configs", "deployment", "envs", "fileio"} & set(sys.modules))
if forbidden:
    print("imported: " + ", ".join(forbidden), file=sys.stderr)
    sys.exit(3)
sys.exit(code)
"""


def test_play_onnx_plays_without_torch_and_prints_evaluates_summary(cartpole_run, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from dqn_family.evaluate import evaluate_policy, load_run

    out = tmp_path / "policy.onnx"
    assert export.main([str(cartpole_run), "--out", str(out)]) == 0
    player = Path(__file__).resolve().parents[1] / "examples" / "play_onnx.py"
    done = subprocess.run(
        [sys.executable, "-c", _NO_TORCH_WRAPPER, str(player), str(out), "--episodes", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    config, network = load_run(cartpole_run, device=torch.device("cpu"))
    result = evaluate_policy(network, "CartPole-v1", episodes=3, seed=config.seed + 10_000)
    assert done.stdout == summary_line("CartPole-v1", result, seed=10001, epsilon=0.0)


def test_export_command_line_bad_format_is_one_line_exit_2(cartpole_run):
    from tests.hostile.conftest import REPO_ROOT, assert_one_line_error, run_command

    process = run_command(REPO_ROOT / "export.py", cartpole_run, "--format", "tflite")
    assert_one_line_error(process, contains="invalid choice: 'tflite'")


def test_export_to_a_pipe_writes_the_model_through_and_no_sidecar(cartpole_run, tmp_path):
    import os
    import threading

    fifo = tmp_path / "model.pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert export.main([str(cartpole_run), "--format", "pt2", "--out", str(fifo)]) == 0
    reader.join(timeout=30)
    assert received and received[0][:2] == b"PK"  # a .pt2 file is a zip archive
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pipe"]


@pytest.mark.parametrize(
    "key, state_size, clash",
    [("state", 4, "['state']"), ("next_state", 4, "['next_state']"), ("q_values", None, "['q_values']")],
)
def test_export_onnx_refuses_an_observation_key_named_like_another_input_or_an_output(key, state_size, clash):
    """A recurrent model's inputs are the keys then ``state``: a key named ``state`` would make two
    graph inputs of one name. Refused in one line before anything is traced."""
    from dqn_family.agents.multi_input import ObservationPart

    parts = {key: ObservationPart((3,), np.dtype("float32")), "vector": ObservationPart((2,), np.dtype("float32"))}
    spec = ObservationSpec((), "float32", state_size=state_size, parts=parts)
    with pytest.raises(ExportError, match=r"observation key\(s\) " + re.escape(clash)) as raised:
        EXPORTERS["onnx"](nn.Identity(), spec)
    assert "\n" not in str(raised.value) and "rename the key" in str(raised.value)
