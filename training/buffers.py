"""The replay buffer a config asks for: uniform or prioritized, whole observations or stacked frames
stored once each, optionally with a copy on the training device; its memory is stated and checked
against what is available before anything is allocated."""

from __future__ import annotations

from typing import TypedDict

import numpy as np
import torch

from dqn_family.configs import Config, ConfigError
from dqn_family.configs.loading import env_family
from dqn_family.replay import (
    PrioritizedReplayBuffer,
    ReplayBuffer,
    SequenceReplayBuffer,
    available_device_memory_bytes,
    available_memory,
    frame_window_for,
    replay_bytes,
)
from dqn_family.replay.dict_storage import Layout


class _ReplayDimensions(TypedDict):
    capacity: int
    observation_shape: tuple[int, ...]
    observation_dtype: np.dtype | None


class _ReplayOptions(_ReplayDimensions, total=False):
    """The keywords that replay_bytes and both buffer classes take alike; absent ones keep their defaults."""

    stacked_frames: bool
    frame_window: int
    streams: int
    observation_parts: Layout


def build_replay(
    config: Config,
    observation_shape: tuple[int, ...],
    observation_dtype: np.dtype | None,
    seed: int,
    device: torch.device | None = None,
    *,
    state_size: int | None = None,
    action_masks: int | None = None,
    observation_parts: Layout | None = None,
) -> ReplayBuffer | SequenceReplayBuffer:
    """The replay buffer the config asks for, once its memory is known to fit (ConfigError if not);
    with a ``device``, it also keeps a copy there and gathers batches from it. A recurrent config
    (``state_size``: the width of its network's states) gets sequence replay, gathered on the host.
    ``action_masks``: the number of actions when the run acts with action masks (envs.action_masks),
    which replay then keeps, as bits. ``observation_parts`` (key -> (shape, dtype)): dictionary
    observations, each key in arrays of its own (replay.dict_storage; observation_dtype is then None)."""
    if config.recurrent != "off":
        if state_size is None:
            raise ValueError("sequence replay needs the recurrent state's size")  # a bug, not user input
        return build_sequence_replay(
            config, observation_shape, observation_dtype, seed, state_size, action_masks, observation_parts
        )
    common: _ReplayOptions = {
        "capacity": config.buffer_size,
        "observation_shape": observation_shape,
        "observation_dtype": observation_dtype,
    }
    if observation_parts is not None:
        common["observation_parts"] = observation_parts
    elif uses_frame_replay(config, observation_shape):
        common["stacked_frames"] = True
        common["frame_window"] = frame_window_for(
            num_envs=config.num_envs, n_step=config.n_step, stack=observation_shape[0]
        )
        common["streams"] = frame_streams(config)
    needed = replay_bytes(**common, prioritized=config.prioritized, action_masks=action_masks)
    check_replay_memory(config, needed)
    if device is not None:
        check_device_memory(config, needed, device)
    try:
        if config.prioritized:
            return PrioritizedReplayBuffer(
                **common,
                seed=seed,
                alpha=config.priority_alpha,
                epsilon=config.priority_epsilon,
                device=device,
                action_masks=action_masks,
            )
        return ReplayBuffer(**common, seed=seed, device=device, action_masks=action_masks)
    except (MemoryError, torch.OutOfMemoryError) as error:  # a limit the check could not see
        where = f"on {device}" if isinstance(error, torch.OutOfMemoryError) else "in memory"
        raise ConfigError(
            f"buffer_size {config.buffer_size:,} needs {needed / 1e9:.2f} GB of replay memory, which "
            f"could not be allocated {where}; lower --buffer-size"
        ) from None


def build_sequence_replay(
    config: Config,
    observation_shape: tuple[int, ...],
    observation_dtype: np.dtype | None,
    seed: int,
    state_size: int,
    action_masks: int | None = None,
    observation_parts: Layout | None = None,
) -> SequenceReplayBuffer:
    """Sequence replay (replay.sequence) holding buffer_size // sequence_length sequences: buffer_size
    env steps of sequences, overlapping steps counted in each sequence they are in."""
    stacked = uses_frame_replay(config, observation_shape)
    capacity = replay_capacity(config)
    window = frame_window_for(num_envs=1, n_step=1, stack=observation_shape[0]) if stacked else 64
    needed = replay_bytes(
        capacity=capacity * config.sequence_length,
        observation_shape=observation_shape,
        observation_dtype=observation_dtype,
        stacked_frames=stacked,
        frame_window=window,
        spare_frames=capacity * (observation_shape[0] + 2) if stacked else None,
        streams=frame_streams(config),
        observation_parts=observation_parts,
    )
    check_replay_memory(config, needed)
    return SequenceReplayBuffer(
        capacity=capacity,
        sequence_length=config.sequence_length,
        state_size=state_size,
        observation_shape=observation_shape,
        observation_dtype=observation_dtype,
        seed=seed,
        n_step=config.n_step,
        gamma=config.gamma,
        prioritized=config.prioritized,
        alpha=config.priority_alpha,
        epsilon=config.priority_epsilon,
        stacked_frames=stacked,
        frame_window=window,
        streams=frame_streams(config),
        action_masks=action_masks,
        observation_parts=observation_parts,
    )


def replay_capacity(config: Config) -> int:
    """Items the config's replay holds: buffer_size transitions, or buffer_size // sequence_length
    sequences for a recurrent network (buffer_size env steps of sequences)."""
    return config.buffer_size if config.recurrent == "off" else config.buffer_size // config.sequence_length


def frame_streams(config: Config) -> int:
    """Sources of interleaved transitions, each with a frame window of its own: a distributed run's
    actors (each sends its own vector envs' steps in order), or this process's envs."""
    return max(config.actors, 1)


def uses_frame_replay(config: Config, observation_shape: tuple[int, ...]) -> bool:
    """Whether observations are frame stacks [stack, H, W] to store frame by frame."""
    if config.frame_replay == "on" and len(observation_shape) != 3:
        raise ConfigError(
            f"frame_replay on needs observations stacked as [frames, height, width], got shape "
            f"{tuple(observation_shape)}; use frame_replay off or auto"
        )
    return config.frame_replay == "on" or (
        config.frame_replay == "auto" and env_family(config.env_id) == "atari" and len(observation_shape) == 3
    )


def check_replay_memory(config: Config, needed: int) -> None:
    """State the buffer's size; refuse a buffer larger than the memory available now, under the
    tightest limit that applies (free memory, ulimit, cgroup)."""
    found = available_memory()
    available, limit = found if found is not None else (None, "")
    print(
        f"replay buffer: {config.buffer_size:,} transitions, {_size(needed)} ({needed / config.buffer_size:,.0f} "
        f"bytes each)" + ("" if available is None else f"; {_size(available)} of memory available")
    )
    if available is not None and needed > available:
        raise ConfigError(
            f"buffer_size {config.buffer_size:,} needs {needed / 1e9:.2f} GB of replay memory but only "
            f"{available / 1e9:.2f} GB is available (limit: {limit}); lower --buffer-size to at most "
            f"{int(config.buffer_size * available / needed):,}"
        )


def check_device_memory(config: Config, needed: int, device: torch.device) -> None:
    """Refuse a device copy of the buffer larger than the device's free memory."""
    available = available_device_memory_bytes(device)
    print(f"replay copy on {device}" + ("" if available is None else f"; {_size(available)} free there"))
    if available is not None and needed > available:
        raise ConfigError(
            f"buffer_size {config.buffer_size:,} needs {needed / 1e9:.2f} GB on {device} but only "
            f"{available / 1e9:.2f} GB is free there; use --no-device-replay (batches copied from "
            f"the host) or lower --buffer-size"
        )


def _size(nbytes: int) -> str:
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.1f} MB"
