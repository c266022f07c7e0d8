"""Proportional prioritized experience replay (Schaul et al. 2016; the maths: replay.sampler): a
ReplayBuffer with a ProportionalSampler, the buffer every prioritized config builds."""

from __future__ import annotations

import numpy as np
import torch

from dqn_family.replay.buffer import ReplayBuffer
from dqn_family.replay.dict_storage import Layout
from dqn_family.replay.sampler import ProportionalSampler
from dqn_family.replay.sum_tree import SumTree


class PrioritizedReplayBuffer(ReplayBuffer):
    """A ReplayBuffer that samples in proportion to priority and returns importance weights: its
    sampler is a :class:`ProportionalSampler` (``sample`` then needs ``beta``)."""

    def __init__(
        self,
        *,
        capacity: int,
        observation_shape: tuple[int, ...] = (),
        observation_dtype: np.dtype | None = None,
        seed: int,
        alpha: float = 0.6,
        epsilon: float = 1e-6,
        stacked_frames: bool = False,
        frame_window: int = 64,
        spare_frames: int | None = None,
        streams: int = 1,
        device: torch.device | str | None = None,
        action_masks: int | None = None,
        observation_parts: Layout | None = None,
    ) -> None:
        super().__init__(
            capacity=capacity,
            observation_shape=observation_shape,
            observation_dtype=observation_dtype,
            seed=seed,
            stacked_frames=stacked_frames,
            frame_window=frame_window,
            spare_frames=spare_frames,
            streams=streams,
            device=device,
            action_masks=action_masks,
            observation_parts=observation_parts,
            sampler=ProportionalSampler(capacity, alpha=alpha, epsilon=epsilon, items="transitions"),
        )

    @property
    def tree(self) -> SumTree:
        assert self.sampler is not None
        return self.sampler.tree

    @property
    def max_priority(self) -> float:
        assert self.sampler is not None
        return self.sampler.max_priority
