"""agents/acting.py: the one greedy step (feed-forward, numpy fast path, recurrent; masked or not)
and the single-env exploration draw, which a mask changes only in which action it picks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn_family.agents import MLPQNetwork, as_recurrent, build_recurrent_network, numpy_greedy_policy
from dqn_family.agents.acting import explore_action, greedy_step

OBSERVATIONS = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
LEGAL = np.random.default_rng(1).random((16, 5)) < 0.5
LEGAL[:, 2] = True  # a legal action in each row


def network() -> MLPQNetwork:
    torch.manual_seed(0)
    return MLPQNetwork((3,), 5, hidden_sizes=(8,)).eval()


@pytest.mark.parametrize("numpy_path", [False, True])
@pytest.mark.parametrize("legal", [None, LEGAL])
def test_greedy_step_is_the_argmax_over_legal_actions(numpy_path, legal):
    q_network = network()
    with torch.no_grad():
        q = q_network(torch.from_numpy(OBSERVATIONS)).numpy()
    expected = (q if legal is None else np.where(legal, q, -np.inf)).argmax(axis=1)
    greedy = numpy_greedy_policy(q_network) if numpy_path else None
    actions, state = greedy_step(q_network, OBSERVATIONS, None, legal, device="cpu", numpy_greedy=greedy)
    np.testing.assert_array_equal(actions, expected)
    assert state is None and (legal is None or LEGAL[np.arange(16), actions].all())


def test_greedy_step_recurrent_steps_the_state_and_masks():
    torch.manual_seed(0)
    q_network = build_recurrent_network((3,), 5, core="gru", hidden_size=4, hidden_sizes=(8,), activation="relu").eval()
    state = as_recurrent(q_network).initial_state(16)
    with torch.no_grad():
        q, expected_state = as_recurrent(q_network).step(torch.from_numpy(OBSERVATIONS), state)
    actions, next_state = greedy_step(q_network, OBSERVATIONS, state, LEGAL, device="cpu")
    np.testing.assert_array_equal(actions, np.where(LEGAL, q.numpy(), -np.inf).argmax(axis=1))
    assert torch.equal(next_state, expected_state)


def test_greedy_step_refuses_a_row_without_legal_action():
    legal = LEGAL.copy()
    legal[3] = False
    with pytest.raises(ValueError, match="row 3 has no legal action"):
        greedy_step(network(), OBSERVATIONS, None, legal, device="cpu")


def test_explore_action_with_an_all_true_mask_draws_exactly_the_unmasked_actions():
    unmasked, masked = np.random.default_rng(3), np.random.default_rng(3)
    everything = np.ones(6, dtype=bool)
    for _ in range(50):
        assert explore_action(unmasked, 6) == explore_action(masked, 6, everything)
    assert unmasked.random() == masked.random()  # the generators stay in step


def test_explore_action_draws_each_legal_action_alike_and_never_an_illegal_one():
    rng, legal = np.random.default_rng(0), np.array([False, True, False, True, True, False])
    counts = np.bincount([explore_action(rng, 6, legal) for _ in range(3000)], minlength=6)
    assert (counts[~legal] == 0).all() and abs(counts[legal] - 1000).max() < 100
