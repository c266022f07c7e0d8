"""Action masks in agents.recurrent: acting over legal actions only (greedy and exploring, from the
learner's own generator), and sequence targets that bootstrap over the legal actions of each step's
bootstrap observation (SequenceBatch.legal, indexed like the observations), finite where a terminal
or padding position has no legal action at all."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dqn_family.agents import RecurrentAgent, make_agent
from dqn_family.agents.dqn import double_dqn_target, dqn_target
from dqn_family.configs import Config
from dqn_family.replay.sequence import SequenceBatch, sequence_n_step

L, B, A, OBS = 6, 3, 3, (2,)


def recurrent_agent(**overrides) -> RecurrentAgent:
    options = dict(
        recurrent="lstm",
        recurrent_size=8,
        hidden_sizes=(8,),
        sequence_length=L,
        sequence_overlap=2,
        burn_in=2,
        n_step=2,
    )
    torch.manual_seed(0)
    agent = make_agent(
        Config(**{**options, **overrides}), observation_shape=OBS, n_actions=A, device=torch.device("cpu"), seed=0
    )
    assert isinstance(agent, RecurrentAgent)
    with torch.no_grad():  # a target network that differs from the online one
        for parameter in agent.target_network.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return agent


def masked_sequence_batch(agent: RecurrentAgent, seed: int = 0) -> SequenceBatch:
    """Sequences of lengths L, 4 (terminated on its last step) and 1, with random masks of at least
    one legal action, except no legal action at the terminal position and on padding."""
    lengths = (L, 4, 1)
    rng = np.random.default_rng(seed)
    terminated = np.zeros((B, L), bool)
    terminated[1, lengths[1] - 1] = True
    returns, discounts, done, bootstrap, mask = sequence_n_step(
        rng.normal(size=(B, L)).astype(np.float32), terminated, np.array(lengths), 2, 0.99
    )
    legal = rng.random((B, L + 1, A)) < 0.5
    legal[np.arange(B)[:, None], np.arange(L + 1), rng.integers(0, A, size=(B, L + 1))] = True
    legal[1, lengths[1] :] = False  # the terminal state, then padding
    legal[2, lengths[2] + 1 :] = False  # padding
    return SequenceBatch(
        observations=rng.normal(size=(B, L + 1, *OBS)).astype(np.float32),
        actions=rng.integers(0, A, size=(B, L)),
        rewards=returns,
        discounts=discounts,
        terminated=done,
        bootstrap=bootstrap,
        mask=mask,
        states=rng.normal(size=(B, agent.q_network.state_size)).astype(np.float32),
        indices=np.arange(B),
        weights=np.ones(B, np.float32),
        legal=legal,
    ).to_torch("cpu")


def step_q(agent: RecurrentAgent, observations: np.ndarray, states: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        q_BA, _ = agent.q_network.eval().step(torch.as_tensor(observations), torch.as_tensor(states))
    return q_BA.numpy()


def test_recurrent_agent_act_greedy_with_mask_skips_each_rows_best_action():
    agent = recurrent_agent()
    observations = np.random.default_rng(1).normal(size=(8, *OBS)).astype(np.float32)
    states = np.random.default_rng(2).normal(size=(8, agent.q_network.state_size)).astype(np.float32)
    q_BA = step_q(agent, observations, states)
    legal = np.ones((8, A), bool)
    legal[np.arange(8), q_BA.argmax(axis=1)] = False  # the best action is illegal in every row
    actions, next_states = agent.act(observations, states, epsilon=0.0, legal=legal)
    np.testing.assert_array_equal(actions, np.where(legal, q_BA, -np.inf).argmax(axis=1))
    _, unmasked_states = recurrent_agent().act(observations, states, epsilon=0.0)
    np.testing.assert_array_equal(next_states, unmasked_states)  # the mask leaves the recurrent state alone


def test_recurrent_agent_act_exploring_with_mask_draws_only_legal_actions_from_the_learners_generator():
    count = 2000
    agent = recurrent_agent()
    legal = np.tile(np.array([True, False, True]), (count, 1))
    actions, _ = agent.act(np.zeros((count, *OBS), np.float32), agent.initial_state(count), 1.0, legal)
    uniforms = np.random.default_rng(0).random((2, count))[1]  # the learner's generator, seed 0
    np.testing.assert_array_equal(actions, np.where(uniforms < 0.5, 0, 2))


def test_recurrent_agent_act_without_mask_is_bit_identical_to_all_legal_mask():
    observations = np.random.default_rng(1).normal(size=(64, *OBS)).astype(np.float32)
    unmasked, masked = recurrent_agent(), recurrent_agent()
    states = unmasked.initial_state(64)
    actions, next_states = unmasked.act(observations, states, 0.3)
    masked_actions, masked_states = masked.act(observations, states, 0.3, legal=np.ones((64, A), bool))
    np.testing.assert_array_equal(masked_actions, actions)
    np.testing.assert_array_equal(masked_states, next_states)
    assert masked.learner.rng.random() == unmasked.learner.rng.random()


def test_recurrent_agent_act_refuses_a_state_with_no_legal_action():
    agent = recurrent_agent()
    legal = np.array([[True, False, False], [False, False, False]])
    with pytest.raises(ValueError, match="row 1 has no legal action"):
        agent.act(np.zeros((2, *OBS), np.float32), agent.initial_state(2), 0.0, legal)


@pytest.mark.parametrize("double", [False, True])
def test_recurrent_sequence_target_maximises_over_the_bootstrap_observations_legal_actions(double):
    agent = recurrent_agent(double=double, loss="mse")
    batch = masked_sequence_batch(agent)
    loss_TB, _, q_TB = (t.detach() for t in agent.loss_terms(batch))
    assert torch.isfinite(loss_TB).all()
    with torch.no_grad():
        online, _ = agent.q_network.unroll(batch.observations.transpose(0, 1), batch.states)
        target, _ = agent.target_network.unroll(batch.observations.transpose(0, 1), batch.states)
    assert batch.legal is not None
    for b in range(B):
        for t in range(2, L):
            position = int(batch.bootstrap[b, t])
            parts = (batch.rewards[b, t : t + 1], batch.discounts[b, t : t + 1], batch.terminated[b, t : t + 1])
            legal = batch.legal[b, position : position + 1]
            if double:
                expected = double_dqn_target(*parts, target[position, b : b + 1], online[position, b : b + 1], legal)
            else:
                expected = dqn_target(*parts, target[position, b : b + 1], legal)
            q = online[t, b, batch.actions[b, t]]
            assert loss_TB[t - 2, b] == pytest.approx(float((expected - q) ** 2), abs=1e-4)
    unmasked_TB = agent.loss_terms(dataclasses.replace(batch, legal=None))[0].detach()
    assert not torch.allclose(unmasked_TB, loss_TB)  # the masks bite


@pytest.mark.parametrize(
    "options",
    [dict(algo="dqn", double=True), dict(algo="c51", num_atoms=11, double=True), dict(algo="qrdqn", num_quantiles=8)],
    ids=["dqn-double", "c51-double", "qrdqn"],
)
def test_recurrent_update_with_masks_and_illegal_terminal_positions_is_finite(options):
    agent = recurrent_agent(**options)
    metrics = agent.update(masked_sequence_batch(agent))
    assert torch.isfinite(metrics["td_loss"]) and torch.isfinite(metrics["priorities"]).all()
    assert all(torch.isfinite(p).all() for p in agent.q_network.parameters())
