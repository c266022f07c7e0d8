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
        ({"observation_parts": "x"}, "observation_parts must map 1 to 64 keys"),
        ({"observation_parts": {"a": {"dtype": "U8", "shape": [4]}}}, "observation_parts['a'] dtype"),
        ({"observation_parts": {"a": {"dtype": "float32", "shape": [4]}}}, "not an export's"),  # the model takes one
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


@pytest.mark.parametrize("epsilon", ["5", "nan", "-0.1"])
def test_player_epsilon_outside_zero_one_is_one_line(exported, tmp_path, epsilon):
    done = run_command(PLAYER, exported, "--episodes", "1", "--epsilon", epsilon, cwd=tmp_path)
    assert_one_line_error(done, contains="--epsilon must be in [0, 1]")


def crafted_model(path, *, state_shape=None, loop=False):
    """A hand-built ONNX model with an export's names: observations [N, 4] -> actions, q_values (and
    state -> next_state); with ``loop``, q_values come out of a Loop of 2**62 iterations."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    weights = helper.make_tensor("weights", TensorProto.FLOAT, [4, 2], [0.1] * 8)
    nodes = [helper.make_node("MatMul", ["observations", "weights"], ["q"])]
    if loop:
        body = helper.make_graph(
            [
                helper.make_node("Identity", ["carried"], ["carried_out"]),
                helper.make_node("Identity", ["go"], ["go_out"]),
            ],
            "body",
            [
                helper.make_tensor_value_info("i", TensorProto.INT64, []),
                helper.make_tensor_value_info("go", TensorProto.BOOL, []),
                helper.make_tensor_value_info("carried", TensorProto.FLOAT, None),
            ],
            [
                helper.make_tensor_value_info("go_out", TensorProto.BOOL, []),
                helper.make_tensor_value_info("carried_out", TensorProto.FLOAT, None),
            ],
        )
        nodes.append(
            helper.make_node("Constant", [], ["trips"], value=helper.make_tensor("t", TensorProto.INT64, [], [2**62]))
        )
        nodes.append(
            helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True]))
        )
        nodes.append(helper.make_node("Loop", ["trips", "cond", "q"], ["q_values"], body=body))
    else:
        nodes.append(helper.make_node("Identity", ["q"], ["q_values"]))
    nodes.append(helper.make_node("ArgMax", ["q_values"], ["actions"], axis=1, keepdims=0))
    inputs = [helper.make_tensor_value_info("observations", TensorProto.FLOAT, ["batch", 4])]
    outputs = [
        helper.make_tensor_value_info("actions", TensorProto.INT64, ["batch"]),
        helper.make_tensor_value_info("q_values", TensorProto.FLOAT, ["batch", 2]),
    ]
    if state_shape is not None:
        nodes.append(helper.make_node("Identity", ["state"], ["next_state"]))
        inputs.append(helper.make_tensor_value_info("state", TensorProto.FLOAT, state_shape))
        outputs.append(helper.make_tensor_value_info("next_state", TensorProto.FLOAT, state_shape))
    unused = helper.make_tensor("unused", TensorProto.FLOAT, [1], [0.0])  # ONNX Runtime warns of it, in colour
    graph = helper.make_graph(nodes, "crafted", inputs, outputs, [weights, unused])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def test_player_refuses_a_model_with_control_flow_before_running_it(tmp_path):
    model = crafted_model(tmp_path / "looping.onnx", loop=True)
    done = run_command(PLAYER, model, "--env", "CartPole-v1", "--episodes", "1", cwd=tmp_path, timeout=30)
    assert_one_line_error(done, contains="control flow (Loop)")


@pytest.mark.parametrize("state_shape", [[], [16], ["batch", 16, 1]])
def test_player_state_input_of_the_wrong_rank_is_one_line(tmp_path, state_shape):
    model = crafted_model(tmp_path / "state.onnx", state_shape=state_shape)
    done = run_command(PLAYER, model, "--env", "CartPole-v1", "--episodes", "1", cwd=tmp_path)
    assert_one_line_error(done, contains="state input must be [batch, S]")


def test_player_plays_a_crafted_model_with_an_exports_names(tmp_path):
    """The checks refuse only what an export never writes: a straight-line model with its names plays,
    and ONNX Runtime's warnings (an unused initializer) stay off stderr."""
    model = crafted_model(tmp_path / "plain.onnx", state_shape=["batch", 3])
    done = run_command(PLAYER, model, "--env", "CartPole-v1", "--episodes", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "CartPole-v1: mean return" in done.stdout and done.stderr == ""


def test_player_prints_a_sidecar_env_id_escaped(exported, tmp_path):
    """A sidecar with play_env may name any env id holding a ':': terminal escapes in it are printed escaped."""
    env_id = "evil\x1b[2J\x1b]0;title\x07:CartPole-v1"
    model = tamper(exported, tmp_path, env_id=env_id, play_env={"env_id": "CartPole-v1", "kept_entries": [0, 1, 2, 3]})
    done = run_command(PLAYER, model, "--episodes", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\\x1b[2J" in done.stdout
