"""The DQN maths (TD and Double-DQN targets) against hand-computed numbers, and the agent's
contract: act, update on a hand-built batch, sync the target, round-trip its state."""

from __future__ import annotations

import dataclasses

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


# --- action masks (agents/masks.py) -------------------------------------------------------------
# Row 0 may take only action 0 (its higher Q, 3, is illegal); row 1 is terminal with no legal action
# at all; row 2 may take only action 1.
NEXT_LEGAL_BA = torch.tensor([[True, False], [False, False], [False, True]])


def test_dqn_target_with_mask_bootstraps_from_max_over_legal_actions():
    target_B = dqn_target(REWARDS_B, DISCOUNTS_B, TERMINATED_B, NEXT_Q_TARGET_BA, NEXT_LEGAL_BA)
    # 1 + 0.9 * Q[0, 0] = 1.9 (not 3.7);  terminated, no legal action: 2, finite;  0.5 + 0.25 * Q[2, 1] = 0.25
    torch.testing.assert_close(target_B, torch.tensor([1.9, 2.0, 0.25]))


def test_double_dqn_target_with_mask_takes_online_argmax_over_legal_actions():
    # The online argmax is 0, 1, 0; among the legal actions it is 0, -, 1.
    target_B = double_dqn_target(
        REWARDS_B, DISCOUNTS_B, TERMINATED_B, NEXT_Q_TARGET_BA, NEXT_Q_ONLINE_BA, NEXT_LEGAL_BA
    )
    # 1 + 0.9 * Q_target[0, 0] = 1.9;  terminated: 2;  0.5 + 0.25 * Q_target[2, 1] = 0.25 (not 0.0)
    torch.testing.assert_close(target_B, torch.tensor([1.9, 2.0, 0.25]))


def test_dqn_targets_without_mask_are_bit_identical_to_the_unmasked_formula():
    bootstrap_B = DISCOUNTS_B * (1.0 - TERMINATED_B)
    online_actions_B1 = NEXT_Q_ONLINE_BA.argmax(dim=1, keepdim=True)
    plain_B = REWARDS_B + bootstrap_B * NEXT_Q_TARGET_BA.max(dim=1).values
    double_B = REWARDS_B + bootstrap_B * NEXT_Q_TARGET_BA.gather(1, online_actions_B1).squeeze(1)
    all_legal_BA = torch.ones(3, 2, dtype=torch.bool)
    for legal in (None, all_legal_BA):
        assert torch.equal(dqn_target(REWARDS_B, DISCOUNTS_B, TERMINATED_B, NEXT_Q_TARGET_BA, legal), plain_B)
        assert torch.equal(
            double_dqn_target(REWARDS_B, DISCOUNTS_B, TERMINATED_B, NEXT_Q_TARGET_BA, NEXT_Q_ONLINE_BA, legal), double_B
        )


def three_action_agent(**options) -> DQNAgent:
    """Q(s, ·) = s · W with W = [[1, 3, 2], [0, 0, 0]]: for s = [1, 0], Q = [1, 3, 2], action 1 highest."""
    network = FixedQ([[1.0, 3.0, 2.0], [0.0, 0.0, 0.0]])
    return DQNAgent(q_network=network, n_actions=3, device=torch.device("cpu"), seed=0, learning_rate=0.1, **options)


@pytest.mark.parametrize("numpy_acting", [True, False])
def test_dqn_agent_act_greedy_with_mask_takes_best_legal_action(numpy_acting):
    agent = three_action_agent(numpy_acting=numpy_acting)
    observations = np.array([[1.0, 0.0]] * 3, dtype=np.float32)
    legal = np.array([[True, False, True], [True, False, False], [True, True, True]])
    np.testing.assert_array_equal(agent.act(observations, epsilon=0.0, legal=legal), [2, 0, 1])
    np.testing.assert_array_equal(agent.greedy_actions(observations, legal), [2, 0, 1])


def test_dqn_agent_act_exploring_with_mask_draws_only_legal_actions_from_its_own_generator():
    count = 3000
    agent = three_action_agent()
    legal = np.tile(np.array([True, False, True]), (count, 1))
    actions = agent.act(np.zeros((count, 2), np.float32), epsilon=1.0, legal=legal)
    # The same one call to the agent's generator as without a mask: u < 1/2 -> action 0, else 2.
    uniforms = np.random.default_rng(0).random((2, count))[1]
    np.testing.assert_array_equal(actions, np.where(uniforms < 0.5, 0, 2))
    assert set(np.unique(actions)) == {0, 2}
    assert 1400 < (actions == 0).sum() < 1600  # about half each


def test_dqn_agent_act_without_mask_is_bit_identical_to_the_unmasked_draws():
    count, epsilon = 500, 0.3
    observations = np.random.default_rng(1).normal(size=(count, 2)).astype(np.float32)
    unmasked, masked = three_action_agent(), three_action_agent()
    actions = unmasked.act(observations, epsilon)
    # What act computed before masks: one generator call, explore where u0 < epsilon, action floor(3 u1).
    draws = np.random.default_rng(0).random((2, count))
    greedy = (observations @ np.array([[1.0, 3.0, 2.0], [0.0, 0.0, 0.0]], np.float32)).argmax(axis=1)
    np.testing.assert_array_equal(actions, np.where(draws[0] < epsilon, (draws[1] * 3).astype(np.int64), greedy))
    # An all-legal mask changes nothing either, not even the generator's next draw.
    np.testing.assert_array_equal(masked.act(observations, epsilon, legal=np.ones((count, 3), bool)), actions)
    assert masked.rng.random() == unmasked.rng.random()


@pytest.mark.parametrize("numpy_acting", [True, False])
@pytest.mark.parametrize("epsilon", [0.0, 1.0])
def test_dqn_agent_act_refuses_a_state_with_no_legal_action(numpy_acting, epsilon):
    agent = three_action_agent(numpy_acting=numpy_acting)
    legal = np.array([[True, False, False], [False, False, False]])
    with pytest.raises(ValueError, match="row 1 has no legal action"):
        agent.act(np.zeros((2, 2), np.float32), epsilon=epsilon, legal=legal)


def masked_batch(*, terminated: float, next_legal: list[bool]) -> Batch:
    """hand_batch's transition with the next state's mask."""
    return dataclasses.replace(hand_batch(terminated=terminated), next_legal=torch.tensor([next_legal]))


@pytest.mark.parametrize("double", [False, True])
def test_dqn_agent_update_with_mask_bootstraps_from_legal_actions_only(double):
    # Q_target(s') = [0, 3] with action 1 illegal: target = 1 + 0.5 * 0 = 1 = Q(s, 0): loss 0, not 2.25.
    agent = make_agent(weights_OA=((1.0, 0.0), (0.0, 3.0)), loss="mse", double=double)
    metrics = agent.update(masked_batch(terminated=0.0, next_legal=[True, False]))
    assert metrics["td_loss"].item() == 0.0


@pytest.mark.parametrize("double", [False, True])
def test_dqn_agent_update_terminal_state_without_legal_action_gives_finite_loss(double):
    agent = make_agent(weights_OA=((1.0, 0.0), (0.0, 3.0)), loss="mse", double=double)
    metrics = agent.update(masked_batch(terminated=1.0, next_legal=[False, False]))
    assert metrics["td_loss"].item() == 0.0  # target = r = 1 = Q(s, 0)
    assert torch.isfinite(agent.q_network.weights_OA).all()


def learned_value_of_start_state(*, masked: bool, updates: int = 200) -> float:
    """Overestimation through an illegal action, on a two-state toy.

    s0 --(action 0, r = 0, discount 0.9)--> s1 --(action 0, r = 1)--> end. In s1 only action 0 is
    legal; its Q(s1, 1) starts at 10 by construction and, never taken, is never trained. So
    Q*(s0, 0) = 0.9 * 1 = 0.9, and an unmasked target converges to 0.9 * max(1, 10) = 9.0 instead:
    an overestimate of 8.1. Q(s, a) = W[s, a] (one-hot states); the target is synced every update."""
    agent = make_agent(weights_OA=((0.0, 0.0), (0.0, 10.0)), loss="mse", learning_rate=0.2)
    batch = Batch(
        observations=torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        actions=torch.tensor([0, 0]),
        rewards=torch.tensor([0.0, 1.0]),
        next_observations=torch.tensor([[0.0, 1.0], [0.0, 1.0]]),
        terminated=torch.tensor([0.0, 1.0]),
        discounts=torch.tensor([0.9, 0.9]),
        indices=torch.tensor([0, 1]),
        next_legal=torch.tensor([[True, False], [False, False]]) if masked else None,
    )
    for _ in range(updates):
        agent.update(batch)
        agent.sync_target()
    assert agent.q_network.weights_OA[1, 1].item() == 10.0  # the illegal action's Q never moved
    return agent.q_network.weights_OA[0, 0].item()


def test_dqn_agent_masked_target_does_not_overestimate_through_an_illegal_action():
    assert learned_value_of_start_state(masked=True) == pytest.approx(0.9, abs=0.01)
    assert learned_value_of_start_state(masked=False) == pytest.approx(9.0, abs=0.01)
