"""QNetwork heads against hand-set weights: the dueling aggregation Q = V + A - mean_a A (Wang et
al. 2016), and how C51 logits and QR quantiles become Q-values. The torso is nn.Identity, so the
features are the observations themselves and every number below can be worked out on paper."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dqn_family.agents import QNetwork


def set_linear(layer: nn.Linear, weight: list[list[float]], bias: list[float]) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))


def dueling_q_network() -> QNetwork:
    """Features x = [x0, x1]; A(x) = [x0, x1, x0 + x1]; V(x) = 2 x0 + 0.5."""
    network = QNetwork(nn.Identity(), feature_dim=2, n_actions=3, dueling=True)
    set_linear(network.advantage, [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [0.0, 0.0, 0.0])
    set_linear(network.value, [[2.0, 0.0]], [0.5])
    return network


def test_dueling_head_q_is_value_plus_advantage_minus_mean_advantage():
    # x = [1, 2]: A = [1, 2, 3], mean 2; V = 2.5; Q = 2.5 + [-1, 0, 1] = [1.5, 2.5, 3.5]
    # x = [0, -1]: A = [0, -1, -1], mean -2/3; V = 0.5; Q = 0.5 + [2/3, -1/3, -1/3]
    q_BA = dueling_q_network()(torch.tensor([[1.0, 2.0], [0.0, -1.0]]))
    torch.testing.assert_close(q_BA, torch.tensor([[1.5, 2.5, 3.5], [0.5 + 2 / 3, 0.5 - 1 / 3, 0.5 - 1 / 3]]))


def test_dueling_head_q_unchanged_when_every_advantage_shifts_by_a_constant():
    network = dueling_q_network()
    observations = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    before_BA = network(observations)
    with torch.no_grad():
        network.advantage.bias.add_(7.0)  # A + 7 for every action: the mean absorbs it
    torch.testing.assert_close(network(observations), before_BA)


def test_dueling_head_mean_q_over_actions_is_the_value():
    network = dueling_q_network()
    q_BA = network(torch.tensor([[1.0, 2.0]]))
    assert q_BA.mean().item() == pytest.approx(2.5)  # V(x) = 2 * 1 + 0.5


def test_dueling_head_aggregates_each_distributional_output_separately():
    # K = 2 outputs per action, 2 actions. Advantage layer outputs [a0k0, a0k1, a1k0, a1k1] = bias.
    network = QNetwork(nn.Identity(), feature_dim=1, n_actions=2, output="qr", num_outputs=2, dueling=True)
    set_linear(network.advantage, [[0.0]] * 4, [1.0, 10.0, 3.0, 20.0])
    set_linear(network.value, [[0.0], [0.0]], [100.0, 200.0])
    out_BAK = network.head_outputs(torch.zeros(1, 1))
    # output 0: A = [1, 3], mean 2 -> 100 + [-1, 1];  output 1: A = [10, 20], mean 15 -> 200 + [-5, 5]
    torch.testing.assert_close(out_BAK, torch.tensor([[[99.0, 195.0], [101.0, 205.0]]]))


def test_q_network_head_outputs_are_batch_by_actions_by_outputs():
    network = QNetwork(nn.Identity(), feature_dim=4, n_actions=3, output="qr", num_outputs=5)
    assert network.head_outputs(torch.zeros(2, 4)).shape == (2, 3, 5)
    assert network(torch.zeros(2, 4)).shape == (2, 3)


def test_c51_head_q_is_expected_value_over_support():
    # Support [0, 10]. Action 0: logits [0, 0] -> p = [1/2, 1/2] -> Q = 5.
    # Action 1: logits [ln 3, 0] -> p = [3/4, 1/4] -> Q = 2.5.
    network = QNetwork(
        nn.Identity(), feature_dim=1, n_actions=2, output="c51", num_outputs=2, support=torch.tensor([0.0, 10.0])
    )
    set_linear(network.advantage, [[0.0]] * 4, [0.0, 0.0, math.log(3.0), 0.0])
    torch.testing.assert_close(network(torch.zeros(1, 1)), torch.tensor([[5.0, 2.5]]))


def test_qr_head_q_is_mean_of_quantiles():
    network = QNetwork(nn.Identity(), feature_dim=1, n_actions=2, output="qr", num_outputs=3)
    set_linear(network.advantage, [[0.0]] * 6, [1.0, 2.0, 6.0, -3.0, 0.0, 0.0])
    torch.testing.assert_close(network(torch.zeros(1, 1)), torch.tensor([[3.0, -1.0]]))


def test_q_network_unknown_output_is_value_error():
    with pytest.raises(ValueError, match="unknown output 'iqn'"):
        QNetwork(nn.Identity(), feature_dim=1, n_actions=2, output="iqn")
