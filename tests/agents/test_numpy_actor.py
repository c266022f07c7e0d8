"""The numpy greedy policy: the same actions as the torch forward for every head it supports, views
of the parameters (so it follows in-place updates), and None for networks it cannot mirror."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn_family.agents import MLPQNetwork
from dqn_family.agents.masks import masked_q
from dqn_family.agents.numpy_actor import numpy_greedy_policy
from tests.custom_nets import BranchyQNet

HEADS = {
    "q": {},
    "dueling": {"dueling": True},
    "c51": {"output": "c51", "num_outputs": 7, "support": torch.linspace(-5.0, 5.0, 7)},
    "c51 dueling": {"output": "c51", "num_outputs": 7, "support": torch.linspace(-5.0, 5.0, 7), "dueling": True},
    "qr": {"output": "qr", "num_outputs": 5},
    "qr dueling": {"output": "qr", "num_outputs": 5, "dueling": True},
}


def network(head: str, activation: str = "relu") -> MLPQNetwork:
    torch.manual_seed(0)
    return MLPQNetwork((4,), 3, hidden_sizes=(16, 8), activation=activation, **HEADS[head])


def assert_same_greedy_actions(numpy_actions: np.ndarray, q_BA: torch.Tensor) -> None:
    """Equal actions, except where the top two torch Q-values are within float rounding of each other."""
    top_two = q_BA.topk(2, dim=1).values
    near_tie = (top_two[:, 0] - top_two[:, 1] < 1e-5).numpy()
    differ = numpy_actions != q_BA.argmax(dim=1).numpy()
    assert not (differ & ~near_tie).any()
    assert near_tie.mean() < 0.01  # the comparison is not vacuous


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("head", HEADS)
def test_numpy_greedy_policy_matches_torch_forward(head, activation):
    q_network = network(head, activation)
    observations = np.random.default_rng(0).normal(scale=2.0, size=(500, 4)).astype(np.float32)
    with torch.no_grad():
        q_BA = q_network(torch.as_tensor(observations))
    greedy = numpy_greedy_policy(q_network)
    assert_same_greedy_actions(greedy(observations), q_BA)


@pytest.mark.parametrize("head", HEADS)
def test_numpy_greedy_policy_matches_torch_forward_on_discrete_observations(head):
    torch.manual_seed(0)
    q_network = MLPQNetwork((), 3, hidden_sizes=(16, 8), observation_states=50, **HEADS[head])
    states = np.arange(50, dtype=np.int64)  # every state
    with torch.no_grad():
        q_BA = q_network(torch.as_tensor(states))
    greedy = numpy_greedy_policy(q_network)
    assert greedy is not None
    assert_same_greedy_actions(greedy(states), q_BA)


def test_numpy_greedy_policy_follows_in_place_parameter_updates():
    q_network = network("q")
    greedy = numpy_greedy_policy(q_network)
    observations = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    with torch.no_grad():
        q_network.advantage.bias.copy_(torch.tensor([0.0, 1e3, 0.0]))  # action 1 dominates
    assert greedy(observations).tolist() == [1] * 20
    q_network.load_state_dict({**q_network.state_dict(), "advantage.bias": torch.tensor([0.0, 0.0, 1e3])})
    assert greedy(observations).tolist() == [2] * 20


def test_numpy_greedy_policy_leaves_observations_unchanged():
    observations = np.random.default_rng(2).normal(size=(8, 4)).astype(np.float32)
    original = observations.copy()
    numpy_greedy_policy(network("dueling"))(observations)
    np.testing.assert_array_equal(observations, original)


def test_numpy_greedy_policy_is_none_for_noisy_network():
    assert numpy_greedy_policy(MLPQNetwork((4,), 3, hidden_sizes=(8,), noisy=True)) is None


def test_numpy_greedy_policy_is_none_for_custom_network():
    assert numpy_greedy_policy(BranchyQNet((4,), 3)) is None


def test_numpy_greedy_policy_is_none_for_unsupported_activation():
    assert numpy_greedy_policy(MLPQNetwork((4,), 3, hidden_sizes=(8,), activation="gelu")) is None


@pytest.mark.parametrize("head", HEADS)
def test_numpy_greedy_policy_with_mask_matches_torch_argmax_over_legal_actions(head):
    q_network = network(head)
    observations = np.random.default_rng(3).normal(scale=2.0, size=(500, 4)).astype(np.float32)
    legal = np.random.default_rng(4).random((500, 3)) < 0.6
    legal[np.arange(500), np.arange(500) % 3] = True  # a legal action in every row
    with torch.no_grad():
        q_BA = masked_q(q_network(torch.as_tensor(observations)), legal)
    actions = numpy_greedy_policy(q_network)(observations, legal)
    assert legal[np.arange(500), actions].all()
    assert_same_greedy_actions(actions, q_BA.clamp(min=-1e9))  # finite, for the near-tie check


def test_numpy_greedy_policy_with_mask_skips_the_dominant_illegal_action():
    q_network = network("q")
    with torch.no_grad():
        q_network.advantage.bias.copy_(torch.tensor([0.0, 1e3, 5e2]))  # action 1, then 2, dominate
    observations = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    legal = np.tile(np.array([True, False, True]), (20, 1))
    assert numpy_greedy_policy(q_network)(observations, legal).tolist() == [2] * 20
    assert numpy_greedy_policy(q_network)(observations).tolist() == [1] * 20


def test_numpy_greedy_policy_refuses_a_row_without_legal_action():
    legal = np.array([[True, True, True], [False, False, False]])
    with pytest.raises(ValueError, match="row 1 has no legal action"):
        numpy_greedy_policy(network("dueling"))(np.zeros((2, 4), np.float32), legal)
