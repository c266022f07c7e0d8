"""What a training run needs besides its loop (train.py keeps the loop): the replay buffer a
config asks for, with its memory checked before it is allocated (``training.buffers``); the
metric log that accumulates losses without device syncs and writes TensorBoard scalars
(``training.metrics``); the progress display (``training.progress``). Used by train.py only;
imports configs and replay, never train.py."""

from dqn_family.training.buffers import build_replay, check_device_memory, check_replay_memory, uses_frame_replay
from dqn_family.training.metrics import EpisodeTracker, MetricLog, NonFiniteError
from dqn_family.training.progress import Progress

__all__ = [
    "EpisodeTracker",
    "MetricLog",
    "NonFiniteError",
    "Progress",
    "build_replay",
    "check_device_memory",
    "check_replay_memory",
    "uses_frame_replay",
]
