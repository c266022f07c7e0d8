"""Uniform experience replay (Lin 1992; Mnih et al. 2015): a preallocated numpy ring buffer.

The buffer stores what a transition really was: ``terminated`` (the MDP ended: do not bootstrap)
and ``truncated`` (a time limit cut the episode: bootstrap from the true final observation, which
is stored as ``next_observation``) are kept apart, and each transition carries the discount to
apply to its bootstrap value. Sampling uses the buffer's own seeded generator.

Observations go through a storage (``replay.storage``): whole arrays by default, or, with
``stacked_frames=True``, ``replay.frames.FrameStackStorage``, which keeps each distinct frame of
stacked pixel observations once (about 8x less memory for 4-frame stacks).

With ``action_masks=n_actions`` each transition also keeps the mask of its next observation, as bits
(``replay.masks``), unpacked into ``Batch.next_legal`` when sampled; without, no mask array exists.

``state_dict`` / ``load_state_dict`` give the contents, write position and generator state as
plain numpy arrays, numbers and dicts, for training checkpoints. With ``device=`` (CUDA training)
batches are gathered from a copy on that device (``replay.device.DeviceMirror``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Generic

import numpy as np
import numpy.typing as npt
import torch

from dqn_family.replay.device import DeviceMirror
from dqn_family.replay.dict_storage import DictStorage, Layout
from dqn_family.replay.frames import FrameStackStorage
from dqn_family.replay.masks import (
    MASK_DTYPE,
    check_mask_bits,
    mask_width,
    pack_legal,
    refuse_mask_bits,
    unpack_legal,
    unpack_legal_torch,
)
from dqn_family.replay.observations import Observations, take
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
class Batch(Generic[ArrayT]):
    """A sampled minibatch. Leading dimension B everywhere; observations keep their stored dtype.

    ``Batch[np.ndarray]`` is gathered on the host, ``Batch[torch.Tensor]`` on a device or made by
    ``to_torch``: what an agent's update takes."""

    # ArrayT [B, *obs_shape], or {key: ArrayT [B, *shape_k]} for observation_parts (replay.observations)
    observations: Observations
    actions: ArrayT  # [B] int64
    rewards: ArrayT  # [B] float32
    next_observations: Observations  # as observations
    terminated: ArrayT  # [B] float32: 1.0 where the episode truly ended
    discounts: ArrayT  # [B] float32: gamma^n used to bootstrap this sample
    # [B] int64 positions in the buffer: numpy even in a batch gathered on a device (the host's
    # priorities are updated with them); tensors after ``to_torch``
    indices: np.ndarray | torch.Tensor
    # [B] float32 importance-sampling weights (all 1.0 for uniform sampling); None when not given.
    # Numpy in a device batch of prioritized replay (computed on the host); tensors after ``to_torch``.
    weights: np.ndarray | torch.Tensor | None = None
    # [B, A] bool: the actions legal in each next observation (action masks), which the target's
    # max and argmax run over (agents/masks.py); None when the env has no mask: all legal.
    next_legal: ArrayT | None = None

    def to_torch(self, device: torch.device | str) -> Batch[torch.Tensor]:
        """The same batch as torch tensors on ``device`` (numpy memory is shared on the CPU).

        A field that is None stays None.
        """
        return Batch(**fields_on_device(self, device))


# The per-transition arrays a ReplayBuffer holds itself, whatever its observation storage.
FIELD_DTYPES: dict[str, np.dtype] = {
    "actions": np.dtype(np.int64),
    "rewards": np.dtype(np.float32),
    "terminated": np.dtype(np.bool_),
    "truncated": np.dtype(np.bool_),
    "discounts": np.dtype(np.float32),
}
# The per-transition arrays in the state_dict of a ReplayBuffer storing whole observations, in order.
TRANSITION_ARRAYS = ("observations", "next_observations", *FIELD_DTYPES)


class ReplayBuffer:
    """Fixed-capacity ring of transitions; the oldest are overwritten once it is full.

    ``stacked_frames=True`` stores observations [stack, *frame_shape] (stack axis first, as from
    FrameStackObservation) frame by frame, each distinct frame once; ``frame_window`` (distinct
    recent frames searched for sharing; use at least num_envs * (n_step + stack + 2)) and
    ``spare_frames`` (frames beyond one per transition, one per episode in the buffer; default
    capacity // 128) size it, see ``replay.frames.frame_count``; ``streams`` is the number of
    sources whose transitions arrive interleaved (a distributed run's actors), each with a frame
    window of its own (``add``'s ``stream``). ``action_masks``: the number of actions, when each
    transition keeps its next observation's action mask (``add``'s ``next_legal``).
    ``observation_parts`` (key -> (shape, dtype), agents.multi_input.replay_layout): dictionary
    observations, each key in arrays of its own (replay.dict_storage), instead of
    ``observation_shape`` and ``observation_dtype``; observations are then dicts of arrays by key.

    Sampling is uniform, or the ``sampler``'s (replay.sampler.ProportionalSampler: in proportion to
    priority, with importance weights; ``sample`` then needs ``beta``).
    """

    def __init__(
        self,
        *,
        capacity: int,
        observation_shape: tuple[int, ...] = (),
        observation_dtype: np.dtype | None = None,
        seed: int,
        stacked_frames: bool = False,
        frame_window: int = 64,
        spare_frames: int | None = None,
        streams: int = 1,
        device: torch.device | str | None = None,
        action_masks: int | None = None,
        sampler: ProportionalSampler | None = None,
        observation_parts: Layout | None = None,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if action_masks is not None and action_masks < 1:
            raise ValueError(f"action_masks must be the number of actions (>= 1), got {action_masks}")
        if (observation_dtype is None) == (observation_parts is None):
            raise ValueError("give observation_shape and observation_dtype, or observation_parts (not both)")
        if observation_parts is not None and stacked_frames:
            raise ValueError("stacked frames are stored for single-array observations, not observation_parts")
        self.capacity = capacity
        self.storage: ObservationStorage = (
            DictStorage(capacity=capacity, layout=observation_parts)
            if observation_parts is not None
            else FrameStackStorage(
                capacity=capacity,
                observation_shape=observation_shape,
                observation_dtype=np.dtype(observation_dtype),
                frame_window=frame_window,
                spare_frames=spare_frames,
                streams=streams,
            )
            if stacked_frames
            else ArrayStorage(
                capacity=capacity, observation_shape=observation_shape, observation_dtype=np.dtype(observation_dtype)
            )
        )
        self.actions = np.zeros(capacity, dtype=FIELD_DTYPES["actions"])
        self.rewards = np.zeros(capacity, dtype=FIELD_DTYPES["rewards"])
        self.terminated = np.zeros(capacity, dtype=FIELD_DTYPES["terminated"])
        self.truncated = np.zeros(capacity, dtype=FIELD_DTYPES["truncated"])
        self.discounts = np.zeros(capacity, dtype=FIELD_DTYPES["discounts"])
        # [capacity, W] uint8: the next observation's legal actions as bits; None without masks.
        self.mask_actions = action_masks
        self.next_legal_bits = (
            None if action_masks is None else np.zeros((capacity, mask_width(action_masks)), dtype=MASK_DTYPE)
        )
        self.position = 0  # next slot to write
        self.size = 0  # slots holding a transition
        self.rng = np.random.default_rng(seed)
        self.sampler = sampler
        # ``device``: batches are gathered from a copy on that device and come back as its tensors.
        self.mirror = None if device is None else self._mirror_on(torch.device(device))

    def _mirror_on(self, device: torch.device) -> DeviceMirror:
        slot_arrays, shared_arrays = self.storage.mirrored_arrays()
        slot_arrays.update({name: getattr(self, name) for name in ("actions", "rewards", "terminated", "discounts")})
        if self.next_legal_bits is not None:
            slot_arrays["next_legal_bits"] = self.next_legal_bits
        return DeviceMirror(slot_arrays=slot_arrays, shared_arrays=shared_arrays, capacity=self.capacity, device=device)

    def __len__(self) -> int:
        return self.size

    @property
    def nbytes(self) -> int:
        """Bytes of all the arrays the buffer allocated (observation storage included)."""
        masks = 0 if self.next_legal_bits is None else self.next_legal_bits.nbytes
        tree = 0 if self.sampler is None else self.sampler.nbytes
        return self.storage.nbytes + sum(getattr(self, name).nbytes for name in FIELD_DTYPES) + masks + tree

    @property
    def observations(self) -> np.ndarray:
        """All observation slots [capacity, *obs_shape]; only when whole observations are stored."""
        return self._whole_observation_storage().observations

    @property
    def next_observations(self) -> np.ndarray:
        """All next-observation slots [capacity, *obs_shape]; only when whole observations are stored."""
        return self._whole_observation_storage().next_observations

    def _whole_observation_storage(self) -> ArrayStorage:
        # An AttributeError, as reading an attribute the storage lacks was before: hasattr() stays False.
        if not isinstance(self.storage, ArrayStorage):
            raise AttributeError(f"{type(self.storage).__name__} stores frames, not whole observations")
        return self.storage

    def add(
        self,
        observations: Observations,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: Observations,
        terminated: np.ndarray,
        truncated: np.ndarray,
        discounts: np.ndarray | float,
        stream: int = 0,
        next_legal: np.ndarray | None = None,
    ) -> None:
        """Append K transitions of ``stream`` at once (arrays with leading dimension K), wrapping around;
        ``next_legal`` (bool [K, A]): the next observations' action masks, given exactly when the
        buffer keeps masks."""
        count = len(actions)
        next_bits = self._mask_bits(next_legal, count)
        if count == 0:
            return
        if count > self.capacity:  # only the newest `capacity` would survive anyway
            keep = slice(count - self.capacity, count)
            observations, actions, rewards = take(observations, keep), actions[keep], rewards[keep]
            next_observations, terminated, truncated = take(next_observations, keep), terminated[keep], truncated[keep]
            discounts = np.broadcast_to(discounts, (count,))[keep]
            next_bits = None if next_bits is None else next_bits[keep]
            count = self.capacity
        slots = self.slots_for(count)
        self.storage.write(slots, observations, next_observations, stream)
        self.actions[slots] = actions
        self.rewards[slots] = rewards
        self.terminated[slots] = terminated
        self.truncated[slots] = truncated
        self.discounts[slots] = discounts
        if self.next_legal_bits is not None and next_bits is not None:  # both or neither (_mask_bits)
            self.next_legal_bits[slots] = next_bits
        self.position = int((self.position + count) % self.capacity)
        self.size = min(self.size + count, self.capacity)
        if self.sampler is not None:  # each new transition at the largest priority so far
            self.sampler.added(np.arange(slots.start, slots.stop) if isinstance(slots, slice) else slots)
        if self.mirror is not None:
            self.mirror.written(self.position, count)

    def _mask_bits(self, next_legal: np.ndarray | None, count: int) -> np.ndarray | None:
        """The bits of ``next_legal`` [count, A]; ValueError unless masks come exactly when the buffer keeps them."""
        if self.mask_actions is None:
            if next_legal is not None:
                raise ValueError("this replay buffer keeps no action masks (build it with action_masks=n_actions)")
            return None
        if next_legal is None:
            raise ValueError("this replay buffer keeps action masks: add needs next_legal")
        bits = pack_legal(next_legal, self.mask_actions)
        if len(bits) != count:
            raise ValueError(f"next_legal has {len(bits)} rows for {count} transitions")
        return bits

    def slots_for(self, count: int) -> slice | np.ndarray:
        """The slots the next ``count`` (<= capacity) transitions go to: a slice unless they wrap
        around (slice writes are several times cheaper than fancy indexing for small batches)."""
        end = self.position + count
        if end <= self.capacity:
            return slice(self.position, end)
        return (self.position + np.arange(count)) % self.capacity

    def sample(self, batch_size: int, beta: float | None = None) -> Batch[np.ndarray] | Batch[torch.Tensor]:
        """Draw ``batch_size`` stored transitions with replacement: uniformly, or by the sampler, in
        proportion to priority with importance weights; ``beta`` in [0, 1] is then the
        importance-correction exponent (1 corrects the bias fully; no default is right for every
        caller, the loop anneals it)."""
        if self.sampler is not None:
            if beta is None:
                raise ValueError("prioritized sampling needs beta, the importance-correction exponent")
            indices, weights = self.sampler.sample(self.size, batch_size, beta, self.rng)
            return dataclasses.replace(self.gather(indices), weights=weights)
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        indices = self.rng.integers(0, self.size, size=batch_size)
        return self.gather(indices)

    def update_priorities(self, indices: npt.ArrayLike, td_errors: npt.ArrayLike) -> None:
        """Set p_i = (|delta_i| + epsilon)^alpha for sampled ``indices`` (call before the next add,
        or a slot overwritten in between would get the old transition's priority). Any array-like
        will do: a batch's indices, numpy or (after ``Batch.to_torch``) a CPU tensor."""
        if self.sampler is None:
            raise ValueError("update_priorities needs a prioritized buffer")
        self.sampler.update(indices, td_errors, self.size)

    def gather(self, indices: np.ndarray) -> Batch[np.ndarray] | Batch[torch.Tensor]:
        """The transitions at ``indices``, with importance weights of 1 (uniform sampling): numpy
        arrays, or tensors on the buffer's device if it has one (``indices`` stay numpy)."""
        if self.mirror is not None:
            return self._gather_on_device(self.mirror, indices)
        observations, next_observations = self.storage.read(indices)
        return Batch(
            observations=observations,
            actions=self.actions[indices],
            rewards=self.rewards[indices],
            next_observations=next_observations,
            terminated=self.terminated[indices].astype(np.float32),
            discounts=self.discounts[indices],
            indices=indices.astype(np.int64),
            weights=np.ones(len(indices), dtype=np.float32),
            next_legal=(
                None
                if self.next_legal_bits is None or self.mask_actions is None
                else unpack_legal(self.next_legal_bits[indices], self.mask_actions)
            ),
        )

    def _gather_on_device(self, mirror: DeviceMirror, indices: np.ndarray) -> Batch[torch.Tensor]:
        mirror.sync(self.storage.take_changed_rows())
        arrays = mirror.arrays
        indices_t = torch.from_numpy(np.asarray(indices, dtype=np.int64)).to(mirror.device)
        observations, next_observations = self.storage.gather(arrays, indices_t)
        return Batch(
            observations=observations,
            actions=arrays["actions"][indices_t],
            rewards=arrays["rewards"][indices_t],
            next_observations=next_observations,
            terminated=arrays["terminated"][indices_t].float(),
            discounts=arrays["discounts"][indices_t],
            indices=np.asarray(indices, dtype=np.int64),
            weights=torch.ones(len(indices), dtype=torch.float32, device=mirror.device),
            next_legal=(
                None
                if self.mask_actions is None
                else unpack_legal_torch(arrays["next_legal_bits"][indices_t], self.mask_actions)
            ),
        )

    # --- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The stored transitions (views of the first ``size`` slots, not copies), the write
        position and the sampling generator's state."""
        arrays = {name: getattr(self, name)[: self.size] for name in FIELD_DTYPES}
        if self.next_legal_bits is not None:
            arrays["next_legal_bits"] = self.next_legal_bits[: self.size]
        return {
            "capacity": self.capacity,
            "size": self.size,
            "position": self.position,
            **self.storage.state_dict(self.size),
            **arrays,
            "rng": self.rng.bit_generator.state,
            **(self.sampler.state_dict() if self.sampler is not None else {}),
        }

    def load_state_dict(self, state: dict, *, n_actions: int | None = None) -> None:
        """Restore ``state_dict()`` of a buffer with the same capacity and observation shape and
        dtype. Everything is checked first: on a mismatch (ValueError) the buffer is unchanged.
        With ``n_actions``, every stored action must be one of them (what the agent will index with);
        rewards must be finite and discounts in [0, 1] whatever the caller."""
        size, position = check_integer(state, "size"), check_integer(state, "position")
        priorities = (
            self.sampler.checked_state(state, size if 0 <= size <= self.capacity else None)
            if self.sampler is not None
            else None
        )
        if check_integer(state, "capacity") != self.capacity:
            raise ValueError(f"replay capacity is {state['capacity']}, this buffer holds {self.capacity}")
        if not (0 <= size <= self.capacity and 0 <= position < self.capacity) or (
            size < self.capacity and position != size
        ):
            raise ValueError(f"replay size {size} and position {position} do not fit capacity {self.capacity}")
        arrays = {name: check_array(state, name, dtype=dtype, shape=(size,)) for name, dtype in FIELD_DTYPES.items()}
        if self.next_legal_bits is None or self.mask_actions is None:
            refuse_mask_bits(state, "next_legal_bits")
        else:
            shape = (size, self.next_legal_bits.shape[1])
            arrays["next_legal_bits"] = check_mask_bits(state, "next_legal_bits", shape, self.mask_actions)
        if n_actions is not None and size and (arrays["actions"].min() < 0 or arrays["actions"].max() >= n_actions):
            raise ValueError(f"replay actions must lie in [0, {n_actions}), the env's actions")
        check_all_in_range(arrays["rewards"], -np.inf, np.inf, "rewards")
        check_all_in_range(arrays["discounts"], -1.0, 1.0, "discounts")  # negative: negamax self-play
        check_generator_state(entry(state, "rng"), "replay rng")  # before anything changes
        self.storage.load_state_dict(state, size)  # checks its part first: raises before changing anything
        for name, array in arrays.items():
            getattr(self, name)[:size] = array  # slots past `size` are never read (next_legal_bits included)
        self.size, self.position = size, position
        self.rng.bit_generator.state = state["rng"]
        if self.sampler is not None and priorities is not None:
            self.sampler.load(priorities)
        if self.mirror is not None:
            self.storage.take_changed_rows()  # the reload below copies everything
            self.mirror.reload()
