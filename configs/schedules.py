"""Schedules: a value (epsilon, the learning rate, the importance-sampling exponent) as a pure
function of the env step. ``SCHEDULES`` is the registry the config's ``exploration_schedule``
choices are read from. ``crossed`` says how often an every-N-steps event fires when the env-step
counter jumps."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dqn_family.configs.config import Config


def linear_schedule(step: int, *, start: float, end: float, decay_steps: int) -> float:
    """Straight line from ``start`` at step 0 to ``end`` at ``decay_steps``, then flat.

    eps(t) = start + (end - start) * min(1, t / decay_steps)
    """
    if decay_steps <= 0:
        return end
    fraction = min(1.0, step / decay_steps)
    return start + (end - start) * fraction


def exponential_schedule(step: int, *, start: float, end: float, decay_steps: int) -> float:
    """Exponential approach from ``start`` to ``end`` with time constant ``decay_steps``.

    eps(t) = end + (start - end) * exp(-t / decay_steps)
    """
    if decay_steps <= 0:
        return end
    return end + (start - end) * math.exp(-step / decay_steps)


def anneal_end(config: Config) -> int:
    """The env step where the learning rate and the importance-sampling exponent reach their final
    values: ``anneal_steps``, else ``total_steps``. A resume that extends a run keeps it where it was."""
    return config.total_steps if config.anneal_steps is None else config.anneal_steps


def learning_rate_at(config: Config, env_step: int) -> float:
    """The learning rate at ``env_step``: ``learning_rate``, decaying linearly to ``learning_rate_end``
    at :func:`anneal_end` when that is set."""
    if config.learning_rate_end is None:
        return config.learning_rate
    return linear_schedule(
        env_step, start=config.learning_rate, end=config.learning_rate_end, decay_steps=anneal_end(config)
    )


def priority_beta_at(config: Config, env_step: int) -> float:
    """Prioritized replay's importance-sampling exponent at ``env_step``: ``priority_beta_start``
    annealed linearly to 1 at :func:`anneal_end`."""
    return linear_schedule(env_step, start=config.priority_beta_start, end=1.0, decay_steps=anneal_end(config))


def crossed(before: int, after: int, interval: int) -> int:
    """How many multiples of ``interval`` lie in (before, after]: how often an every-N-steps
    event fires when a vector step moves the env-step counter from ``before`` to ``after``."""
    return after // interval - before // interval


SCHEDULES = {"linear": linear_schedule, "exponential": exponential_schedule}
