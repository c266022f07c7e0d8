"""export.py and examples/play_onnx.py with action masks: a run that acted with masks is exported with
an ``action_mask`` input whose greedy action is the legal argmax (ONNX and pt2, feed-forward and
recurrent), its sidecar says so, ``--verify`` compares with the env's masks, and the torch-free player
passes the env's mask (from info or from a Dict observation) and prints evaluate.py's line."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dqn_family import export, train
from dqn_family.agents import MLPQNetwork
from dqn_family.configs import Config, load_config, save_config
from dqn_family.deployment.formats import EXPORTERS, RUNNERS
from dqn_family.deployment.policy import GreedyPolicy, ObservationSpec
from dqn_family.deployment.verify import compare
from dqn_family.evaluate import EVAL_SEED_OFFSET, evaluate_policy, load_run
from tests.masked_envs import DICT_SPEC, INFO_SPEC
from tests.test_export import _NO_TORCH_WRAPPER, summary_line

REPO_ROOT = Path(__file__).resolve().parent.parent
PLAYER = REPO_ROOT / "examples" / "play_onnx.py"
RECURRENT = dict(recurrent="gru", recurrent_size=8, sequence_length=8, sequence_overlap=4, burn_in=2)


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_exported_greedy_action_is_the_argmax_over_the_legal_actions(tmp_path, fmt):
    torch.manual_seed(0)
    network = MLPQNetwork((3,), 5, hidden_sizes=(8,))
    spec = ObservationSpec((3,), "float32", action_mask=5)
    path = tmp_path / f"m.{fmt}"
    path.write_bytes(EXPORTERS[fmt](GreedyPolicy(network), spec))
    rng = np.random.default_rng(0)
    observations = rng.normal(size=(300, 3)).astype(np.float32)
    legal = rng.random((300, 5)) < 0.4
    legal[np.arange(300), rng.integers(5, size=300)] = True
    actions, q_values = RUNNERS[fmt](path)(observations, legal)
    np.testing.assert_array_equal(actions, np.where(legal, q_values, -np.inf).argmax(axis=1))
    assert (actions != q_values.argmax(axis=1)).any()  # the mask changed some greedy actions
    agreement = compare(network, RUNNERS[fmt](path), observations, None, legal)
    assert agreement.ok and agreement.observations == 300, agreement.describe()


@pytest.fixture(scope="module")
def masked_runs(tmp_path_factory) -> dict[str, Path]:
    """Short runs on the masked scripted envs (info and Dict masks, feed-forward and recurrent) and Taxi."""
    runs = {}
    for name, env_id, options in [
        ("info", INFO_SPEC, {}),
        ("dict-recurrent", DICT_SPEC, RECURRENT),
        ("taxi", "Taxi-v4", {"hidden_sizes": (32,)}),
    ]:
        config = Config(
            **{
                "env_id": env_id,
                "total_steps": 200,
                "learning_starts": 50,
                "batch_size": 8,
                "buffer_size": 200,
                "hidden_sizes": (16,),
                "eval_frequency": 0,
                "progress": False,
                "device": "cpu",
                "run_dir": str(tmp_path_factory.mktemp("runs") / name),
                **options,
            }
        )
        runs[name] = train.train(config).run_dir
    return runs


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
@pytest.mark.parametrize("name", ["info", "dict-recurrent"])
def test_export_of_a_masked_run_takes_the_mask_records_it_and_verifies(masked_runs, tmp_path, capsys, fmt, name):
    out = tmp_path / f"policy.{fmt}"
    argv = [str(masked_runs[name]), "--format", fmt, "--out", str(out), "--verify", "--verify-observations", "200"]
    assert export.main([*argv, "--trust-imports"]) == 0
    assert "verified: 0 of 200 greedy actions differ" in capsys.readouterr().out
    sidecar = json.loads(out.with_name(out.name + ".json").read_text())
    assert sidecar["action_mask"] is True and "action_mask" in sidecar["inputs"]


def test_export_verify_fails_when_the_model_ignores_the_mask(masked_runs, tmp_path, capsys, monkeypatch):
    onnx_runner = RUNNERS["onnx"]

    def mask_ignored(model):
        run = onnx_runner(model)
        return lambda observations, legal: run(observations, np.ones_like(legal))

    monkeypatch.setitem(export.RUNNERS, "onnx", mask_ignored)
    argv = [str(masked_runs["info"]), "--out", str(tmp_path / "m.onnx"), "--verify", "--trust-imports"]
    assert export.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("export.py: verification failed:") and " of 1,000 greedy actions differ" in err
    assert not err.startswith("export.py: verification failed: 0 of")


def test_export_of_a_run_with_action_mask_off_takes_no_mask(masked_runs, tmp_path):
    run_dir = masked_runs["taxi"]
    config = load_config(run_dir / "config.yaml")
    copied = tmp_path / "run"
    copied.mkdir()
    (copied / "model_latest.pt").write_bytes((run_dir / "model_latest.pt").read_bytes())
    save_config(dataclasses.replace(config, action_mask="off"), copied / "config.yaml")
    out = tmp_path / "policy.onnx"
    assert export.main([str(copied), "--out", str(out), "--verify", "--verify-observations", "100"]) == 0
    sidecar = json.loads(out.with_name(out.name + ".json").read_text())
    assert sidecar["action_mask"] is False and set(sidecar["inputs"]) == {"observations"}


def play(model: Path, tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _NO_TORCH_WRAPPER, str(PLAYER), str(model), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},  # the test envs' module, for gymnasium.make
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    "name, env_id", [("info", INFO_SPEC), ("dict-recurrent", DICT_SPEC), ("taxi", "Taxi-v4")], ids=str
)
def test_play_onnx_passes_the_envs_mask_and_prints_evaluates_line(masked_runs, tmp_path, name, env_id):
    out = tmp_path / "policy.onnx"
    assert export.main([str(masked_runs[name]), "--out", str(out), "--trust-imports"]) == 0
    stdout = play(out, tmp_path, "--env", env_id, "--episodes", "4", "--epsilon", "0.3")
    config, network = load_run(masked_runs[name], device=torch.device("cpu"), trust_imports=True)
    seed = config.seed + EVAL_SEED_OFFSET
    result = evaluate_policy(network, env_id, episodes=4, seed=seed, epsilon=0.3, action_mask=config.action_mask)
    assert stdout == summary_line(env_id, result, seed=seed, epsilon=0.3)
    if name != "taxi":
        assert result.returns == [5.0] * 4  # every action legal (an illegal one pays 10)


def test_play_onnx_refuses_a_masked_model_on_an_env_without_masks(masked_runs, tmp_path):
    out = tmp_path / "policy.onnx"
    assert export.main([str(masked_runs["info"]), "--out", str(out), "--trust-imports"]) == 0
    done = subprocess.run(
        [sys.executable, str(PLAYER), str(out), "--env", "tests.masked_envs:TestOnly/Unmasked-v0"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "the model takes an action_mask, but the env gives none" in done.stderr
