"""Per-environment n-step transitions (Sutton 1988; used in Rainbow, Hessel et al. 2018).

For each sub-environment the accumulator keeps the last (at most n) steps of the current
episode. A window of n steps becomes one transition

    (s_t, a_t, G_t = sum_{k=0}^{n-1} gamma^k r_{t+k}, s_{t+n}, discount = gamma^n)

and the target is G_t + discount * (1 - terminated) * max_a Q(s_{t+n}, a). When an episode ends
(terminated or truncated) every pending step is emitted with the return of the rewards left in
the episode, k < n of them, the true final observation and discount gamma^k; the flags are those
of the final step, so a truncated tail is still bootstrapped and a terminated one is not. Windows
never cross an episode boundary. Steps marked not ``real`` (Gymnasium's NEXT_STEP autoreset step,
which only resets a sub-env) are ignored. With n = 1 this yields exactly the 1-step transitions.
Observations may be dicts of arrays by key (dictionary observations): each key gets windows of its
own dtype (replay.observations).

With action masks, each transition carries the mask of the observation it bootstraps from,
s_{t+k}: the mask that came with this step's next observation (the true final observation's at an
episode's end), since every transition a step completes bootstraps from that step's next observation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dqn_family.replay.observations import Observations, map_observations, observation_count, put, take


@dataclass(frozen=True)
class NStepTransitions:
    """Completed transitions, leading dimension K (may be 0); field names match ReplayBuffer.add."""

    observations: Observations  # [K, *obs_shape] s_t (or {key: [K, *shape_k]}: replay.observations)
    actions: np.ndarray  # [K] a_t
    rewards: np.ndarray  # [K] float32 discounted return of the k rewards summed
    next_observations: Observations  # [K, *obs_shape] s_{t+k}
    terminated: np.ndarray  # [K] bool, from the last step summed
    truncated: np.ndarray  # [K] bool, from the last step summed
    discounts: np.ndarray  # [K] float32 gamma^k
    next_legal: np.ndarray | None = None  # [K, A] bool: the actions legal in s_{t+k}; None without masks

    def __len__(self) -> int:
        return len(self.actions)

    def as_dict(self) -> dict[str, np.ndarray]:
        """The fields by name, without copying: ``buffer.add(**transitions.as_dict())``."""
        return dict(self.__dict__)


class NStepAccumulator:
    """Turns per-step vector-env data into n-step transitions, one pending window per sub-env.

    Each sub-env's window is a ring of n slots in preallocated arrays [num_envs, n, ...]; one push
    is vectorised over sub-envs. Transitions come out in sub-env order, oldest first.
    """

    def __init__(self, num_envs: int, n_step: int, gamma: float) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if n_step < 1:
            raise ValueError(f"n_step must be >= 1, got {n_step}")
        if not -1.0 <= gamma <= 1.0:  # negative: negamax self-play, the players' rewards alternate in sign
            raise ValueError(f"gamma must lie in [-1, 1], got {gamma}")
        self.num_envs, self.n_step, self.gamma = num_envs, n_step, gamma
        self.start = np.zeros(num_envs, dtype=np.int64)  # ring slot of each sub-env's oldest step
        self.length = np.zeros(num_envs, dtype=np.int64)  # pending steps per sub-env, 0..n-1 between pushes
        self.rewards = np.zeros((num_envs, n_step), dtype=np.float64)
        # [num_envs, n, *obs_shape] (or one such array per key), allocated on first push
        self.observations: Observations | None = None
        self.actions: np.ndarray | None = None  # [num_envs, n]
        # discount_matrix[j, m] = gamma^(m - j) for m >= j: row j sums the rewards from slot j on.
        offsets = np.arange(n_step)[None, :] - np.arange(n_step)[:, None]
        self.discount_matrix = np.where(offsets >= 0, float(gamma) ** np.maximum(offsets, 0), 0.0)

    def push(
        self,
        observations: Observations,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: Observations,
        terminated: np.ndarray,
        truncated: np.ndarray,
        real: np.ndarray,
        next_legal: np.ndarray | None = None,
    ) -> NStepTransitions:
        """Record one vector step (arrays with leading dimension num_envs) and return the
        transitions it completed (possibly none: then len() is 0). ``next_legal`` (bool [num_envs, A]):
        the action masks of ``next_observations``, passed on to the transitions that bootstrap from them."""
        values = (observations, actions, rewards, next_observations, terminated, truncated, real)
        if any(observation_count(value) != self.num_envs for value in values):
            names = ("observations", "actions", "rewards", "next_observations", "terminated", "truncated", "real")
            name, value = next((n, v) for n, v in zip(names, values) if observation_count(v) != self.num_envs)
            raise ValueError(
                f"{name} has leading dimension {observation_count(value)}, expected num_envs={self.num_envs}"
            )
        real = np.asarray(real, dtype=bool)
        done = real & (np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool))
        if self._is_steady(real, done):
            return self._push_steady(observations, actions, rewards, next_observations, next_legal)
        window_observations, window_actions = self._store(observations, actions, rewards, real)

        # A sub-env emits its oldest step when its window is full, or all its steps when its episode ended.
        emitting = np.flatnonzero(done | (real & (self.length == self.n_step)))
        counts = np.where(done[emitting], self.length[emitting], 1)
        envs = np.repeat(emitting, counts)  # one entry per transition, sub-env order
        ages = np.arange(len(envs)) - np.repeat(np.cumsum(counts) - counts, counts)  # 0 = oldest
        slots = (self.start[envs] + ages) % self.n_step

        # Rewards of each emitting sub-env in time order, 0 past its last step; row j of
        # discount_matrix turns them into the return from step j to the end of the window.
        ordered = (self.start[emitting, None] + np.arange(self.n_step)) % self.n_step
        rewards_EN = np.where(
            np.arange(self.n_step) < self.length[emitting, None], self.rewards[emitting[:, None], ordered], 0.0
        )
        returns_EN = rewards_EN @ self.discount_matrix.T
        rows = np.repeat(np.arange(len(emitting)), counts)
        transitions = NStepTransitions(
            observations=take(window_observations, (envs, slots)),
            actions=window_actions[envs, slots],
            rewards=returns_EN[rows, ages].astype(np.float32),
            next_observations=take(next_observations, envs),
            terminated=np.asarray(terminated, dtype=bool)[envs],
            truncated=np.asarray(truncated, dtype=bool)[envs],
            discounts=(float(self.gamma) ** (self.length[envs] - ages)).astype(np.float32),
            next_legal=None if next_legal is None else np.asarray(next_legal)[envs],
        )

        # A full window slides by one step; an ended episode empties its window.
        full = emitting[~done[emitting]]
        self.start[full] = (self.start[full] + 1) % self.n_step
        self.length[full] -= 1
        self.start[done], self.length[done] = 0, 0
        return transitions

    def _is_steady(self, real: np.ndarray, done: np.ndarray) -> bool:
        """The common step: every sub-env real, none ending, each with n - 1 steps pending."""
        return (
            self.observations is not None
            and bool(real.all())
            and not done.any()
            and bool((self.length == self.n_step - 1).all())
        )

    def _push_steady(
        self,
        observations: Observations,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: Observations,
        next_legal: np.ndarray | None,
    ) -> NStepTransitions:
        """push() for a steady step, in a third of its numpy calls and with the same results: each
        sub-env stores the step, emits its oldest (a full window of n rewards) and slides by one."""
        # _is_steady, the only way here, found the windows allocated (the first push allocates both).
        assert self.observations is not None and self.actions is not None
        envs, n = np.arange(self.num_envs), self.n_step
        newest = (self.start + n - 1) % n
        put(self.observations, (envs, newest), observations)
        self.actions[envs, newest] = actions
        self.rewards[envs, newest] = rewards
        oldest = self.start
        ordered = (oldest[:, None] + np.arange(n)) % n
        returns_EN = self.rewards[envs[:, None], ordered] @ self.discount_matrix.T
        transitions = NStepTransitions(
            observations=take(self.observations, (envs, oldest)),
            actions=self.actions[envs, oldest],
            rewards=returns_EN[:, 0].astype(np.float32),
            next_observations=map_observations(np.asarray, next_observations),
            terminated=np.zeros(self.num_envs, dtype=bool),
            truncated=np.zeros(self.num_envs, dtype=bool),
            discounts=np.full(self.num_envs, float(self.gamma) ** n, dtype=np.float32),
            next_legal=None if next_legal is None else np.asarray(next_legal),
        )
        self.start = (oldest + 1) % n
        return transitions

    def _store(
        self, observations: Observations, actions: np.ndarray, rewards: np.ndarray, real: np.ndarray
    ) -> tuple[Observations, np.ndarray]:
        """Store the real sub-envs' step in their windows; returns the (observations, actions) windows."""
        observations, actions = map_observations(np.asarray, observations), np.asarray(actions)
        if self.observations is None or self.actions is None:  # the first push allocates both
            self.observations = map_observations(
                lambda part: np.zeros((self.num_envs, self.n_step, *part.shape[1:]), part.dtype), observations
            )
            self.actions = np.zeros((self.num_envs, self.n_step), actions.dtype)
        envs = np.flatnonzero(real)
        slots = (self.start[envs] + self.length[envs]) % self.n_step
        put(self.observations, (envs, slots), take(observations, envs))
        self.actions[envs, slots] = actions[envs]
        self.rewards[envs, slots] = np.asarray(rewards, dtype=np.float64)[envs]
        self.length[envs] += 1
        return self.observations, self.actions
