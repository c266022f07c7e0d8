"""Experience replay: storage and sampling of transitions. Imports only numpy and torch.

Parts that compose: ``ReplayBuffer`` (uniform ring storage) or ``PrioritizedReplayBuffer``
(proportional prioritized sampling over a ``SumTree``), fed directly or through an
``NStepAccumulator`` that turns per-env steps into n-step transitions.
"""

from replay.buffer import Batch, ReplayBuffer
from replay.nstep import NStepAccumulator, NStepTransitions
from replay.prioritized import PrioritizedReplayBuffer
from replay.sum_tree import SumTree

__all__ = ["Batch", "NStepAccumulator", "NStepTransitions", "PrioritizedReplayBuffer", "ReplayBuffer", "SumTree"]
