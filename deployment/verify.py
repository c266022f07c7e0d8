"""Checking an exported model against the torch network it came from.

Observations come from the env itself, played epsilon-greedily by the torch network (so they are
the states the policy visits, with some variety). Both models see the same batches; the check
passes when every greedy action is identical and every Q-value agrees within
``|exported - torch| <= ATOL + RTOL * |torch|``. For float32 graphs the two differ only in the
order of floating-point operations (fused or reordered kernels), a few ulps per layer: measured
here at most 5.3e-5 on a trained CartPole DQN's Q-values of ~50-90 (~1e-6 relative) and 3e-5 on
C51's expected values, so the tolerance leaves a margin of 100x or more while still catching a
wrong layer, a missing input scale or a noisy layer exported with a noise sample (differences of
1e-2 and more).

A recurrent network is checked the way it is played: each of its episodes step by step from the
initial state, the torch network feeding back its own next state and the exported model its own,
so that the check also covers the state path (the states are compared with the same tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dqn_family.agents.recurrent import as_recurrent, is_recurrent
from dqn_family.deployment.formats import Runner
from dqn_family.deployment.policy import GreedyPolicy, RecurrentGreedyPolicy, greedy_policy
from dqn_family.envs import EnvOptions, action_count, make_env

ATOL, RTOL = 1e-4, 1e-4
_CHUNK = 256


@dataclass(frozen=True)
class Agreement:
    observations: int
    action_mismatches: int
    q_mismatches: int
    worst_q_difference: float  # max |exported - torch| over every Q-value
    state_mismatches: int | None = None  # recurrent networks: next-state rows outside the tolerance

    @property
    def ok(self) -> bool:
        return self.action_mismatches == 0 and self.q_mismatches == 0 and not self.state_mismatches

    def describe(self) -> str:
        states = "" if self.state_mismatches is None else f", {self.state_mismatches:,} next-state rows"
        return (
            f"{self.action_mismatches:,} of {self.observations:,} greedy actions differ, {self.q_mismatches:,} "
            f"Q-value rows{states} outside atol {ATOL:g} + rtol {RTOL:g}; worst Q-value difference "
            f"{self.worst_q_difference:.3g}"
        )


@torch.no_grad()
def collect_observations(
    q_network: nn.Module, env_id: str, options: EnvOptions, *, count: int, seed: int, epsilon: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` observations from episodes played epsilon-greedily by ``q_network`` (eval mode),
    and where each episode starts (bool [count])."""
    policy = greedy_policy(q_network)
    recurrent = is_recurrent(q_network)
    env = make_env(env_id, options=options)
    rng = np.random.default_rng(seed)
    collected: list[np.ndarray] = []
    starts: list[bool] = []
    try:
        n_actions = action_count(env.action_space)
        observation, _ = env.reset(seed=seed)
        episode_start, state = True, torch.zeros(0)
        while len(collected) < count:
            observation = np.asarray(observation)
            obs_1 = torch.as_tensor(observation).unsqueeze(0)
            if recurrent:  # the network steps even when exploring: its state follows the episode
                state = as_recurrent(q_network).initial_state(1).cpu() if episode_start else state
                greedy, _, state = policy(obs_1, state)
            else:
                greedy = policy(obs_1)[0]
            collected.append(observation)
            starts.append(episode_start)
            action = int(rng.integers(n_actions)) if rng.random() < epsilon else int(greedy[0])
            observation, _, terminated, truncated, _ = env.step(action)
            episode_start = terminated or truncated
            if episode_start:
                observation, _ = env.reset()
    finally:
        env.close()
    return np.stack(collected), np.array(starts)


def _outside(exported: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """Rows of ``exported`` outside the tolerance around ``reference``, and the largest difference."""
    difference = np.abs(exported.astype(np.float64) - reference)
    rows = int((difference > ATOL + RTOL * np.abs(reference)).reshape(len(reference), -1).any(axis=1).sum())
    return rows, float(difference.max(initial=0.0))


@torch.no_grad()
def compare(
    q_network: nn.Module, run_exported: Runner, observations: np.ndarray, starts: np.ndarray | None = None
) -> Agreement:
    """Run the torch network and the exported model on the same batches of ``observations``; a
    recurrent network step by step through the episodes that begin where ``starts`` is true."""
    if is_recurrent(q_network):
        return _compare_steps(q_network, run_exported, observations, starts)
    policy = GreedyPolicy(q_network)
    action_mismatches = q_mismatches = 0
    worst = 0.0
    for start in range(0, len(observations), _CHUNK):
        chunk = np.ascontiguousarray(observations[start : start + _CHUNK])
        actions_ref, q_ref = (t.numpy() for t in policy(torch.from_numpy(chunk)))
        actions, q_values = run_exported(chunk)
        rows, difference = _outside(q_values, q_ref)
        action_mismatches += int((actions != actions_ref).sum())
        q_mismatches += rows
        worst = max(worst, difference)
    return Agreement(len(observations), action_mismatches, q_mismatches, worst)


def _compare_steps(
    q_network: nn.Module, run_exported: Runner, observations: np.ndarray, starts: np.ndarray | None
) -> Agreement:
    policy = RecurrentGreedyPolicy(q_network)
    initial_1S = as_recurrent(q_network).initial_state(1).cpu().float()
    state_ref, state = initial_1S, initial_1S.numpy()
    action_mismatches = q_mismatches = state_mismatches = 0
    worst = 0.0
    for index in range(len(observations)):
        if starts is not None and starts[index]:
            state_ref, state = initial_1S, initial_1S.numpy()
        observation = np.ascontiguousarray(observations[index : index + 1])
        actions_ref, q_ref, state_ref = policy(torch.from_numpy(observation), state_ref)
        actions, q_values, state = run_exported(observation, state)
        q_rows, difference = _outside(q_values, q_ref.numpy())
        state_rows, _ = _outside(state, state_ref.numpy())
        action_mismatches += int((actions != actions_ref.numpy()).sum())
        q_mismatches += q_rows
        state_mismatches += state_rows
        worst = max(worst, difference)
    return Agreement(len(observations), action_mismatches, q_mismatches, worst, state_mismatches)
