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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dqn_family.deployment.formats import Runner
from dqn_family.deployment.policy import GreedyPolicy
from dqn_family.envs import EnvOptions, action_count, make_env

ATOL, RTOL = 1e-4, 1e-4
_CHUNK = 256


@dataclass(frozen=True)
class Agreement:
    observations: int
    action_mismatches: int
    q_mismatches: int
    worst_q_difference: float  # max |exported - torch| over every Q-value

    @property
    def ok(self) -> bool:
        return self.action_mismatches == 0 and self.q_mismatches == 0

    def describe(self) -> str:
        return (
            f"{self.action_mismatches:,} of {self.observations:,} greedy actions differ, {self.q_mismatches:,} "
            f"Q-value rows outside atol {ATOL:g} + rtol {RTOL:g}; worst Q-value difference "
            f"{self.worst_q_difference:.3g}"
        )


@torch.no_grad()
def collect_observations(
    q_network: nn.Module, env_id: str, options: EnvOptions, *, count: int, seed: int, epsilon: float = 0.1
) -> np.ndarray:
    """``count`` observations from episodes played epsilon-greedily by ``q_network`` (eval mode)."""
    policy = GreedyPolicy(q_network)
    env = make_env(env_id, options=options)
    rng = np.random.default_rng(seed)
    collected: list[np.ndarray] = []
    try:
        n_actions = action_count(env.action_space)
        observation, _ = env.reset(seed=seed)
        while len(collected) < count:
            observation = np.asarray(observation)
            collected.append(observation)
            if rng.random() < epsilon:
                action = int(rng.integers(n_actions))
            else:
                action = int(policy(torch.as_tensor(observation).unsqueeze(0))[0][0])
            observation, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                observation, _ = env.reset()
    finally:
        env.close()
    return np.stack(collected)


@torch.no_grad()
def compare(q_network: nn.Module, run_exported: Runner, observations: np.ndarray) -> Agreement:
    """Run the torch network and the exported model on the same batches of ``observations``."""
    policy = GreedyPolicy(q_network)
    action_mismatches = q_mismatches = 0
    worst = 0.0
    for start in range(0, len(observations), _CHUNK):
        chunk = np.ascontiguousarray(observations[start : start + _CHUNK])
        actions_ref, q_ref = (t.numpy() for t in policy(torch.from_numpy(chunk)))
        actions, q_values = run_exported(chunk)
        difference = np.abs(q_values.astype(np.float64) - q_ref)
        action_mismatches += int((actions != actions_ref).sum())
        q_mismatches += int((difference > ATOL + RTOL * np.abs(q_ref)).any(axis=1).sum())
        worst = max(worst, float(difference.max(initial=0.0)))
    return Agreement(len(observations), action_mismatches, q_mismatches, worst)
