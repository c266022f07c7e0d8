"""Learning curves across seeds: each seed's logged (env step, value) points interpolated linearly
onto one grid of env steps, then the mean over seeds with a percentile bootstrap confidence band.

The grid spans only the steps every seed covers (from the latest first point to the earliest last
point), so no seed is extrapolated and the band at each step is over all the seeds.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from dqn_family.analysis.runs import Run, run_scalars
from dqn_family.analysis.stats import mean_band
from dqn_family.configs.errors import UserError

GRID_POINTS = 200


@dataclass(frozen=True)
class Curve:
    """One algorithm on one env: mean and band over ``seeds`` at env steps ``steps_G``."""

    env_id: str
    algo: str
    seeds: int
    steps_G: np.ndarray
    mean_G: np.ndarray
    low_G: np.ndarray
    high_G: np.ndarray


def common_grid(series: list[np.ndarray], points: int = GRID_POINTS) -> np.ndarray:
    """``points`` evenly spaced env steps (fewer if the steps are fewer) that all series cover."""
    start, stop = max(steps[0] for steps in series), min(steps[-1] for steps in series)
    if stop < start:
        raise UserError(f"the runs' logged steps do not overlap (one ends at step {stop}, another starts at {start})")
    distinct = len(np.unique(np.concatenate([steps[(steps >= start) & (steps <= stop)] for steps in series])))
    return np.linspace(start, stop, max(1, min(points, distinct)))


def seed_curve(
    scalars_by_seed: list[list[tuple[int, float]]], *, points: int = GRID_POINTS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps_G, mean_G, low_G, high_G) of several seeds' (step, value) lists."""
    arrays = [_mean_per_step(np.asarray(scalars, dtype=np.float64)) for scalars in scalars_by_seed]
    grid_G = common_grid([array[:, 0] for array in arrays], points)
    values_SG = np.stack([np.interp(grid_G, array[:, 0], array[:, 1]) for array in arrays])
    return (grid_G, *mean_band(values_SG, seed=seed))


def _mean_per_step(points_P2: np.ndarray) -> np.ndarray:
    """Rows (step, value) sorted by step, values logged at the same step averaged (several vector
    envs can finish an episode on the same step), as ``np.interp`` needs distinct steps."""
    steps, index = np.unique(points_P2[:, 0], return_inverse=True)
    values = np.bincount(index, weights=points_P2[:, 1]) / np.bincount(index)
    return np.column_stack([steps, values])


def learning_curves(runs: list[Run], tag: str, *, points: int = GRID_POINTS) -> list[Curve]:
    """One Curve per (env, algo) among ``runs``, from each run's ``tag`` scalars; runs that never
    logged ``tag`` are left out (an error if none logged it)."""
    groups: dict[tuple[str, str], list[list[tuple[int, float]]]] = defaultdict(list)
    for run in runs:
        scalars = run_scalars(run, tag)
        if scalars:
            groups[(run.env_id, run.algo)].append(scalars)
    if not groups:
        raise UserError(f"none of the {len(runs)} runs logged the scalar {tag!r}")
    curves = []
    for (env_id, algo), scalars_by_seed in sorted(groups.items()):
        steps_G, mean_G, low_G, high_G = seed_curve(scalars_by_seed, points=points)
        curves.append(
            Curve(
                env_id=env_id,
                algo=algo,
                seeds=len(scalars_by_seed),
                steps_G=steps_G,
                mean_G=mean_G,
                low_G=low_G,
                high_G=high_G,
            )
        )
    return curves
