"""The torch-free player (examples/play_onnx.py) reads a sidecar that may come from someone else:
it never imports the module an env id names, and malformed values end in one line."""

from __future__ import annotations

import json

import pytest

from dqn_family import export
from tests.hostile.conftest import REPO_ROOT, assert_one_line_error, run_command

pytest.importorskip("onnxruntime")
PLAYER = REPO_ROOT / "examples" / "play_onnx.py"


@pytest.fixture(scope="module")
def exported(tmp_path_factory, finished_run):
    out = tmp_path_factory.mktemp("player") / "policy.onnx"
    assert export.main([str(finished_run), "--out", str(out)]) == 0
    return out


def tamper(exported, tmp_path, **changes):
    model = tmp_path / "policy.onnx"
    model.write_bytes(exported.read_bytes())
    sidecar = json.loads(exported.with_name("policy.onnx.json").read_text())
    (tmp_path / "policy.onnx.json").write_text(json.dumps({**sidecar, **changes}))
    return model


def test_player_refuses_sidecar_env_that_imports_a_module(exported, tmp_path):
    (tmp_path / "payload.py").write_text('open("PWNED", "w").write("x")\n')
    model = tamper(exported, tmp_path, env_id="payload:CartPole-v1")
    assert_one_line_error(run_command(PLAYER, model, "--episodes", "1", cwd=tmp_path), contains="imports a module")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"eval_seed": "abc"}, "eval_seed"),
        ({"eval_seed": -1}, "eval_seed"),
        ({"eval_epsilon": 7}, "eval_epsilon"),
        ({"observation_dtype": "not-a-dtype"}, "observation_dtype"),
        ({"observation_dtype": "U8"}, "observation_dtype"),
    ],
)
def test_player_malformed_sidecar_value_is_one_line(exported, tmp_path, changes, message):
    model = tamper(exported, tmp_path, **changes)
    assert_one_line_error(run_command(PLAYER, model, "--episodes", "1", cwd=tmp_path), contains=message)


def test_player_oversized_sidecar_is_one_line(exported, tmp_path):
    model = tamper(exported, tmp_path)
    (tmp_path / "policy.onnx.json").write_text(" " * (2 << 20) + "{}")
    assert_one_line_error(run_command(PLAYER, model, "--episodes", "1", cwd=tmp_path), contains="larger than")


def test_player_sidecar_shape_of_the_wrong_kind_is_one_line(exported, tmp_path):
    model = tamper(exported, tmp_path, observation_shape=4)
    assert_one_line_error(run_command(PLAYER, model, "--episodes", "1", cwd=tmp_path), contains="observation_shape")


def test_player_model_that_does_not_fit_the_env_is_one_line(exported, tmp_path):
    model = tamper(exported, tmp_path, observation_shape=None)
    done = run_command(PLAYER, model, "--env", "Acrobot-v1", "--episodes", "1", cwd=tmp_path)
    assert_one_line_error(done, contains="playing Acrobot-v1 failed")
