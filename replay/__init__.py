"""Experience replay: storage and sampling of transitions. Imports only numpy and torch."""

from replay.buffer import Batch, ReplayBuffer

__all__ = ["Batch", "ReplayBuffer"]
