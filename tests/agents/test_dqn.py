"""The DQN maths (TD and Double-DQN targets) against hand-computed numbers, and the agent's
contract: act, update on a hand-built batch, sync the target, round-trip its state."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dqn_family.agents import DQNAgent, double_dqn_target, dqn_target
from dqn_family.configs import Config
from dqn_family.replay import Batch

# Three samples: an ordinary one, a terminated one, one with a smaller per-sample discount.
REWARDS_B = torch.tensor([1.0, 2.0, 0.5])
DISCOUNTS_B = torch.tensor([0.9, 0.5, 0.25])
TERMINATED_B = torch.tensor([0.0, 1.0, 0.0])
NEXT_Q_TARGET_BA = torch.tensor([[1.0, 3.0], [10.0, 20.0], [-2.0, -1.0]])
NEXT_Q_ONLINE_BA = torch.tensor([[5.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # argmax: 0, 1, 0


def test_dqn_target_bootstraps_from_max_target_q():
    target_B = dqn_target(REWARDS_B, DISCOUNTS_B, TERMINATED_B, NEXT_Q_TARGET_BA)
    # 1 + 0.9 * max(1, 3) = 3.7;  terminated: 2;  0.5 + 0.25 * max(-2, -1) = 0.25
    torch.testing.assert_close(target_B, torch.tensor([3.7, 2.0, 0.25]))


def test_dqn_target_terminated_row_is_reward_alone():
    target_B = dqn_target(torch.tensor([2.0]), torch.tensor([0.99]), torch.tensor([1.0]), torch.tensor([[1e6, -1e6]]))
    assert target_B.item() == 2.0


def test_double_dqn_target_values_online_argmax_with_target_network():
    target_B = double_dqn_target(REWARDS_B, DISCOUNTS_B, TERMINATED_B, NEXT_Q_TARGET_BA, NEXT_Q_ONLINE_BA)
    # 1 + 0.9 * Q_target[0, 0] = 1.9;  terminated: 2;  0.5 + 0.25 * Q_target[2, 0] = 0.0
    torch.testing.assert_close(target_B, torch.tensor([1.9, 2.0, 0.0]))


def test_double_dqn_target_equals_dqn_target_when_online_agrees_with_target():
    target_B = double_dqn_target(REWARDS_B, DISCOUNTS_B, TERMINATED_B, NEXT_Q_TARGET_BA, NEXT_Q_TARGET_BA)
    torch.testing.assert_close(target_B, dqn_target(REWARDS_B, DISCOUNTS_B, TERMINATED_B, NEXT_Q_TARGET_BA))


class FixedQ(nn.Module):
    """Q(s, a) = s · W[:, a] with W set by hand: Q-values you can compute on paper."""

    def __init__(self, weights_OA: list[list[float]]) -> None:
        super().__init__()
        self.weights_OA = nn.Parameter(torch.tensor(weights_OA))

    def forward(self, observations_BO: torch.Tensor) -> torch.Tensor:
        return observations_BO.float() @ self.weights_OA


def make_agent(weights_OA=((1.0, 0.0), (0.0, 1.0)), **options) -> DQNAgent:
    options = {"learning_rate": 0.1, **options}
    return DQNAgent(
        q_network=FixedQ([list(row) for row in weights_OA]), n_actions=2, device=torch.device("cpu"), seed=0, **options
    )


def test_dqn_agent_act_with_epsilon_zero_is_greedy():
    agent = make_agent()
    observations = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 2.0]], dtype=np.float32)
    np.testing.assert_array_equal(agent.act(observations, epsilon=0.0), [0, 1, 0])


def test_dqn_agent_act_with_epsilon_one_is_uniform_random():
    agent = make_agent()
    observations = np.tile(np.array([[1.0, 0.0]], dtype=np.float32), (2000, 1))  # greedy would be 0
    actions = agent.act(observations, epsilon=1.0)
    assert set(np.unique(actions)) == {0, 1}
    assert 0.45 < actions.mean() < 0.55


def hand_batch(*, terminated: float) -> Batch:
    """One transition s=[1, 0], a=0, r=1, s'=[0, 1], discount 0.5."""
    return Batch(
        observations=torch.tensor([[1.0, 0.0]]),
        actions=torch.tensor([0]),
        rewards=torch.tensor([1.0]),
        next_observations=torch.tensor([[0.0, 1.0]]),
        terminated=torch.tensor([terminated]),
        discounts=torch.tensor([0.5]),
        indices=torch.tensor([0]),
    )


def test_dqn_agent_update_reports_loss_against_td_target():
    # Q(s, 0) = 1; target = 1 + 0.5 * max Q_target(s') = 1 + 0.5 * 3 = 2.5; mse = 1.5^2 = 2.25
    agent = make_agent(weights_OA=((1.0, 0.0), (0.0, 3.0)), loss="mse")
    metrics = agent.update(hand_batch(terminated=0.0))
    assert metrics["td_loss"].item() == pytest.approx(2.25)
    assert metrics["q_values"].item() == pytest.approx(1.0)


def test_dqn_agent_update_terminated_sample_does_not_bootstrap():
    # target = r = 1 = Q(s, 0): nothing to learn, so the weights do not move.
    agent = make_agent(weights_OA=((1.0, 0.0), (0.0, 3.0)), loss="mse")
    metrics = agent.update(hand_batch(terminated=1.0))
    assert metrics["td_loss"].item() == 0.0
    torch.testing.assert_close(agent.q_network.weights_OA.detach(), torch.tensor([[1.0, 0.0], [0.0, 3.0]]))


def test_dqn_agent_update_moves_q_value_toward_target():
    agent = make_agent(weights_OA=((1.0, 0.0), (0.0, 3.0)), loss="mse")
    agent.update(hand_batch(terminated=0.0))
    # Adam's first step moves each weight with a nonzero gradient by lr = 0.1 toward the target.
    assert agent.q_network.weights_OA[0, 0].item() == pytest.approx(1.1)


def test_dqn_agent_update_leaves_target_network_until_sync():
    agent = make_agent(loss="mse")
    agent.update(hand_batch(terminated=0.0))
    torch.testing.assert_close(agent.target_network.weights_OA, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    agent.sync_target()
    torch.testing.assert_close(agent.target_network.weights_OA, agent.q_network.weights_OA.detach())


def test_dqn_agent_sync_target_with_tau_averages():
    agent = make_agent(weights_OA=((0.0, 0.0), (0.0, 0.0)))
    with torch.no_grad():
        agent.q_network.weights_OA.fill_(4.0)
    agent.sync_target(tau=0.25)  # 0.25 * 4 + 0.75 * 0 = 1
    torch.testing.assert_close(agent.target_network.weights_OA, torch.full((2, 2), 1.0))


def test_dqn_agent_state_dict_round_trip_restores_weights():
    trained = make_agent(loss="mse")
    trained.update(hand_batch(terminated=0.0))
    fresh = make_agent(loss="mse")
    fresh.load_state_dict(trained.state_dict())
    torch.testing.assert_close(fresh.q_network.weights_OA, trained.q_network.weights_OA)
    assert fresh.optimizer.state_dict()["state"][0]["step"] == 1


def test_dqn_agent_from_config_takes_its_learning_options():
    config = Config(learning_rate=0.01, adam_eps=1e-5, double=True, loss="mse", max_grad_norm=None)
    agent = DQNAgent.from_config(
        config, q_network=FixedQ([[1.0, 0.0], [0.0, 3.0]]), n_actions=2, device=torch.device("cpu"), seed=0
    )
    assert agent.optimizer.param_groups[0]["lr"] == 0.01
    assert agent.optimizer.param_groups[0]["eps"] == 1e-5
    assert (agent.double, agent.max_grad_norm) == (True, None)


def test_dqn_agent_greedy_action_for_one_observation_with_batchnorm_network():
    network = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    agent = DQNAgent(q_network=network, n_actions=2, device=torch.device("cpu"), seed=0, learning_rate=0.1)
    actions = agent.act(np.array([[1.0, 0.0]], dtype=np.float32), epsilon=0.0)
    assert actions.shape == (1,)
    assert network[1].num_batches_tracked.item() == 0
