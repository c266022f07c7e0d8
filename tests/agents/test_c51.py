"""C51's categorical projection against distributions worked out by hand, a property test that it
always gives a probability distribution, and the C51 loss for a network that predicts uniform
probabilities (cross-entropy ln K whatever the target; the KL divergence, its replay priority, less
the target's entropy)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dqn_family.agents import C51Agent, MLPQNetwork, categorical_projection, kl_divergence
from dqn_family.replay import Batch

SUPPORT_5 = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])  # v_min 0, v_max 4, dz = 1
UNIFORM_5 = torch.full((1, 5), 0.2)


def project(
    reward: float, discount: float, terminated: float, next_probs_1K: torch.Tensor, support_K: torch.Tensor = SUPPORT_5
) -> torch.Tensor:
    return categorical_projection(
        torch.tensor([reward]), torch.tensor([discount]), torch.tensor([terminated]), next_probs_1K, support_K
    )


def test_categorical_projection_terminal_splits_all_mass_between_atoms_around_reward():
    # Support [-2, -1, 0, 1, 2]; terminated: every atom goes to r = -0.5, halfway between -1 and 0.
    next_probs_1K = torch.tensor([[0.1, 0.2, 0.3, 0.25, 0.15]])
    projected = project(-0.5, 0.99, 1.0, next_probs_1K, support_K=torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]))
    torch.testing.assert_close(projected, torch.tensor([[0.0, 0.5, 0.5, 0.0, 0.0]]))


def test_categorical_projection_terminal_weights_neighbours_by_distance():
    # r = 2.25: b = 2.25, so atom 2 gets 0.75 and atom 3 gets 0.25.
    torch.testing.assert_close(project(2.25, 0.5, 1.0, UNIFORM_5), torch.tensor([[0.0, 0.0, 0.75, 0.25, 0.0]]))


def test_categorical_projection_atom_landing_on_support_point_keeps_all_its_mass():
    # Only atom z = 2 has mass; r + 1 * 2 = 3 is exactly atom 3 (l == u): all of it stays there.
    next_probs_1K = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0]])
    torch.testing.assert_close(project(1.0, 1.0, 0.0, next_probs_1K), torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0]]))


def test_categorical_projection_with_zero_reward_and_unit_discount_is_identity():
    next_probs_1K = torch.tensor([[0.1, 0.2, 0.3, 0.25, 0.15]])
    torch.testing.assert_close(project(0.0, 1.0, 0.0, next_probs_1K), next_probs_1K)


def test_categorical_projection_atoms_above_v_max_clamp_to_last_atom():
    # Tz = 3 + z = [3, 4, 5, 6, 7] -> clamped to [3, 4, 4, 4, 4]: atom 3 keeps p_0, atom 4 the rest.
    next_probs_1K = torch.tensor([[0.1, 0.2, 0.3, 0.25, 0.15]])
    torch.testing.assert_close(project(3.0, 1.0, 0.0, next_probs_1K), torch.tensor([[0.0, 0.0, 0.0, 0.1, 0.9]]))


@pytest.mark.parametrize("reward, expected_atom", [(10.0, 4), (-10.0, 0)])
def test_categorical_projection_far_outside_support_puts_all_mass_on_edge_atom(reward, expected_atom):
    expected = torch.zeros(1, 5)
    expected[0, expected_atom] = 1.0
    torch.testing.assert_close(project(reward, 0.5, 0.0, UNIFORM_5), expected)


def test_categorical_projection_uses_each_samples_discount():
    # Same reward 0.5 and uniform next probabilities, discounts 0.5 and 1:
    #   discount 0.5: Tz = [0.5, 1, 1.5, 2, 2.5] -> [0.1, 0.1 + 0.2 + 0.1, 0.1 + 0.2 + 0.1, 0.1, 0]
    #   discount 1:   Tz = [0.5, 1.5, 2.5, 3.5, 4 (clamped)] -> [0.1, 0.2, 0.2, 0.2, 0.1 + 0.2]
    projected = categorical_projection(
        torch.tensor([0.5, 0.5]), torch.tensor([0.5, 1.0]), torch.tensor([0.0, 0.0]), UNIFORM_5.expand(2, 5), SUPPORT_5
    )
    torch.testing.assert_close(projected, torch.tensor([[0.1, 0.4, 0.4, 0.1, 0.0], [0.1, 0.2, 0.2, 0.2, 0.3]]))


def test_categorical_projection_rows_are_independent_in_a_batch():
    rewards, discounts, terminated = torch.tensor([2.25, 1.0]), torch.tensor([0.5, 1.0]), torch.tensor([1.0, 0.0])
    next_probs_BK = torch.tensor([[0.2] * 5, [0.0, 0.0, 1.0, 0.0, 0.0]])
    projected = categorical_projection(rewards, discounts, terminated, next_probs_BK, SUPPORT_5)
    torch.testing.assert_close(projected, torch.tensor([[0.0, 0.0, 0.75, 0.25, 0.0], [0.0, 0.0, 0.0, 1.0, 0.0]]))


@settings(max_examples=200, deadline=None)
@given(
    num_atoms=st.integers(2, 51),
    v_min=st.floats(-300, 0),
    width=st.floats(0.1, 500),
    reward=st.floats(-1000, 1000),
    discount=st.floats(0, 1),
    terminated=st.sampled_from([0.0, 1.0]),
    logits=st.lists(st.floats(-10, 10), min_size=51, max_size=51),
)
def test_categorical_projection_always_gives_a_probability_distribution(
    num_atoms, v_min, width, reward, discount, terminated, logits
):
    support_K = torch.linspace(v_min, v_min + width, num_atoms)
    next_probs_1K = torch.tensor([logits[:num_atoms]]).softmax(dim=1)
    projected = project(reward, discount, terminated, next_probs_1K, support_K)
    assert (projected >= 0).all()
    assert projected.sum().item() == pytest.approx(1.0, abs=1e-5)


def zero_c51_agent(num_atoms: int) -> C51Agent:
    """A C51 agent whose network outputs all-zero logits: uniform probabilities over [0, 4]."""
    network = MLPQNetwork(
        (2,), 2, hidden_sizes=(4,), output="c51", num_outputs=num_atoms, support=torch.linspace(0.0, 4.0, num_atoms)
    )
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
    return C51Agent(q_network=network, n_actions=2, device=torch.device("cpu"), seed=0, learning_rate=0.01)


def test_c51_agent_loss_of_uniform_prediction_is_log_num_atoms():
    # Cross-entropy -sum_k m_k ln(1/K) = ln K for any target m summing to 1; Q = mean support = 2.
    # Priorities are KL = ln K - entropy(m): sample 0 (r = 1, discount 0.9, uniform next probabilities)
    # projects Tz = [1, 1.9, 2.8, 3.7, 4] onto m = [0, 0.22, 0.22, 0.22, 0.34]; sample 1 (terminal,
    # r = -3 clamped to atom 0) has m = [1, 0, 0, 0, 0], entropy 0.
    batch = Batch(
        observations=torch.ones(2, 2),
        actions=torch.tensor([0, 1]),
        rewards=torch.tensor([1.0, -3.0]),
        next_observations=torch.ones(2, 2),
        terminated=torch.tensor([0.0, 1.0]),
        discounts=torch.tensor([0.9, 0.9]),
        indices=torch.tensor([0, 1]),
    )
    metrics = zero_c51_agent(num_atoms=5).update(batch)
    assert metrics["td_loss"].item() == pytest.approx(math.log(5))
    entropy_0 = -(3 * 0.22 * math.log(0.22) + 0.34 * math.log(0.34))
    torch.testing.assert_close(metrics["priorities"], torch.tensor([math.log(5) - entropy_0, math.log(5)]))
    assert metrics["q_values"].item() == pytest.approx(2.0)


def test_c51_agent_priority_is_kl_divergence_not_cross_entropy():
    # 3 atoms [0, 2, 4], uniform prediction p = 1/3 each; both samples terminal.
    # r = 1 lands halfway between atoms 0 and 2: m = [1/2, 1/2, 0], cross-entropy ln 3,
    #   entropy ln 2, KL = ln 3 - ln 2 = ln 1.5.
    # r = 4 lands on atom 4: m = [0, 0, 1], cross-entropy ln 3, entropy 0, KL = ln 3.
    # The loss stays the cross-entropy (ln 3 for both); only the priorities differ.
    batch = Batch(
        observations=torch.ones(2, 2),
        actions=torch.tensor([0, 1]),
        rewards=torch.tensor([1.0, 4.0]),
        next_observations=torch.ones(2, 2),
        terminated=torch.tensor([1.0, 1.0]),
        discounts=torch.tensor([0.9, 0.9]),
        indices=torch.tensor([0, 1]),
    )
    metrics = zero_c51_agent(num_atoms=3).update(batch)
    assert metrics["td_loss"].item() == pytest.approx(math.log(3))
    torch.testing.assert_close(metrics["priorities"], torch.tensor([math.log(1.5), math.log(3)]))


def test_kl_divergence_of_a_distribution_from_itself_is_zero():
    target_BK = torch.tensor([[0.25, 0.25, 0.5], [0.2, 0.3, 0.5]])
    torch.testing.assert_close(kl_divergence(target_BK, target_BK.log()), torch.zeros(2))


# --- action masks: the greedy next action is the best legal one -------------------------------
# Support [0, 2, 4]. In s', action 0 puts all its mass on atom 0 (Q = 0), action 1 on atom 4
# (Q = 4) but is illegal. r = 0 and discount 1, so the projected target is the chosen action's
# distribution. The prediction for the taken action is p = [1/2, 1/4, 1/4] (Q = 1.5).
INF = float("inf")
NEXT_LOGITS_1AK = torch.tensor([[[0.0, -INF, -INF], [-INF, -INF, 0.0]]])
PREDICTED_LOGITS_1AK = torch.tensor([[[0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]]]).log()


def c51_terms(*, legal: list[bool] | None, double: bool, terminated: float = 0.0, reward: float = 0.0):
    return zero_c51_agent(num_atoms=3).td_terms(
        PREDICTED_LOGITS_1AK,
        torch.tensor([0]),
        torch.tensor([reward]),
        torch.tensor([1.0]),
        torch.tensor([terminated]),
        NEXT_LOGITS_1AK,
        torch.tensor([[0.0, 4.0]]) if double else None,  # Double DQN's online Q(s', ·), same ranking
        None if legal is None else torch.tensor([legal]),
    )


@pytest.mark.parametrize("double", [False, True])
def test_c51_target_with_mask_projects_the_best_legal_actions_distribution(double):
    # Masked: m = [1, 0, 0], cross-entropy -ln 1/2 = ln 2. Unmasked: m = [0, 0, 1], -ln 1/4 = ln 4.
    # m is one atom (entropy 0), so the KL priority equals the cross-entropy.
    loss_B, priorities_B, q_B = c51_terms(legal=[True, False], double=double)
    torch.testing.assert_close(loss_B, torch.tensor([math.log(2)]))
    torch.testing.assert_close(priorities_B, torch.tensor([math.log(2)]))
    torch.testing.assert_close(q_B, torch.tensor([1.5]))
    torch.testing.assert_close(c51_terms(legal=None, double=double)[0], torch.tensor([math.log(4)]))


@pytest.mark.parametrize("double", [False, True])
def test_c51_target_terminal_state_without_legal_action_is_finite(double):
    # Terminal, r = 2: m = [0, 1, 0] whatever the next action; cross-entropy -ln 1/4 = ln 4.
    loss_B, priorities_B, _ = c51_terms(legal=[False, False], double=double, terminated=1.0, reward=2.0)
    torch.testing.assert_close(loss_B, torch.tensor([math.log(4)]))
    assert torch.isfinite(priorities_B).all()
