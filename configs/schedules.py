"""Schedules: a value (epsilon, the learning rate, the importance-sampling exponent) as a pure
function of the env step. ``SCHEDULES`` is the registry the config's ``exploration_schedule``
choices are read from."""

from __future__ import annotations

import math


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


SCHEDULES = {"linear": linear_schedule, "exponential": exponential_schedule}
