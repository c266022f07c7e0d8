"""Statistics across seeds, after Agarwal et al. 2021 ("Deep RL at the Edge of the Statistical
Precipice", the rliable library): mean, median and interquartile mean (IQM), each with a 95%
percentile bootstrap confidence interval (``analysis.INTERVAL_NAME``).

IQM is the mean of the middle 50% of scores: ``scipy.stats.trim_mean(scores, 0.25)``, which cuts
25% of the scores from each end (rliable computes it the same way). It is robust to an outlier
seed, like the median, yet uses half of the scores rather than one or two.

The interval comes from ``scipy.stats.bootstrap`` with the percentile method (rliable's default):
resample the scores with replacement ``n_resamples`` times, compute the statistic on each
resample, and take the 2.5th and 97.5th percentiles. :func:`estimate` can also stratify (given
several strata, say one per env, each is resampled on its own, so every resample keeps the same
number of runs per env; scipy does exactly this when given one sample per stratum with
``paired=False``), but the project's tables and figures never pool envs: each (env, algo) group is
one stratum, so their intervals are plain percentile bootstrap intervals over seeds, and are
named so. Such an interval never reaches beyond the scores themselves: for the mean of 2 or 3
scores it is their [min, max] (a resample of n copies of the lowest score has probability 1/n^n:
1/4 or 1/27, above 2.5%), hence the note below ``MIN_RUNS_FOR_INTERVAL`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from dqn_family.analysis import CONFIDENCE

N_RESAMPLES = 10_000


def iqm(scores: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: the mean after cutting 25% of the scores from each end."""
    return stats.trim_mean(scores, 0.25, axis=axis)


def mean(scores: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    return np.mean(scores, axis=axis)


def median(scores: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    return np.median(scores, axis=axis)


STATISTICS: dict[str, Callable[..., np.ndarray | float]] = {"mean": mean, "median": median, "iqm": iqm}


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its confidence interval (None when there are fewer than 2 scores)."""

    value: float
    low: float | None
    high: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "ci_low": self.low, "ci_high": self.high}


def estimate(
    strata: list[np.ndarray],
    statistic: Callable[..., np.ndarray | float],
    *,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """``statistic`` of all scores pooled, with a percentile bootstrap interval (stratified when
    given several strata)."""
    strata = [np.asarray(stratum, dtype=np.float64).ravel() for stratum in strata]
    value = float(statistic(np.concatenate(strata)))
    if any(stratum.size < 2 for stratum in strata):
        return Estimate(value, None, None)  # one score per stratum: resampling cannot vary it

    def pooled(*samples: np.ndarray, axis: int) -> np.ndarray | float:
        return statistic(np.concatenate(samples, axis=axis), axis=axis)

    result = stats.bootstrap(
        tuple(strata),
        pooled,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        paired=False,
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return Estimate(value, float(interval.low), float(interval.high))


def mean_band(
    values_SG: np.ndarray, *, n_resamples: int = 2_000, seed: int = 0, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds at each grid point, and a percentile bootstrap interval of that mean.

    ``values_SG`` has one row per seed (S) and one column per grid point (G), no NaNs. Returns
    (mean_G, low_G, high_G); with one seed the band is the line itself.
    """
    mean_G = values_SG.mean(axis=0)
    if values_SG.shape[0] < 2:
        return mean_G, mean_G.copy(), mean_G.copy()
    result = stats.bootstrap(
        (values_SG,),
        np.mean,
        axis=0,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return mean_G, result.confidence_interval.low, result.confidence_interval.high
