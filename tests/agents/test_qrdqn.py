"""QR-DQN's maths against hand-computed numbers: the quantile midpoints, the quantile Huber loss
on both sides of kappa and for both signs of the error u = target - quantile, its gradient, and
the agent's loss for a network that predicts all-zero quantiles."""

from __future__ import annotations

import pytest
import torch

from dqn_family.agents import MLPQNetwork, QRAgent, quantile_huber_loss, quantile_midpoints
from dqn_family.replay import Batch


def test_quantile_midpoints_for_four_quantiles():
    torch.testing.assert_close(quantile_midpoints(4), torch.tensor([1 / 8, 3 / 8, 5 / 8, 7 / 8]))


def test_quantile_midpoints_for_one_quantile_is_the_median():
    torch.testing.assert_close(quantile_midpoints(1), torch.tensor([0.5]))


# One quantile at 0 with tau = 0.25, one target u:
#   |u| <= 1: L = u^2 / 2;  |u| > 1: L = |u| - 1/2;  weight tau = 0.25 if u >= 0, 1 - tau = 0.75 if u < 0.
@pytest.mark.parametrize(
    "u, expected",
    [
        (0.5, 0.25 * 0.125),  # inside kappa, target above the quantile
        (-0.5, 0.75 * 0.125),  # inside kappa, target below
        (3.0, 0.25 * 2.5),  # outside kappa, above
        (-3.0, 0.75 * 2.5),  # outside kappa, below
    ],
)
def test_quantile_huber_loss_one_quantile(u, expected):
    loss_B = quantile_huber_loss(torch.tensor([[0.0]]), torch.tensor([[u]]), torch.tensor([0.25]))
    torch.testing.assert_close(loss_B, torch.tensor([expected]))


def test_quantile_huber_loss_two_quantiles_two_targets():
    # theta = [0, 2], tau = [0.25, 0.75], targets [0.5, -1.5]; u_ij = target_j - theta_i.
    #   i = 0: u = [0.5, -1.5]: L = [0.125, 1.0], weights [0.25, 0.75] -> [0.03125, 0.75], mean 0.390625
    #   i = 1: u = [-1.5, -3.5]: L = [1.0, 3.0], weights [0.25, 0.25] -> [0.25, 0.75], mean 0.5
    #   loss = sum over i = 0.890625
    loss_B = quantile_huber_loss(torch.tensor([[0.0, 2.0]]), torch.tensor([[0.5, -1.5]]), torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(loss_B, torch.tensor([0.890625]))


def test_quantile_huber_loss_divides_by_kappa():
    # kappa = 2, tau = 0.25: u = 1 -> (1/2) / 2 * 0.25 = 0.0625;  u = 3 -> 2 (3 - 1) / 2 * 0.25 = 0.5; mean 0.28125
    loss_B = quantile_huber_loss(torch.tensor([[0.0]]), torch.tensor([[1.0, 3.0]]), torch.tensor([0.25]), kappa=2.0)
    torch.testing.assert_close(loss_B, torch.tensor([0.28125]))


def test_quantile_huber_loss_is_one_value_per_sample():
    loss_B = quantile_huber_loss(torch.tensor([[0.0], [0.0]]), torch.tensor([[0.5], [-3.0]]), torch.tensor([0.25]))
    torch.testing.assert_close(loss_B, torch.tensor([0.03125, 1.875]))


@pytest.mark.parametrize("u, expected_gradient", [(3.0, -0.25), (-3.0, 0.75)])
def test_quantile_huber_loss_gradient_outside_kappa_is_tau_weighted_sign(u, expected_gradient):
    # Far from the target the loss is tau |u| (above) or (1 - tau) |u| (below): the quantile moves
    # up with slope tau and down with slope 1 - tau, which is what makes it the tau-quantile.
    theta = torch.tensor([[0.0]], requires_grad=True)
    quantile_huber_loss(theta, torch.tensor([[u]]), torch.tensor([0.25])).sum().backward()
    assert theta.grad.item() == pytest.approx(expected_gradient)


def test_qr_agent_loss_of_zero_quantiles_against_reward_targets():
    # All quantiles 0, so targets are r + discount * 0 = r for every j, and u = r.
    # N = 2 (tau = [0.25, 0.75]); r = 0.5: (0.25 + 0.75) * 0.125 = 0.125; r = -3: (0.75 + 0.25) * 2.5 = 2.5
    network = MLPQNetwork((2,), 2, hidden_sizes=(4,), output="qr", num_outputs=2)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
    agent = QRAgent(q_network=network, n_actions=2, device=torch.device("cpu"), seed=0, learning_rate=0.01)
    batch = Batch(
        observations=torch.ones(2, 2),
        actions=torch.tensor([0, 1]),
        rewards=torch.tensor([0.5, -3.0]),
        next_observations=torch.ones(2, 2),
        terminated=torch.tensor([0.0, 1.0]),
        discounts=torch.tensor([0.9, 0.9]),
        indices=torch.tensor([0, 1]),
    )
    metrics = agent.update(batch)
    torch.testing.assert_close(metrics["priorities"], torch.tensor([0.125, 2.5]))
    assert metrics["td_loss"].item() == pytest.approx((0.125 + 2.5) / 2)
    assert metrics["q_values"].item() == 0.0


# --- action masks: the greedy next action is the best legal one -------------------------------
def qr_terms(*, legal: list[bool] | None, double: bool, terminated: float = 0.0):
    """N = 2 quantiles. In s', action 0's quantiles are [1, 1] (Q = 1), illegal action 1's [5, 5]
    (Q = 5); r = 0, discount 1. The taken action's predicted quantiles are [1, 1]."""
    network = MLPQNetwork((2,), 2, hidden_sizes=(4,), output="qr", num_outputs=2)
    agent = QRAgent(q_network=network, n_actions=2, device=torch.device("cpu"), seed=0, learning_rate=0.01)
    return agent.td_terms(
        torch.tensor([[[1.0, 1.0], [0.0, 0.0]]]),
        torch.tensor([0]),
        torch.tensor([0.0]),
        torch.tensor([1.0]),
        torch.tensor([terminated]),
        torch.tensor([[[1.0, 1.0], [5.0, 5.0]]]),
        torch.tensor([[1.0, 5.0]]) if double else None,  # Double DQN's online Q(s', ·), same ranking
        None if legal is None else torch.tensor([legal]),
    )


@pytest.mark.parametrize("double", [False, True])
def test_qr_target_with_mask_bootstraps_from_best_legal_actions_quantiles(double):
    # Masked: targets [1, 1] = the prediction, loss 0. Unmasked: targets [5, 5], u = 4 > kappa for
    # every pair: (0.25 + 0.75) * (4 - 1/2) = 3.5.
    loss_B, _, q_B = qr_terms(legal=[True, False], double=double)
    torch.testing.assert_close(loss_B, torch.tensor([0.0]))
    torch.testing.assert_close(q_B, torch.tensor([1.0]))
    torch.testing.assert_close(qr_terms(legal=None, double=double)[0], torch.tensor([3.5]))


@pytest.mark.parametrize("double", [False, True])
def test_qr_target_terminal_state_without_legal_action_is_finite(double):
    # Terminal: targets [0, 0], u = -1 <= kappa: (0.75 + 0.25) * 1/2 = 0.5.
    loss_B, _, _ = qr_terms(legal=[False, False], double=double, terminated=1.0)
    torch.testing.assert_close(loss_B, torch.tensor([0.5]))
