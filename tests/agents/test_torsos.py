"""agents.torsos and ConvQNetwork: picking a torso from the shape, the Nature, MinAtar and board
convolutions' sizes, scaling raw observations inside the network, and every head on both."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dqn_family.agents import ConvQNetwork, MLPQNetwork, NetworkError, build_q_network
from dqn_family.agents.torsos import check_torso, choose_torso


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((4,), "mlp"),
        ((8, 8), "mlp"),
        ((4, 84, 84), "nature_cnn"),
        ((1, 64, 64), "nature_cnn"),
        ((10, 10, 4), "minatar_cnn"),
        ((10, 10, 7), "minatar_cnn"),
        ((96, 96, 3), "mlp"),  # a channels-last image: not guessed (choose a torso, or bring a network)
        ((4, 16, 16), "mlp"),  # frames too small for the Nature CNN are not MinAtar grids either
    ],
)
def test_choose_torso_auto_follows_the_observation_shape(shape, expected):
    assert choose_torso(shape, "auto") == expected
    assert choose_torso(shape, "mlp") == "mlp"  # an explicit choice is kept


def test_check_torso_names_what_does_not_fit():
    assert check_torso((4, 84, 84), "nature_cnn") is None
    assert "H, W >= 36" in check_torso((4, 20, 20), "nature_cnn")
    assert "3-D observations" in check_torso((4,), "minatar_cnn")
    assert check_torso((10, 10, 4), "minatar_cnn") is None
    assert "channels-last grids" in check_torso((4, 84, 84), "minatar_cnn")  # Atari frames are channels-first
    assert check_torso((6, 7, 2), "board_cnn") is None  # connect four
    assert "H, W >= 4" in check_torso((3, 3, 2), "board_cnn")  # tic-tac-toe's board holds no 4x4 window
    assert "3-D observations" in check_torso((42,), "board_cnn")


def test_nature_cnn_has_the_papers_layers_and_3136_conv_features():
    network = ConvQNetwork((4, 84, 84), 6, torso="nature_cnn", hidden_sizes=(512,))
    convs = [m for m in network.torso if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (32, (8, 8), (4, 4)),
        (64, (4, 4), (2, 2)),
        (64, (3, 3), (1, 1)),
    ]
    (linear,) = [m for m in network.torso if isinstance(m, nn.Linear)]
    assert (linear.in_features, linear.out_features) == (64 * 7 * 7, 512)  # 84 -> 20 -> 9 -> 7


def test_nature_cnn_scales_uint8_frames_to_unit_range():
    torch.manual_seed(0)
    network = ConvQNetwork((2, 36, 36), 3, torso="nature_cnn", hidden_sizes=(8,))
    frames = torch.randint(0, 256, (5, 2, 36, 36), dtype=torch.uint8)
    scaled_by_hand = frames.float() / 255.0
    after_scaling = nn.Sequential(*list(network.torso)[1:])  # the torso without its scaling layer
    expected = network.advantage(after_scaling(scaled_by_hand))
    torch.testing.assert_close(network(frames), expected)


def test_minatar_cnn_reads_channels_last_bool_grids():
    torch.manual_seed(0)
    network = ConvQNetwork((10, 10, 4), 3, torso="minatar_cnn", hidden_sizes=(128,))
    conv = network.torso[1]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (4, 16, (3, 3))
    assert network.torso[4].in_features == 16 * 8 * 8
    grids = torch.rand(3, 10, 10, 4) > 0.5
    by_hand = nn.Sequential(*list(network.torso)[1:])(grids.float().permute(0, 3, 1, 2))
    torch.testing.assert_close(network(grids), network.advantage(by_hand))


@pytest.mark.parametrize(
    "head",
    [
        {},
        {"dueling": True},
        {"noisy": True},
        {"output": "c51", "num_outputs": 5, "support": torch.linspace(-1, 1, 5)},
        {"output": "qr", "num_outputs": 4},
    ],
)
@pytest.mark.parametrize("shape, dtype", [((4, 84, 84), torch.uint8), ((10, 10, 4), torch.bool)])
def test_build_q_network_conv_torsos_work_with_every_head(head, shape, dtype):
    network = build_q_network(shape, 5, hidden_sizes=(16,), activation="relu", **head)
    assert isinstance(network, ConvQNetwork)
    assert network(torch.zeros((3, *shape), dtype=dtype)).shape == (3, 5)


def test_build_q_network_explicit_mlp_on_pixels_and_bad_torso():
    assert isinstance(build_q_network((2, 6, 6), 2, hidden_sizes=(4,), activation="relu", torso="mlp"), MLPQNetwork)
    with pytest.raises(NetworkError, match="nature_cnn needs"):
        build_q_network((4,), 2, hidden_sizes=(4,), activation="relu", torso="nature_cnn")


def test_board_cnn_sees_each_line_of_four_in_one_unit():
    """64 4x4 filters on a 6x7 board: 3x4 positions, 768 features; a filter that sums the top row of
    its window, less 3.5, fires exactly where a row of four of the first plane starts."""
    network = ConvQNetwork((6, 7, 2), 7, torso="board_cnn", hidden_sizes=(32,))
    conv = network.torso[1]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (2, 64, (4, 4), (1, 1))
    assert network.torso[4].in_features == 64 * 3 * 4
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(-3.5)
        conv.weight[0, 0, 0, :] = 1.0  # filter 0: the window's top row, own pieces
    board = torch.zeros(1, 6, 7, 2, dtype=torch.int8)
    board[0, 2, 1:5, 0] = 1  # own pieces in row 2, columns 1-4
    board[0, 0, 0:3, 0] = 1  # three in row 0: not a line of four
    fires = network.torso[2](conv(network.torso[0](board)))[0, 0] > 0
    assert fires.nonzero().tolist() == [[2, 1]]  # window top-left corner (row 2, column 1)
