"""agents.multi_input: a Dict observation's parts (action mask skipped, bad parts refused), one torso
per key with the widths worked out by hand, every head and a recurrent core on top, uint8 frames
kept until the torso, gradients to every part, the positional wrapper, and its torch.export and
ONNX exports against torch's own numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

from dqn_family.agents import QNetwork
from dqn_family.agents.multi_input import (
    MultiInputRecurrentQNetwork,
    MultiInputTorso,
    ObservationPart,
    PositionalInputs,
    build_multi_input_torso,
    example_parts,
    observation_parts,
    replay_layout,
)
from dqn_family.agents.networks import NetworkError
from dqn_family.agents.torsos import ChannelsFirst, ScaledFrames

# Keys sorted: frames (Nature CNN: 36 -> 8 -> 3 -> 1, 64 conv features, then 8, 6), position (MLP
# 3 -> 8 -> 6), room (one-hot, 5). Concatenated: 6 + 6 + 5 = 17.
SPACE = spaces.Dict(
    {
        "position": spaces.Box(-1.0, 1.0, (3,), np.float32),
        "frames": spaces.Box(0, 255, (2, 36, 36), np.uint8),
        "room": spaces.Discrete(5),
        "action_mask": spaces.Box(0, 1, (4,), np.int8),
    }
)
HIDDEN = (8, 6)
N_ACTIONS = 4


def observations(batch: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "frames": torch.randint(0, 256, (batch, 2, 36, 36), dtype=torch.uint8, generator=generator),
        "position": torch.rand((batch, 3), generator=generator) * 2 - 1,
        "room": torch.randint(0, 5, (batch,), generator=generator),
        "action_mask": torch.ones((batch, N_ACTIONS), dtype=torch.int8),  # present, and ignored
    }


def torso(fuse: bool = True, activation: str = "relu") -> MultiInputTorso:
    torch.manual_seed(0)
    module, _ = build_multi_input_torso(SPACE, hidden_sizes=HIDDEN, activation=activation, fuse=fuse)
    return module


def test_observation_parts_sorts_the_keys_and_skips_the_action_mask():
    parts = observation_parts(SPACE)
    assert list(parts) == ["frames", "position", "room"]
    assert parts["frames"] == ObservationPart(shape=(2, 36, 36), dtype=np.dtype(np.uint8))
    assert parts["position"] == ObservationPart(shape=(3,), dtype=np.dtype(np.float32))
    assert parts["room"] == ObservationPart(shape=(), dtype=np.dtype(np.int64), states=5)


def test_replay_layout_keeps_each_keys_shape_and_dtype():
    assert replay_layout(observation_parts(SPACE)) == {
        "frames": ((2, 36, 36), np.dtype(np.uint8)),
        "position": ((3,), np.dtype(np.float32)),
        "room": ((), np.dtype(np.int64)),
    }


def test_multi_input_torso_feature_width_is_the_sum_of_the_parts_widths():
    module = torso(fuse=False)
    assert module.part_dims == [6, 6, 5]
    assert module.feature_dim == module.parts_dim == 17
    assert module(observations()).shape == (3, 17)


def test_multi_input_torso_fuses_the_parts_to_the_last_hidden_width():
    module, feature_dim = build_multi_input_torso(SPACE, hidden_sizes=HIDDEN, activation="relu")
    assert (module.parts_dim, feature_dim) == (17, 6)
    assert module(observations()).shape == (3, 6)
    assert module.part_features(observations()).shape == (3, 17)


def test_multi_input_torso_one_hot_encodes_a_discrete_part():
    rooms = torch.tensor([0, 4, 2])
    features = torso(fuse=False)({**observations(), "room": rooms})
    expected = torch.tensor([[1.0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 1, 0, 0]])
    torch.testing.assert_close(features[:, 12:17], expected)  # the last part's 5 columns


def test_multi_input_torso_picks_each_image_parts_cnn_by_shape():
    space = spaces.Dict(
        {
            "atari": spaces.Box(0, 255, (1, 36, 36), np.uint8),
            "grid": spaces.Box(0, 1, (10, 10, 4), np.bool_),
            "photo": spaces.Box(0, 255, (96, 96, 3), np.uint8),  # channels last: not guessed, MLP
        }
    )
    module, _ = build_multi_input_torso(space, hidden_sizes=(4,), activation="relu")
    atari, grid, photo = module.part_torsos
    assert isinstance(atari[0], ScaledFrames) and isinstance(grid[0], ChannelsFirst)
    assert not any(isinstance(layer, nn.Conv2d) for layer in photo.modules())
    assert photo[1][1].in_features == 96 * 96 * 3


def test_uint8_image_part_stays_uint8_until_the_torso():
    module = torso(fuse=False)
    seen = []
    module.part_torsos[0].register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0].dtype))
    batch = observations()
    features = module(batch)
    assert seen == [torch.uint8]
    after_scaling = nn.Sequential(*list(module.part_torsos[0])[1:])  # the frames' torso without its scaling
    torch.testing.assert_close(features[:, :6], after_scaling(batch["frames"].float() / 255.0))


HEADS = {
    "plain": ({}, 1),
    "dueling": ({"dueling": True}, 1),
    "noisy": ({"noisy": True}, 1),
    "c51": ({"output": "c51", "num_outputs": 11, "support": torch.linspace(-5.0, 5.0, 11)}, 11),
    "qr": ({"output": "qr", "num_outputs": 7}, 7),
}


@pytest.mark.parametrize("head", HEADS)
def test_every_head_on_a_multi_input_torso_gives_q_values_per_action(head):
    options, outputs = HEADS[head]
    module = torso()
    network = QNetwork(module, module.feature_dim, N_ACTIONS, **options)
    assert network.head_outputs(observations()).shape == (3, N_ACTIONS, outputs)
    assert network(observations()).shape == (3, N_ACTIONS)


@pytest.mark.parametrize("core, state_size", [("lstm", 16), ("gru", 8)])
def test_recurrent_multi_input_network_unrolls_as_it_steps(core, state_size):
    module = torso()
    network = MultiInputRecurrentQNetwork(
        module, module.feature_dim, N_ACTIONS, core=core, hidden_size=8, float_input=False, dueling=True
    )
    steps = [observations(batch=2, seed=seed) for seed in range(3)]
    sequence = {key: torch.stack([step[key] for step in steps]) for key in steps[0]}  # [T=3, B=2, ...]
    q_TBA, final_BS = network.unroll(sequence, network.initial_state(2))
    assert q_TBA.shape == (3, 2, N_ACTIONS) and final_BS.shape == (2, state_size)
    state_BS = network.initial_state(2)
    for t, step in enumerate(steps):
        q_BA, state_BS = network.step(step, state_BS)
        torch.testing.assert_close(q_BA, q_TBA[t])
    torch.testing.assert_close(state_BS, final_BS)


def test_gradient_reaches_every_parts_weights():
    module = torso(activation="tanh")
    network = QNetwork(module, module.feature_dim, N_ACTIONS)
    network(observations()).sum().backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_tuple_space_parts_are_keyed_by_position():
    space = spaces.Tuple((spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,), np.float32)))
    assert list(observation_parts(space)) == ["0", "1"]
    module, feature_dim = build_multi_input_torso(space, hidden_sizes=(4,), activation="relu", fuse=False)
    states, vectors = torch.tensor([2, 0]), torch.tensor([[0.5, -0.5], [1.0, 0.0]])
    assert feature_dim == 3 + 4
    torch.testing.assert_close(module((states, vectors)), module({"0": states, "1": vectors}))


def test_positional_inputs_equal_the_dict_call():
    network = QNetwork(torso(), 6, N_ACTIONS, dueling=True).eval()
    batch = observations()
    positional = PositionalInputs(network, ["frames", "position", "room"])
    torch.testing.assert_close(positional(batch["frames"], batch["position"], batch["room"]), network(batch))


def test_positional_inputs_pass_a_recurrent_state_after_the_parts():
    module = torso()
    network = MultiInputRecurrentQNetwork(module, 6, N_ACTIONS, core="gru", hidden_size=8, float_input=False)
    batch, state_BS = observations(batch=2), torch.rand((2, 8))
    q_BA, next_BS = PositionalInputs(network, module.keys)(*(batch[key] for key in module.keys), state_BS)
    expected_q_BA, expected_BS = network(batch, state_BS)
    torch.testing.assert_close(q_BA, expected_q_BA)
    torch.testing.assert_close(next_BS, expected_BS)


def exported(network: nn.Module) -> tuple[PositionalInputs, tuple[torch.Tensor, ...], torch.export.ExportedProgram]:
    positional = PositionalInputs(network.eval(), observation_parts(SPACE))
    example = example_parts(observation_parts(SPACE))
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    program = torch.export.export(positional, example, dynamic_shapes=positional.dynamic_shapes(batch))
    return positional, example, program


def test_example_parts_are_zeros_of_each_parts_dtype():
    frames, position, room = example_parts(observation_parts(SPACE), batch=2)
    assert (frames.dtype, position.dtype, room.dtype) == (torch.uint8, torch.float32, torch.int64)
    assert (frames.shape, position.shape, room.shape) == ((2, 2, 36, 36), (2, 3), (2,))


def test_torch_export_of_the_positional_network_equals_torch_at_another_batch_size():
    network = QNetwork(torso(), 6, N_ACTIONS, output="qr", num_outputs=5)
    positional, _, program = exported(network)
    batch = observations(batch=5, seed=1)
    inputs = (batch["frames"], batch["position"], batch["room"])
    with torch.no_grad():
        torch.testing.assert_close(program.module()(*inputs), positional(*inputs))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch's exporter about its own pytree internals
def test_onnx_export_of_the_positional_network_equals_torch():
    pytest.importorskip("onnxscript")
    onnxruntime = pytest.importorskip("onnxruntime")
    network = QNetwork(torso(), 6, N_ACTIONS, dueling=True, noisy=True)  # eval mode: the noisy mean weights
    positional, example, program = exported(network)
    keys = list(positional.keys)
    onnx_program = torch.onnx.export(program, example, dynamo=True, input_names=keys, output_names=["q_values"])
    assert onnx_program is not None
    session = onnxruntime.InferenceSession(onnx_program.model_proto.SerializeToString())
    assert [graph_input.name for graph_input in session.get_inputs()] == ["frames", "position", "room"]
    batch = observations(batch=4, seed=2)
    (q_onnx,) = session.run(None, {key: batch[key].numpy() for key in keys})
    with torch.no_grad():
        q_torch = positional(*(batch[key] for key in keys)).numpy()
    np.testing.assert_allclose(q_onnx, q_torch, atol=1e-5, rtol=0)


BOX = spaces.Box(-1.0, 1.0, (2,), np.float32)


@pytest.mark.parametrize(
    "part",
    [
        spaces.Dict({"inner": BOX}),
        spaces.Tuple((BOX,)),
        spaces.MultiDiscrete([3, 3]),
        spaces.MultiBinary(4),
        spaces.Text(8),
        spaces.Box(0, 255, (1, 2, 8, 8), np.uint8),  # rank 4
        spaces.Box(-1.0, 1.0, (0,), np.float32),  # empty
        spaces.Discrete(3, start=1),
    ],
    ids=["dict", "tuple", "multidiscrete", "multibinary", "text", "rank4", "empty", "discrete_from_1"],
)
def test_observation_parts_refuse_a_part_a_torso_cannot_take_naming_its_key(part):
    with pytest.raises(ValueError, match=r"observation key 'bad' is .*allowed: a Box of rank <= 3") as error:
        observation_parts(spaces.Dict({"good": BOX, "bad": part}))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "space, message",
    [
        (BOX, "takes a Dict or Tuple observation space"),
        (spaces.Dict({"action_mask": spaces.MultiBinary(3)}), "no input besides 'action_mask'"),
        (spaces.Dict({1: BOX}), "key 1 is not a string"),
    ],
)
def test_observation_parts_refuse_a_space_without_usable_parts(space, message):
    with pytest.raises(NetworkError, match=message):
        observation_parts(space)


def test_multi_input_torso_refuses_a_cnn_that_does_not_fit_an_image_part_naming_its_key():
    space = spaces.Dict({"small": spaces.Box(0, 255, (2, 20, 20), np.uint8), "vector": BOX})
    with pytest.raises(NetworkError, match=r"observation key 'small': torso nature_cnn needs .* H, W >= 36"):
        build_multi_input_torso(space, hidden_sizes=(4,), activation="relu", torso="nature_cnn")


def test_multi_input_torso_refuses_a_cnn_without_an_image_part():
    with pytest.raises(NetworkError, match="torso minatar_cnn needs an image part"):
        build_multi_input_torso(spaces.Dict({"vector": BOX}), hidden_sizes=(4,), activation="relu", torso="minatar_cnn")
