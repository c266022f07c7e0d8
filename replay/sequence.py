"""Sequence replay for recurrent Q-networks, after R2D2 (Kapturowski et al. 2019, "Recurrent Experience
Replay in Distributed Reinforcement Learning", section 2.3).

Each sub-env's stream of steps is cut, episode by episode, into sequences of L steps that start every
P = L - overlap steps (consecutive sequences share ``overlap`` steps) and never cross an episode's end
(``SequenceAccumulator``). A sequence is emitted once it has L steps; when an episode ends, the steps
not yet in any emitted sequence go into one more, starting at the earliest start not yet emitted,
and the missing steps are padding (zeros, masked out). With each sequence the recurrent state the
actor had before its first step is stored (zeros at an episode's start), and L + 1 observations:
the last is the observation after its last step (the true final observation at an episode's end).
With action masks, each of the L + 1 observations keeps its legal actions (bits in replay,
``replay.masks``; padding positions have none, which a target reads as all legal).

``SequenceReplayBuffer`` keeps sequences in a ring, their observations in an observation storage
(whole arrays, or ``FrameStackStorage`` for stacked frames) as L transitions each, and samples them
uniformly or in proportion to a priority (a ``SumTree``; the priority a learner gives back for a
sequence is R2D2's eta * max + (1 - eta) * mean of its steps', see agents.recurrent). Targets are
n-step inside a sequence (``sequence_n_step``): step t sums the rewards of steps t .. t+k-1 and
bootstraps from the observation at position t + k, k = min(n, steps left in the sequence), so a
step near the end of a sequence cut mid-episode bootstraps earlier.
Shapes: B = batch, L = sequence length, S = recurrent state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

import numpy as np
import torch

from dqn_family.replay.dict_storage import DictStorage, Layout
from dqn_family.replay.frames import FrameStackStorage
from dqn_family.replay.masks import MASK_DTYPE, check_mask_bits, mask_width, pack_legal, refuse_mask_bits, unpack_legal
from dqn_family.replay.observations import Observations, map_observations, stack, take
from dqn_family.replay.sampler import ProportionalSampler
from dqn_family.replay.storage import (
    ArrayStorage,
    ArrayT,
    ObservationStorage,
    check_all_in_range,
    check_array,
    check_generator_state,
    check_integer,
    entry,
    fields_on_device,
)


@dataclass(frozen=True)
class Sequence:
    """One stored sequence: L + 1 observations, L steps of which the first ``length`` are real."""

    observations: Observations  # [L + 1, *obs_shape] (or {key: [L + 1, *shape_k]}: replay.observations)
    actions: np.ndarray  # [L] int64
    rewards: np.ndarray  # [L] float32
    terminated: np.ndarray  # [L] bool: the episode truly ended on this step
    length: int  # real steps; the rest are padding
    state: np.ndarray  # [S] float32: the actor's recurrent state before the first step
    start: int  # step of the episode the sequence starts at (for tests and debugging)
    legal: np.ndarray | None = None  # [L + 1, A] bool: each observation's legal actions; None without masks


class _EpisodeSteps:
    """One sub-env's steps of the current episode from the earliest sequence start not yet emitted."""

    def __init__(self) -> None:
        self.observations: list[np.ndarray] = []
        self.next_observations: list[np.ndarray] = []
        self.actions: list[int] = []
        self.rewards: list[float] = []
        self.terminated: list[bool] = []
        self.states: list[np.ndarray] = []
        self.legal: list[np.ndarray] = []  # action masks of the observations (empty without masks)
        self.next_legal: list[np.ndarray] = []
        self.first = 0  # episode step of the first kept step
        self.steps = 0  # steps of the episode so far
        self.emitted = 0  # full sequences emitted; the next starts at emitted * period

    def drop_before(self, step: int) -> None:
        cut = step - self.first
        for values in (
            self.observations,
            self.next_observations,
            self.actions,
            self.rewards,
            self.terminated,
            self.states,
            self.legal,
            self.next_legal,
        ):
            del values[:cut]
        self.first = step


class SequenceAccumulator:
    """Per sub-env: steps in, finished sequences out (module docstring)."""

    def __init__(self, num_envs: int, sequence_length: int, overlap: int) -> None:
        if not 0 <= overlap < sequence_length:
            raise ValueError(f"overlap must be in [0, {sequence_length}), got {overlap}")
        self.length, self.period = sequence_length, sequence_length - overlap
        self.envs = [_EpisodeSteps() for _ in range(num_envs)]

    def push(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        states: np.ndarray,
        real: np.ndarray,
        legal: np.ndarray | None = None,
        next_legal: np.ndarray | None = None,
    ) -> list[Sequence]:
        """One vector step: ``states`` [E, S] are the states the actor acted from; sub-envs where
        ``real`` is False (the NEXT_STEP autoreset step) are skipped. ``legal`` and ``next_legal``
        (bool [E, A], both or neither): the action masks of the observations and next observations."""
        finished: list[Sequence] = []
        for i in np.flatnonzero(real):
            env = self.envs[i]
            # copies (a vector env may reuse its arrays); key by key for dictionary observations
            env.observations.append(map_observations(np.array, take(observations, i)))
            env.next_observations.append(map_observations(np.array, take(next_observations, i)))
            env.actions.append(int(actions[i]))
            env.rewards.append(float(rewards[i]))
            env.terminated.append(bool(terminated[i]))
            env.states.append(np.array(states[i], dtype=np.float32))
            if legal is not None and next_legal is not None:
                env.legal.append(np.array(legal[i], dtype=bool))
                env.next_legal.append(np.array(next_legal[i], dtype=bool))
            env.steps += 1
            start = env.emitted * self.period
            if env.steps == start + self.length:  # a full sequence
                finished.append(self._sequence(env, start, env.steps))
                env.emitted += 1
                env.drop_before(env.emitted * self.period)
            if terminated[i] or truncated[i]:
                covered = (env.emitted - 1) * self.period + self.length if env.emitted else 0
                if covered < env.steps:  # steps in no emitted sequence: one more, padded
                    finished.append(self._sequence(env, env.emitted * self.period, env.steps))
                self.envs[i] = _EpisodeSteps()
        return finished

    def _sequence(self, env: _EpisodeSteps, start: int, end: int) -> Sequence:
        """Steps [start, end) of the episode, padded to L."""
        first, last, pad = start - env.first, end - env.first, self.length - (end - start)
        observations = stack([*env.observations[first:last], env.next_observations[last - 1]])
        if pad:
            observations = map_observations(
                lambda part: np.concatenate([part, np.zeros((pad, *part.shape[1:]), part.dtype)]), observations
            )
        legal = None
        if env.legal:  # no legal action at a padding position
            legal = np.stack([*env.legal[first:last], env.next_legal[last - 1]])
            legal = np.pad(legal, ((0, pad), (0, 0))) if pad else legal
        return Sequence(
            observations=observations,
            actions=np.pad(np.asarray(env.actions[first:last], dtype=np.int64), (0, pad)),
            rewards=np.pad(np.asarray(env.rewards[first:last], dtype=np.float32), (0, pad)),
            terminated=np.pad(np.asarray(env.terminated[first:last], dtype=bool), (0, pad)),
            length=end - start,
            state=np.asarray(env.states[first], dtype=np.float32),
            start=start,
            legal=legal,
        )


# n-step targets inside a sequence, for each real step t (k = min(n, length - t)):
#   G_t = sum_{i < k} gamma^i r_{t+i},   bootstrap from position t + k with discount gamma^k,
#   no bootstrap if the episode terminated on step t + k - 1 (only the last real step can).
def sequence_n_step(
    rewards_BL: np.ndarray, terminated_BL: np.ndarray, lengths_B: np.ndarray, n_step: int, gamma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(returns, discounts, terminated as float, bootstrap positions int64, mask as float), each [B, L].
    Padding steps get k = 1, a valid position and mask 0."""
    size, length = rewards_BL.shape
    steps_1L = np.arange(length)[None, :]
    mask_BL = steps_1L < lengths_B[:, None]
    k_BL = np.where(mask_BL, np.minimum(n_step, lengths_B[:, None] - steps_1L), 1)
    returns_BL = np.zeros((size, length), dtype=np.float64)
    rows_B1 = np.arange(size)[:, None]
    for i in range(min(n_step, length)):
        later_BL = np.minimum(steps_1L + i, length - 1)
        returns_BL += np.where(i < k_BL, gamma**i * rewards_BL[rows_B1, later_BL], 0.0)
    last_BL = steps_1L + k_BL - 1
    done_BL = terminated_BL[rows_B1, last_BL] & mask_BL
    return (
        returns_BL.astype(np.float32),
        (gamma**k_BL).astype(np.float32),
        done_BL.astype(np.float32),
        (steps_1L + k_BL).astype(np.int64),
        mask_BL.astype(np.float32),
    )


@dataclass(frozen=True)
class SequenceBatch(Generic[ArrayT]):
    """Sampled sequences with their n-step targets' parts, per step [B, L] unless said otherwise."""

    observations: Observations  # ArrayT [B, L + 1, *obs_shape] in the stored dtype (or one per key)
    actions: ArrayT  # int64
    rewards: ArrayT  # float32: n-step returns
    discounts: ArrayT  # float32: gamma^k of each step's bootstrap
    terminated: ArrayT  # float32: 1.0 where the bootstrap is cut by the episode's end
    bootstrap: ArrayT  # int64: position (0..L) of the observation each step bootstraps from
    mask: ArrayT  # float32: 1.0 on real steps, 0.0 on padding
    states: ArrayT  # [B, S] float32: stored recurrent states
    indices: np.ndarray | torch.Tensor  # [B] int64 sequence slots
    weights: np.ndarray | torch.Tensor | None = None  # [B] float32 importance weights
    # [B, L + 1, A] bool: the actions legal in each observation (action masks), indexed like
    # ``observations``; a step's target maximises over those of position ``bootstrap``. None: all legal.
    legal: ArrayT | None = None

    def to_torch(self, device: torch.device | str) -> SequenceBatch[torch.Tensor]:
        return SequenceBatch(**fields_on_device(self, device))


# The per-sequence arrays a SequenceReplayBuffer holds itself (shapes after the sequence axis: L or S).
SEQUENCE_DTYPES: dict[str, np.dtype] = {
    "actions": np.dtype(np.int64),
    "rewards": np.dtype(np.float32),
    "terminated": np.dtype(np.bool_),
    "lengths": np.dtype(np.int64),
    "states": np.dtype(np.float32),
}


class SequenceReplayBuffer:
    """A ring of ``capacity`` sequences of ``sequence_length`` steps; uniform sampling, or
    proportional to priority (``prioritized``: replay.sampler's ProportionalSampler, per sequence)."""

    def __init__(
        self,
        *,
        capacity: int,
        sequence_length: int,
        state_size: int,
        observation_shape: tuple[int, ...] = (),
        observation_dtype: np.dtype | None = None,
        seed: int,
        n_step: int = 1,
        gamma: float = 0.99,
        prioritized: bool = False,
        alpha: float = 0.6,
        epsilon: float = 1e-6,
        stacked_frames: bool = False,
        frame_window: int = 64,
        streams: int = 1,
        action_masks: int | None = None,
        observation_parts: Layout | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 sequence, got {capacity}")
        if (observation_dtype is None) == (observation_parts is None):
            raise ValueError("give observation_shape and observation_dtype, or observation_parts (not both)")
        self.capacity, self.length, self.n_step, self.gamma = capacity, sequence_length, n_step, gamma
        slots = capacity * sequence_length
        self.storage: ObservationStorage = (
            DictStorage(capacity=slots, layout=observation_parts)
            if observation_parts is not None
            else FrameStackStorage(
                capacity=slots,
                observation_shape=observation_shape,
                observation_dtype=np.dtype(observation_dtype),
                frame_window=frame_window,
                # A sequence of L stacks of S frames holds about L + S distinct frames; zeros pad short ones.
                spare_frames=capacity * (observation_shape[0] + 2),
                streams=streams,
            )
            if stacked_frames
            else ArrayStorage(
                capacity=slots, observation_shape=observation_shape, observation_dtype=np.dtype(observation_dtype)
            )
        )
        steps = (sequence_length,)
        shapes: dict[str, tuple[int, ...]] = {
            "actions": steps,
            "rewards": steps,
            "terminated": steps,
            "lengths": (),
            "states": (state_size,),
        }
        self.arrays = {name: np.zeros((capacity, *shapes[name]), dtype) for name, dtype in SEQUENCE_DTYPES.items()}
        # With masks: "legal_bits" [capacity, L + 1, W] uint8, each observation's legal actions as bits.
        self.mask_actions = action_masks
        if action_masks is not None:
            self.arrays["legal_bits"] = np.zeros((capacity, sequence_length + 1, mask_width(action_masks)), MASK_DTYPE)
        self.position, self.size = 0, 0
        self.rng = np.random.default_rng(seed)
        self.prioritized = prioritized
        self.sampler = (
            ProportionalSampler(capacity, alpha=alpha, epsilon=epsilon, items="sequences") if prioritized else None
        )

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        tree = self.sampler.nbytes if self.sampler is not None else 0
        return self.storage.nbytes + sum(array.nbytes for array in self.arrays.values()) + tree

    def add(self, sequences: list[Sequence], stream: int = 0) -> None:
        """Store sequences (of ``stream``, see FrameStackStorage), oldest overwritten first; each new
        one gets the largest priority so far. Each carries its masks exactly when the buffer keeps them."""
        for sequence in sequences:
            if (sequence.legal is None) != (self.mask_actions is None):
                raise ValueError(
                    "this sequence replay keeps action masks: each sequence needs its legal actions"
                    if sequence.legal is None
                    else "this sequence replay keeps no action masks (build it with action_masks=n_actions)"
                )
            slot, length = self.position, self.length
            self.storage.write(
                slice(slot * length, (slot + 1) * length),
                take(sequence.observations, slice(None, -1)),
                take(sequence.observations, slice(1, None)),
                stream,
            )
            self.arrays["actions"][slot] = sequence.actions
            self.arrays["rewards"][slot] = sequence.rewards
            self.arrays["terminated"][slot] = sequence.terminated
            self.arrays["lengths"][slot] = sequence.length
            self.arrays["states"][slot] = sequence.state
            if self.mask_actions is not None and sequence.legal is not None:
                self.arrays["legal_bits"][slot] = pack_legal(sequence.legal, self.mask_actions, "sequence legal")
            if self.sampler is not None:
                self.sampler.added(np.array([slot]))
            self.position = (slot + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def slots_for(self, count: int) -> np.ndarray:
        """The slots the next ``count`` (<= capacity) sequences go to."""
        return (self.position + np.arange(count)) % self.capacity

    def sample(self, batch_size: int, beta: float = 1.0) -> SequenceBatch[np.ndarray]:
        """``batch_size`` sequences, with replacement: uniformly, or (prioritized) stratified in
        proportion to priority with importance weights (N P(i))^-beta / max."""
        if self.sampler is not None:
            return self.gather(*self.sampler.sample(self.size, batch_size, beta, self.rng))
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        indices = self.rng.integers(0, self.size, size=batch_size)
        return self.gather(indices, np.ones(batch_size, dtype=np.float32))

    def gather(self, indices: np.ndarray, weights: np.ndarray | None = None) -> SequenceBatch[np.ndarray]:
        """The sequences at ``indices`` with their n-step targets' parts."""
        length, size = self.length, len(indices)
        slots = (indices[:, None] * length + np.arange(length)[None, :]).reshape(-1)
        observations, next_observations = self.storage.read(slots)
        observations = map_observations(lambda part: part.reshape(size, length, *part.shape[1:]), observations)
        last = map_observations(lambda part: part.reshape(size, length, *part.shape[1:])[:, -1:], next_observations)
        returns, discounts, terminated, bootstrap, mask = sequence_n_step(
            self.arrays["rewards"][indices],
            self.arrays["terminated"][indices],
            self.arrays["lengths"][indices],
            self.n_step,
            self.gamma,
        )
        return SequenceBatch(
            observations=map_observations(lambda part, end: np.concatenate([part, end], axis=1), observations, last),
            actions=self.arrays["actions"][indices],
            rewards=returns,
            discounts=discounts,
            terminated=terminated,
            bootstrap=bootstrap,
            mask=mask,
            states=self.arrays["states"][indices],
            indices=np.asarray(indices, dtype=np.int64),
            weights=weights,
            legal=None
            if self.mask_actions is None
            else unpack_legal(self.arrays["legal_bits"][indices], self.mask_actions),
        )

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set p_i = (priority_i + epsilon)^alpha for the sampled sequences."""
        if self.sampler is None:
            raise ValueError("update_priorities needs a prioritized buffer")
        self.sampler.update(indices, priorities, self.size)

    # --- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The stored sequences (views), write position, generator and priorities."""
        state = {
            "capacity": self.capacity,
            "sequence_length": self.length,
            "size": self.size,
            "position": self.position,
            **self.storage.state_dict(self.size * self.length),
            **{name: array[: self.size] for name, array in self.arrays.items()},
            "rng": self.rng.bit_generator.state,
        }
        if self.sampler is not None:
            state.update(self.sampler.state_dict())
        return state

    def load_state_dict(self, state: dict, *, n_actions: int | None = None) -> None:
        """Restore ``state_dict()`` of a buffer of the same dimensions; everything is checked first
        (ValueError leaves the buffer unchanged)."""
        size, position = check_integer(state, "size"), check_integer(state, "position")
        if (check_integer(state, "capacity"), check_integer(state, "sequence_length")) != (self.capacity, self.length):
            raise ValueError(
                f"replay holds {state['capacity']} sequences of {state['sequence_length']} steps, this buffer "
                f"{self.capacity} of {self.length}"
            )
        if not (0 <= size <= self.capacity and 0 <= position < self.capacity) or (
            size < self.capacity and position != size
        ):
            raise ValueError(f"replay size {size} and position {position} do not fit capacity {self.capacity}")
        arrays = {
            name: check_array(state, name, dtype=array.dtype, shape=(size, *array.shape[1:]))
            for name, array in self.arrays.items()
            if name != "legal_bits"
        }
        if self.mask_actions is None:
            refuse_mask_bits(state, "legal_bits")
        else:
            shape = (size, *self.arrays["legal_bits"].shape[1:])
            arrays["legal_bits"] = check_mask_bits(state, "legal_bits", shape, self.mask_actions)
        if size and not (arrays["lengths"].min() >= 1 and arrays["lengths"].max() <= self.length):
            raise ValueError(f"replay sequence lengths must lie in [1, {self.length}]")
        if n_actions is not None and size and (arrays["actions"].min() < 0 or arrays["actions"].max() >= n_actions):
            raise ValueError(f"replay actions must lie in [0, {n_actions}), the env's actions")
        check_all_in_range(arrays["rewards"], -np.inf, np.inf, "rewards")
        check_all_in_range(arrays["states"], -np.inf, np.inf, "recurrent states")
        check_generator_state(entry(state, "rng"), "replay rng")
        priorities = self.sampler.checked_state(state, size) if self.sampler is not None else None
        self.storage.load_state_dict(state, size * self.length)  # checks its part first
        for name, array in arrays.items():
            self.arrays[name][:size] = array
        self.size, self.position = size, position
        self.rng.bit_generator.state = state["rng"]
        if self.sampler is not None and priorities is not None:
            self.sampler.load(priorities)
