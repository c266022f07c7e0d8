"""agents.masks: the masked uniform draw and argmax against hand-worked rows, the bootstrap mask of
terminal rows, the check that refuses a state with no legal action, and None changing nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dqn_family.agents.masks import (
    bootstrap_legal,
    check_legal,
    masked_argmax,
    masked_argmax_numpy,
    masked_q,
    uniform_actions,
)
from dqn_family.replay import Batch
from dqn_family.replay.sequence import SequenceBatch

T, F = True, False


def test_uniform_actions_picks_the_floor_u_count_th_legal_action():
    # Legal actions 1 and 3 (count 2): u in [0, 0.5) -> rank 0 -> action 1, u in [0.5, 1) -> rank 1 -> action 3.
    legal_BA = np.array([[F, T, F, T]] * 4)
    actions = uniform_actions(np.array([0.0, 0.49, 0.5, 0.99]), 4, legal_BA)
    assert actions.tolist() == [1, 1, 3, 3]
    assert actions.dtype == np.int64


def test_uniform_actions_splits_evenly_spaced_uniforms_exactly_evenly_among_legal_actions():
    # 3000 uniforms (i + 1/2) / 3000 over legal actions {0, 2, 4}: exactly 1000 ranks fall in each third.
    count = 3000
    uniforms = (np.arange(count) + 0.5) / count
    actions = uniform_actions(uniforms, 5, np.tile(np.array([T, F, T, F, T]), (count, 1)))
    assert np.bincount(actions, minlength=5).tolist() == [1000, 0, 1000, 0, 1000]


def test_uniform_actions_uses_each_rows_own_mask():
    legal_BA = np.array([[T, F, F], [F, F, T], [F, T, T]])
    # row 0: only action 0; row 1: only action 2; row 2: u = 0.7 -> rank floor(1.4) = 1 -> action 2
    assert uniform_actions(np.array([0.9, 0.1, 0.7]), 3, legal_BA).tolist() == [0, 2, 2]


def test_uniform_actions_with_all_legal_mask_equals_unmasked_draw():
    uniforms = np.random.default_rng(0).random(1000)
    unmasked = uniform_actions(uniforms, 6)
    np.testing.assert_array_equal(unmasked, (uniforms * 6).astype(np.int64))  # what act drew before masks
    np.testing.assert_array_equal(uniform_actions(uniforms, 6, np.ones((1000, 6), bool)), unmasked)


def test_uniform_actions_never_leaves_the_legal_set_at_the_top_of_the_unit_interval():
    largest = np.nextafter(1.0, 0.0)
    assert uniform_actions(np.array([largest]), 7, np.array([[F, F, T, F, F, T, F]])).tolist() == [5]


def test_check_legal_names_the_first_row_without_a_legal_action():
    legal_BA = np.array([[T, F], [F, T], [F, F], [F, F]])
    with pytest.raises(ValueError, match="row 2 has no legal action"):
        check_legal(legal_BA, 4, 2)


@pytest.mark.parametrize(
    "legal",
    [np.ones((3, 2), bool), np.ones((2, 3), bool), np.ones((2, 2), np.float32), torch.ones(2, 2, dtype=torch.bool)],
    ids=["wrong-batch", "wrong-actions", "float", "tensor"],
)
def test_check_legal_refuses_a_mask_of_the_wrong_shape_or_dtype(legal):
    with pytest.raises(ValueError, match=r"bool numpy array \[2, 2\]"):
        check_legal(legal, 2, 2)


def test_check_legal_accepts_rows_with_a_legal_action():
    check_legal(np.array([[T, F], [F, T]]), 2, 2)


def test_masked_argmax_numpy_skips_the_highest_illegal_action():
    q_BA = np.array([[1.0, 5.0, 2.0], [3.0, 2.0, 1.0]], dtype=np.float32)
    legal_BA = np.array([[T, F, T], [F, T, T]])
    assert masked_argmax_numpy(q_BA, legal_BA).tolist() == [2, 1]
    assert masked_argmax_numpy(q_BA, None).tolist() == [1, 0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_masked_argmax_skips_the_highest_illegal_action_in_every_dtype(dtype):
    # Row 1: the legal actions sit at fp16's lowest finite value (-65504) and below the illegal one's
    # 0; filling illegal actions with -inf (not the dtype's lowest) keeps them below every legal one.
    q_BA = torch.tensor([[1.0, 5.0, 2.0], [-60000.0, 0.0, -65504.0]], dtype=dtype)
    legal_BA = torch.tensor([[T, F, T], [T, F, T]])
    assert masked_argmax(q_BA, legal_BA).tolist() == [2, 0]


def test_masked_argmax_takes_a_numpy_mask():
    assert masked_argmax(torch.tensor([[1.0, 5.0, 2.0]]), np.array([[T, F, T]])).tolist() == [2]


def test_masked_q_without_mask_is_the_same_tensor():
    q_BA = torch.randn(4, 3)
    assert masked_q(q_BA, None) is q_BA
    assert torch.equal(masked_argmax(q_BA, None), q_BA.argmax(dim=1))


def test_masked_q_sets_only_illegal_actions_to_minus_infinity():
    masked = masked_q(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[T, F, T]]))
    assert masked.tolist() == [[1.0, float("-inf"), 3.0]]


def test_bootstrap_legal_reads_rows_without_a_legal_action_as_all_legal():
    next_legal_BA = torch.tensor([[F, F, F], [T, F, F], [F, T, T]])
    assert bootstrap_legal(next_legal_BA).tolist() == [[T, T, T], [T, F, F], [F, T, T]]
    assert bootstrap_legal(None) is None


def test_batch_to_torch_carries_the_next_states_mask_as_bool():
    batch = Batch(
        observations=np.zeros((2, 1), np.float32),
        actions=np.zeros(2, np.int64),
        rewards=np.zeros(2, np.float32),
        next_observations=np.zeros((2, 1), np.float32),
        terminated=np.zeros(2, np.float32),
        discounts=np.ones(2, np.float32),
        indices=np.arange(2),
        next_legal=np.array([[T, F], [F, T]]),
    ).to_torch("cpu")
    assert batch.next_legal is not None and batch.next_legal.dtype == torch.bool
    assert batch.next_legal.tolist() == [[T, F], [F, T]]


def test_batch_without_a_mask_has_next_legal_none():
    batch = Batch(
        observations=np.zeros((1, 1), np.float32),
        actions=np.zeros(1, np.int64),
        rewards=np.zeros(1, np.float32),
        next_observations=np.zeros((1, 1), np.float32),
        terminated=np.zeros(1, np.float32),
        discounts=np.ones(1, np.float32),
        indices=np.arange(1),
    )
    assert batch.next_legal is None and batch.to_torch("cpu").next_legal is None


def test_sequence_batch_to_torch_carries_each_observations_mask_as_bool():
    legal = np.zeros((1, 3, 2), bool)  # B = 1, L + 1 = 3 positions, A = 2
    legal[0, :, 1] = True
    batch = SequenceBatch(
        observations=np.zeros((1, 3, 1), np.float32),
        actions=np.zeros((1, 2), np.int64),
        rewards=np.zeros((1, 2), np.float32),
        discounts=np.ones((1, 2), np.float32),
        terminated=np.zeros((1, 2), np.float32),
        bootstrap=np.array([[1, 2]]),
        mask=np.ones((1, 2), np.float32),
        states=np.zeros((1, 4), np.float32),
        indices=np.arange(1),
        legal=legal,
    ).to_torch("cpu")
    assert batch.legal is not None and batch.legal.dtype == torch.bool and batch.legal.shape == (1, 3, 2)
