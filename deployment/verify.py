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

A model exported with an action mask input is checked with the env's own masks, collected with the
observations (the greedy actions compared are then the legal argmax of both models).
Observations are played with agents.acting's greedy step and exploration draw, as evaluation plays.
Dictionary observations are collected as a dict of arrays by key and fed to the exported model one
input per key, in the export's key order (``keys``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dqn_family.agents.acting import explore_action, greedy_step
from dqn_family.agents.recurrent import as_recurrent, is_recurrent
from dqn_family.deployment.formats import Runner
from dqn_family.deployment.policy import GreedyPolicy, RecurrentGreedyPolicy
from dqn_family.envs import MASK_KEY, EnvOptions, action_count, check_some_legal, make_env, mask_source
from dqn_family.envs.masks import legal_rows
from dqn_family.replay.observations import (
    Observations,
    as_tensors,
    map_observations,
    observation_count,
    one_batch,
    stack,
    take,
)

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
    q_network: nn.Module,
    env_id: str,
    options: EnvOptions,
    *,
    count: int,
    seed: int,
    epsilon: float = 0.1,
    action_mask: str = "off",
) -> tuple[Observations, np.ndarray, np.ndarray | None]:
    """``count`` observations from episodes played epsilon-greedily by ``q_network`` (eval mode),
    where each episode starts (bool [count]), and with ``action_mask`` (the run's --action-mask) the
    env's mask of each observation (bool [count, A]; else None), which the play respects."""
    recurrent = is_recurrent(q_network)
    env = make_env(env_id, options=options)
    rng = np.random.default_rng(seed)
    collected: list[Observations] = []
    starts: list[bool] = []
    masks: list[np.ndarray] = []
    was_training = q_network.training
    q_network.eval()
    try:
        n_actions = action_count(env.action_space)
        observation, info = env.reset(seed=seed)
        masked = mask_source(env, action_mask, info, env_id)
        episode_start, state = True, None
        while len(collected) < count:
            observation = map_observations(np.asarray, observation)
            legal_1A = None
            if masked:
                legal_1A = legal_rows(np.asarray(info[MASK_KEY])[None], n_actions, env_id)
                check_some_legal(legal_1A, np.zeros(1, dtype=bool), env_id, len(collected))
                masks.append(legal_1A[0])
            if recurrent and episode_start:  # the network steps even when exploring: its state follows the episode
                state = as_recurrent(q_network).initial_state(1).cpu()
            greedy, state = greedy_step(q_network, one_batch(observation), state, legal_1A, device="cpu")
            collected.append(observation)
            starts.append(episode_start)
            explore = rng.random() < epsilon
            action = (
                explore_action(rng, n_actions, None if legal_1A is None else legal_1A[0]) if explore else int(greedy[0])
            )
            observation, _, terminated, truncated, info = env.step(action)
            episode_start = terminated or truncated
            if episode_start:
                observation, info = env.reset()
    finally:
        env.close()
        q_network.train(was_training)
    return stack(collected), np.array(starts), np.stack(masks) if masked else None


def _outside(exported: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """Rows of ``exported`` outside the tolerance around ``reference``, and the largest difference."""
    difference = np.abs(exported.astype(np.float64) - reference)
    rows = int((difference > ATOL + RTOL * np.abs(reference)).reshape(len(reference), -1).any(axis=1).sum())
    return rows, float(difference.max(initial=0.0))


@torch.no_grad()
def compare(
    q_network: nn.Module,
    run_exported: Runner,
    observations: Observations,
    starts: np.ndarray | None = None,
    legal: np.ndarray | None = None,
    keys: Sequence[str] | None = None,
) -> Agreement:
    """Run the torch network and the exported model on the same batches of ``observations`` (with
    their action masks ``legal``, bool [N, A], for a model that takes them); a recurrent network
    step by step through the episodes that begin where ``starts`` is true. Dictionary observations
    (a dict of arrays by key) go to the exported model as one input per key in ``keys`` order."""
    if is_recurrent(q_network):
        return _compare_steps(q_network, run_exported, observations, starts, legal, keys)
    policy = GreedyPolicy(q_network)
    action_mismatches = q_mismatches = 0
    worst = 0.0
    count = observation_count(observations)
    for start in range(0, count, _CHUNK):
        chunk = map_observations(np.ascontiguousarray, take(observations, slice(start, start + _CHUNK)))
        masks = () if legal is None else (np.ascontiguousarray(legal[start : start + _CHUNK]),)
        actions_ref, q_ref = (t.numpy() for t in policy(as_tensors(chunk, "cpu"), *map(torch.from_numpy, masks)))
        inputs = [chunk] if keys is None else [chunk[key] for key in keys]
        actions, q_values = run_exported(*inputs, *masks)
        rows, difference = _outside(q_values, q_ref)
        action_mismatches += int((actions != actions_ref).sum())
        q_mismatches += rows
        worst = max(worst, difference)
    return Agreement(count, action_mismatches, q_mismatches, worst)


def _compare_steps(
    q_network: nn.Module,
    run_exported: Runner,
    observations: np.ndarray,
    starts: np.ndarray | None,
    legal: np.ndarray | None,
    keys: Sequence[str] | None = None,
) -> Agreement:
    policy = RecurrentGreedyPolicy(q_network)
    initial_1S = as_recurrent(q_network).initial_state(1).cpu().float()
    state_ref, state = initial_1S, initial_1S.numpy()
    action_mismatches = q_mismatches = state_mismatches = 0
    worst = 0.0
    count = observation_count(observations)
    for index in range(count):
        if starts is not None and starts[index]:
            state_ref, state = initial_1S, initial_1S.numpy()
        observation = map_observations(np.ascontiguousarray, take(observations, slice(index, index + 1)))
        masks = () if legal is None else (np.ascontiguousarray(legal[index : index + 1]),)
        actions_ref, q_ref, state_ref = policy(as_tensors(observation, "cpu"), state_ref, *map(torch.from_numpy, masks))
        inputs = [observation] if keys is None else [observation[key] for key in keys]
        actions, q_values, state = run_exported(*inputs, state, *masks)
        q_rows, difference = _outside(q_values, q_ref.numpy())
        state_rows, _ = _outside(state, state_ref.numpy())
        action_mismatches += int((actions != actions_ref.numpy()).sum())
        q_mismatches += q_rows
        state_mismatches += state_rows
        worst = max(worst, difference)
    return Agreement(count, action_mismatches, q_mismatches, worst, state_mismatches)
