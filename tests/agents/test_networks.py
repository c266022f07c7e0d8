"""Q-networks: the MLP's contract, and a user's own network imported, built and checked."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dqn_family.agents import MLPQNetwork, NetworkError, build_q_network, factory_spec
from dqn_family.agents.networks import OneHot, import_factory
from tests.custom_nets import BranchyQNet


def test_mlp_q_network_maps_batch_to_one_q_per_action():
    q_BA = MLPQNetwork((4,), 3, hidden_sizes=(8, 8))(torch.zeros(5, 4))
    assert q_BA.shape == (5, 3)


def test_mlp_q_network_flattens_and_accepts_uint8_pixels():
    q_BA = MLPQNetwork((2, 3, 3), 4, hidden_sizes=(8,))(torch.full((2, 2, 3, 3), 255, dtype=torch.uint8))
    assert q_BA.shape == (2, 4) and q_BA.dtype == torch.float32


def test_mlp_q_network_hidden_sizes_give_linear_widths():
    network = MLPQNetwork((4,), 2, hidden_sizes=(8, 6), activation="tanh")
    linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 8), (8, 6), (6, 2)]
    assert any(isinstance(m, nn.Tanh) for m in network.modules())


def test_one_hot_encodes_state_indices():
    one_hot = OneHot(4)(torch.tensor([2, 0, 3]))
    torch.testing.assert_close(
        one_hot, torch.tensor([[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    )


def test_mlp_q_network_discrete_observations_one_hot_into_first_layer():
    # Q(s) for state index s is the network applied to the one-hot vector e_s.
    torch.manual_seed(0)
    network = MLPQNetwork((), 3, hidden_sizes=(8,), observation_states=5)
    assert network.torso[1].in_features == 5
    states = torch.tensor([4, 0, 2], dtype=torch.int64)
    q_BA = network(states)
    assert q_BA.shape == (3, 3)
    plain = nn.Sequential(*list(network.torso)[1:], network.advantage)
    torch.testing.assert_close(q_BA, plain(torch.eye(5)[states]))


def test_build_q_network_discrete_observations_is_one_hot_mlp():
    network = build_q_network((), 2, hidden_sizes=(8,), activation="relu", observation_states=16)
    assert isinstance(network, MLPQNetwork) and isinstance(network.torso[0], OneHot)


def test_build_q_network_discrete_observations_reach_a_custom_network_one_hot():
    network = build_q_network((), 2, hidden_sizes=(8,), activation="relu", network=BranchyQNet, observation_states=16)
    q_BA = network(torch.tensor([3, 15]))
    assert network[1].body[1].in_features == 16 and q_BA.shape == (2, 2)


def test_build_q_network_discrete_observations_with_cnn_torso_is_network_error():
    with pytest.raises(NetworkError, match="--torso mlp"):
        build_q_network((), 2, hidden_sizes=(8,), activation="relu", torso="nature_cnn", observation_states=16)


def test_branchy_q_net_takes_a_different_path_for_zero_input():
    network = BranchyQNet((2,), 2)
    with torch.no_grad():
        network.zero_head.weight.zero_()
        network.zero_head.bias.copy_(torch.tensor([7.0, -7.0]))
    torch.testing.assert_close(network(torch.zeros(1, 2)), torch.tensor([[7.0, -7.0]]))
    assert not torch.equal(network(torch.ones(1, 2)), torch.tensor([[7.0, -7.0]]))


def test_build_q_network_without_network_is_the_mlp():
    network = build_q_network((4,), 2, hidden_sizes=(8,), activation="relu")
    assert isinstance(network, MLPQNetwork)


def test_build_q_network_from_import_string_builds_users_class():
    network = build_q_network((4,), 2, hidden_sizes=(8,), activation="relu", network="tests.custom_nets:BranchyQNet")
    assert isinstance(network, BranchyQNet)


def test_build_q_network_from_factory_builds_users_class():
    assert isinstance(build_q_network((4,), 2, hidden_sizes=(8,), activation="relu", network=BranchyQNet), BranchyQNet)


def test_build_q_network_wrong_output_shape_is_network_error():
    with pytest.raises(NetworkError, match=r"must map \[B, \*obs_shape\] to \[B, 2\].*returned \(2, 3\)"):
        build_q_network((4,), 2, hidden_sizes=(8,), activation="relu", network=lambda shape, n: nn.Linear(4, 3))


def test_build_q_network_not_a_module_is_network_error():
    with pytest.raises(NetworkError, match="not a torch.nn.Module"):
        build_q_network((4,), 2, hidden_sizes=(8,), activation="relu", network=lambda shape, n: "net")


def test_build_q_network_factory_that_fails_is_network_error():
    def broken(shape, n):
        raise RuntimeError("boom")

    with pytest.raises(NetworkError, match="failed to build.*boom"):
        build_q_network((4,), 2, hidden_sizes=(8,), activation="relu", network=broken)


def test_build_q_network_probe_leaves_training_mode_and_batchnorm_statistics():
    network = nn.Sequential(nn.Linear(4, 2), nn.BatchNorm1d(2))
    build_q_network((4,), 2, hidden_sizes=(8,), activation="relu", network=lambda shape, n: network)
    assert network.training
    assert network[1].num_batches_tracked.item() == 0


@pytest.mark.parametrize(
    "spec, message",
    [
        ("tests.no_such_module:Net", "cannot import network"),
        ("tests.custom_nets:NoSuchNet", "cannot import network"),
        ("tests.custom_nets:math", "is not callable"),
    ],
)
def test_import_factory_bad_spec_is_network_error(spec, message):
    with pytest.raises(NetworkError, match=message):
        import_factory(spec)


@pytest.mark.parametrize("spec", [":BranchyQNet", ".custom_nets:BranchyQNet"])
def test_import_factory_malformed_module_is_network_error(spec):
    with pytest.raises(NetworkError):
        import_factory(spec)


def test_factory_spec_names_importable_class():
    assert factory_spec(BranchyQNet) == "tests.custom_nets:BranchyQNet"


def test_factory_spec_is_none_for_lambda_and_local_function():
    def local(shape, n):
        return nn.Linear(4, n)

    assert factory_spec(lambda shape, n: nn.Linear(4, n)) is None
    assert factory_spec(local) is None
