"""Schedules against tables worked out by hand: epsilon's, and the learning rate's and the
importance-sampling exponent's, which a resume that extends a run keeps."""

from __future__ import annotations

import dataclasses
import math

import pytest

from dqn_family.configs import Config
from dqn_family.configs.schedules import (
    SCHEDULES,
    anneal_end,
    exponential_schedule,
    learning_rate_at,
    linear_schedule,
    priority_beta_at,
)

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


# --- learning rate and importance-sampling exponent: end at anneal_steps, else total_steps ------------

RUN_400 = Config(total_steps=400, learning_rate=1e-3, learning_rate_end=1e-4, priority_beta_start=0.4)


@pytest.mark.parametrize(
    "step, learning_rate, beta",
    [(0, 1e-3, 0.4), (100, 7.75e-4, 0.55), (200, 5.5e-4, 0.7), (400, 1e-4, 1.0), (600, 1e-4, 1.0)],
)
def test_learning_rate_and_beta_end_at_total_steps_when_anneal_steps_is_none(step, learning_rate, beta):
    # lr(t) = 1e-3 + (1e-4 - 1e-3) * min(1, t / 400); beta(t) = 0.4 + 0.6 * min(1, t / 400)
    assert anneal_end(RUN_400) == 400
    assert learning_rate_at(RUN_400, step) == pytest.approx(learning_rate)
    assert priority_beta_at(RUN_400, step) == pytest.approx(beta)


def test_extended_run_keeps_its_schedules_for_the_steps_it_had_and_their_end_after():
    extended = dataclasses.replace(RUN_400, total_steps=600, anneal_steps=400)  # what a resume records
    assert anneal_end(extended) == 400
    for step in range(0, 401, 25):  # the same values up to the old total ...
        assert learning_rate_at(extended, step) == learning_rate_at(RUN_400, step), step
        assert priority_beta_at(extended, step) == priority_beta_at(RUN_400, step), step
    for step in (401, 500, 600):  # ... and the final ones after it
        assert (learning_rate_at(extended, step), priority_beta_at(extended, step)) == pytest.approx((1e-4, 1.0))
    # Without anneal_steps, the new total would have re-stretched the decay under steps already taken.
    assert learning_rate_at(dataclasses.replace(RUN_400, total_steps=600), 200) != learning_rate_at(RUN_400, 200)
