"""Experience replay: storage and sampling of transitions. Imports only numpy and torch.

Parts that compose: ``ReplayBuffer`` (uniform ring storage) or ``PrioritizedReplayBuffer``
(proportional prioritized sampling over a ``SumTree``), fed directly or through an
``NStepAccumulator`` that turns per-env steps into n-step transitions. Observations are stored
whole (``ArrayStorage``) or, for stacked pixel frames, each distinct frame once
(``FrameStackStorage``, ``stacked_frames=True``), or, for dictionary observations, key by key in
arrays of each key's dtype (``DictStorage``, ``observation_parts=``; batches of them are dicts of
arrays, handled through ``replay.observations``); ``replay_bytes`` tells the memory a buffer needs.
With ``device=`` a buffer also keeps a copy on the training device and gathers batches there
(``replay.device``). Recurrent Q-networks replay sequences instead (``replay.sequence``, R2D2).
"""

from dqn_family.replay.buffer import Batch, ReplayBuffer
from dqn_family.replay.dict_storage import DictStorage
from dqn_family.replay.frames import FrameStackStorage, frame_window_for
from dqn_family.replay.memory import (
    available_device_memory_bytes,
    available_memory,
    available_memory_bytes,
    replay_bytes,
)
from dqn_family.replay.nstep import NStepAccumulator, NStepTransitions
from dqn_family.replay.prioritized import PrioritizedReplayBuffer
from dqn_family.replay.sequence import Sequence, SequenceAccumulator, SequenceBatch, SequenceReplayBuffer
from dqn_family.replay.storage import ArrayStorage
from dqn_family.replay.sum_tree import SumTree

__all__ = [
    "ArrayStorage",
    "Batch",
    "DictStorage",
    "FrameStackStorage",
    "NStepAccumulator",
    "NStepTransitions",
    "PrioritizedReplayBuffer",
    "ReplayBuffer",
    "Sequence",
    "SequenceAccumulator",
    "SequenceBatch",
    "SequenceReplayBuffer",
    "SumTree",
    "available_device_memory_bytes",
    "available_memory",
    "available_memory_bytes",
    "frame_window_for",
    "replay_bytes",
]
