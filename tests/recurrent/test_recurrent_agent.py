"""agents.recurrent: the recurrent network's unroll and resets, and the learner on hand-built batches
of sequences: burn-in left out of the loss, n-step bootstrap positions, stored vs zero start state,
R2D2's sequence priority, and every head of the family."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dqn_family.agents import RecurrentAgent, make_agent
from dqn_family.agents.dqn import dqn_target
from dqn_family.agents.recurrent import masked_sequence_loss, sequence_priorities
from dqn_family.configs import Config
from dqn_family.replay.sequence import SequenceBatch, sequence_n_step

L, B, OBS = 6, 3, (2,)


def agent_for(**overrides) -> RecurrentAgent:
    values = dict(
        recurrent="lstm",
        recurrent_size=8,
        hidden_sizes=(8,),
        sequence_length=L,
        sequence_overlap=2,
        burn_in=2,
        n_step=2,
    )
    config = Config(**{**values, **overrides})
    agent = make_agent(config, observation_shape=OBS, n_actions=3, device=torch.device("cpu"), seed=0)
    assert isinstance(agent, RecurrentAgent)
    with torch.no_grad():  # a target network that differs from the online one
        for parameter in agent.target_network.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return agent


def batch_for(agent: RecurrentAgent, seed: int = 0, lengths=(L, 4, 1), gamma: float = 0.99) -> SequenceBatch:
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(B, L)).astype(np.float32)
    terminated = np.zeros((B, L), bool)
    terminated[1, lengths[1] - 1] = True
    returns, discounts, done, bootstrap, mask = sequence_n_step(rewards, terminated, np.array(lengths), 2, gamma)
    return SequenceBatch(
        observations=rng.normal(size=(B, L + 1, *OBS)).astype(np.float32),
        actions=rng.integers(0, 3, size=(B, L)),
        rewards=returns,
        discounts=discounts,
        terminated=done,
        bootstrap=bootstrap,
        mask=mask,
        states=rng.normal(size=(B, agent.q_network.state_size)).astype(np.float32),
        indices=np.arange(B),
        weights=np.ones(B, np.float32),
    ).to_torch("cpu")


def test_unroll_resets_the_state_exactly_where_asked():
    agent = agent_for()
    net = agent.q_network
    observations = torch.randn(5, 2, *OBS)
    state = torch.randn(2, net.state_size)
    resets = torch.zeros(5, 2, dtype=torch.bool)
    resets[3, 0] = True  # sub-sequence 0 starts an episode at step 3
    with torch.no_grad():
        q, _ = net.unroll(observations, state, resets)
        first, _ = net.unroll(observations[:3], state)
        second, _ = net.unroll(observations[3:, :1], net.initial_state(1))
        whole, _ = net.unroll(observations, state)
    assert torch.allclose(q[:3], first, atol=1e-6)
    assert torch.allclose(q[3:, 0], second[:, 0], atol=1e-6)
    assert torch.allclose(q[:, 1], whole[:, 1], atol=1e-6)
    assert not torch.allclose(q[3:, 0], whole[3:, 0], atol=1e-4)


def test_step_by_step_equals_unroll():
    net = agent_for().q_network
    observations, state = torch.randn(4, 2, *OBS), torch.randn(2, net.state_size)
    with torch.no_grad():
        unrolled, last = net.unroll(observations, state)
        stepped = []
        for t in range(4):
            q, state = net.step(observations[t], state)
            stepped.append(q)
    assert torch.allclose(torch.stack(stepped), unrolled, atol=1e-6) and torch.allclose(state, last, atol=1e-6)


def test_burn_in_steps_are_left_out_of_the_loss():
    agent = agent_for(burn_in=2)
    batch = batch_for(agent)
    loss_TB, _, _ = agent.loss_terms(batch)
    assert loss_TB.shape == (L - 2, B)
    # Actions and rewards of the burn-in steps change nothing...
    changed = dataclasses.replace(
        batch,
        actions=torch.cat([(batch.actions[:, :2] + 1) % 3, batch.actions[:, 2:]], dim=1),
        rewards=torch.cat([batch.rewards[:, :2] + 5.0, batch.rewards[:, 2:]], dim=1),
    )
    assert torch.equal(agent.loss_terms(changed)[0], loss_TB)
    # ...their observations do (they refresh the state), as does a reward after the burn-in.
    moved = batch.observations.clone()
    moved[:, 0] += 1.0
    assert not torch.allclose(agent.loss_terms(dataclasses.replace(batch, observations=moved))[0], loss_TB)
    later = batch.rewards.clone()
    later[0, 3] += 5.0
    assert not torch.allclose(agent.loss_terms(dataclasses.replace(batch, rewards=later))[0][1, 0], loss_TB[1, 0])


def test_dqn_sequence_loss_matches_a_hand_unroll_per_step():
    agent = agent_for(burn_in=2, double=False, loss="mse")
    batch = batch_for(agent)
    loss_TB, priorities_TB, q_TB = (t.detach() for t in agent.loss_terms(batch))
    with torch.no_grad():
        online, _ = agent.q_network.unroll(batch.observations.transpose(0, 1), batch.states)
        target, _ = agent.target_network.unroll(batch.observations.transpose(0, 1), batch.states)
    for b in range(B):
        for t in range(2, L):
            position = int(batch.bootstrap[b, t])
            expected_target = dqn_target(
                batch.rewards[b, t : t + 1],
                batch.discounts[b, t : t + 1],
                batch.terminated[b, t : t + 1],
                target[position, b : b + 1],
            )
            q = online[t, b, batch.actions[b, t]]
            assert q_TB[t - 2, b] == pytest.approx(float(q), abs=1e-5)
            assert loss_TB[t - 2, b] == pytest.approx(float((expected_target - q) ** 2), abs=1e-4)
            assert priorities_TB[t - 2, b] == pytest.approx(float((expected_target - q).abs()), abs=1e-5)


def test_zero_start_state_ignores_the_stored_state():
    stored, zero = agent_for(), agent_for(stored_state=False)
    zero.learner.load_state_dict(stored.learner.state_dict())
    batch = batch_for(stored)
    zeroed = dataclasses.replace(batch, states=torch.zeros_like(batch.states))
    assert torch.equal(zero.loss_terms(batch)[0], stored.loss_terms(zeroed)[0])
    assert not torch.allclose(stored.loss_terms(batch)[0], stored.loss_terms(zeroed)[0])


def test_sequence_priorities_mix_max_and_mean_of_real_steps():
    priorities = torch.tensor([[1.0, 4.0], [3.0, 100.0], [2.0, 2.0]])  # [T=3, B=2]
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # sequence 1's step 1 is padding
    mixed = sequence_priorities(priorities, mask, 0.9)
    assert mixed.tolist() == pytest.approx([0.9 * 3 + 0.1 * 2, 0.9 * 4 + 0.1 * 3])


def test_masked_sequence_loss_is_the_weighted_mean_over_real_steps():
    loss = torch.tensor([[1.0, 2.0], [3.0, 50.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    assert float(masked_sequence_loss(loss, mask, torch.tensor([1.0, 0.5]))) == pytest.approx((1 + 1 + 3) / 3)


@pytest.mark.parametrize(
    "options",
    [
        dict(algo="dqn", double=True, dueling=True),
        dict(algo="dqn", recurrent="gru", noisy=True),
        dict(algo="c51", num_atoms=11, double=True, dueling=True, noisy=True),
        dict(algo="qrdqn", num_quantiles=8, double=True),
    ],
    ids=["dqn-dueling", "gru-noisy", "c51-rainbow-heads", "qrdqn"],
)
def test_every_head_learns_from_a_sequence_batch(options):
    agent = agent_for(**options)
    batch = batch_for(agent)
    before = [p.detach().clone() for p in agent.q_network.parameters()]
    metrics = agent.update(batch)
    assert metrics["priorities"].shape == (B,) and torch.isfinite(metrics["td_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.q_network.parameters()))
    actions, states = agent.act(np.zeros((2, *OBS), np.float32), agent.initial_state(2), epsilon=0.0)
    assert actions.shape == (2,) and states.shape == (2, agent.q_network.state_size) and states.any()


@pytest.mark.parametrize("options", [dict(algo="dqn"), dict(algo="c51", num_atoms=11)], ids=["dqn", "c51"])
def test_mixed_precision_update_matches_fp32_to_bf16s_precision(options):
    """--recurrent with --precision bf16: the unrolls run under autocast (so the loss is not float32's
    to the bit), and the loss agrees with float32's to well within bf16's 8 significant bits summed
    over a few layers and steps (a few percent)."""
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)  # the same online and perturbed target networks for both
        agent = agent_for(precision=precision, **options)
        losses[precision] = float(agent.update(batch_for(agent))["td_loss"])
    assert losses["bf16"] != losses["fp32"]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)


def test_fp16_update_scales_the_loss_and_steps():
    torch.manual_seed(0)
    agent = agent_for(precision="fp16")
    assert agent.learner.grad_scaler is not None
    before = [p.detach().clone() for p in agent.q_network.parameters()]
    assert torch.isfinite(agent.update(batch_for(agent))["td_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.q_network.parameters()))
