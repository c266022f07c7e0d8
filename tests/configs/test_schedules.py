"""Epsilon schedules against a table worked out by hand."""

from __future__ import annotations

import math

import pytest

from dqn_family.configs.schedules import SCHEDULES, exponential_schedule, linear_schedule

# step, expected epsilon for start=1.0, end=0.1, decay_steps=10
LINEAR_TABLE = [
    (0, 1.0),
    (1, 0.91),
    (5, 0.55),
    (9, 0.19),
    (10, 0.1),  # reaches the end exactly at decay_steps
    (11, 0.1),  # and stays there
    (1_000_000, 0.1),
]

# eps(t) = 0.1 + 0.9 * exp(-t / 10)
EXPONENTIAL_TABLE = [
    (0, 1.0),
    (10, 0.1 + 0.9 / math.e),  # 0.43109...
    (20, 0.1 + 0.9 / math.e**2),  # 0.22180...
    (5, 0.1 + 0.9 * math.exp(-0.5)),  # 0.64588...
    (1_000, 0.1),  # 0.9 * e^-100 is below any tolerance
]


@pytest.mark.parametrize("step, expected", LINEAR_TABLE)
def test_linear_schedule_matches_table(step, expected):
    assert linear_schedule(step, start=1.0, end=0.1, decay_steps=10) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("step, expected", EXPONENTIAL_TABLE)
def test_exponential_schedule_matches_table(step, expected):
    assert exponential_schedule(step, start=1.0, end=0.1, decay_steps=10) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("schedule", [linear_schedule, exponential_schedule])
@pytest.mark.parametrize("step", [0, 1, 100])
def test_schedule_with_zero_decay_steps_is_end_from_step_zero(schedule, step):
    assert schedule(step, start=1.0, end=0.05, decay_steps=0) == 0.05


def test_linear_schedule_can_increase():
    # start < end is a straight line too (used e.g. to anneal a coefficient upwards).
    assert linear_schedule(5, start=0.4, end=1.0, decay_steps=10) == pytest.approx(0.7)


def test_schedules_registry_finds_each_schedule_by_config_name():
    assert SCHEDULES["linear"] is linear_schedule
    assert SCHEDULES["exponential"] is exponential_schedule
