"""Aggregates of final scores per (env, algo): mean, median and IQM across seeds, each with a 95%
percentile bootstrap interval (see ``analysis.stats``), as a printable table and as JSON-ready
dicts, and a note for each group with too few runs for its interval to mean much.

A run's score is its final evaluation (``analysis.runs.final_score``). Within one env the seeds
are the only stratum; scores of different envs are never pooled, since their scales differ.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from dqn_family.analysis import INTERVAL_NAME, MIN_RUNS_FOR_INTERVAL
from dqn_family.analysis.runs import Run, final_score
from dqn_family.analysis.stats import CONFIDENCE, N_RESAMPLES, STATISTICS, Estimate, estimate


@dataclass(frozen=True)
class GroupSummary:
    env_id: str
    algo: str
    seeds: list[int]
    scores: list[float]
    estimates: dict[str, Estimate]  # by statistic name: mean, median, iqm

    def as_dict(self) -> dict:
        return {
            "env_id": self.env_id,
            "algo": self.algo,
            "seeds": self.seeds,
            "scores": self.scores,
            **{name: value.as_dict() for name, value in self.estimates.items()},
        }


def summarize(
    runs: list[Run], *, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> tuple[list[GroupSummary], list[Run]]:
    """Summaries per (env, algo), sorted, and the runs left out because they have no score."""
    groups: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    unscored = []
    for run in runs:
        score = final_score(run)
        if score is None:
            unscored.append(run)
        else:
            groups[(run.env_id, run.algo)].append((run.seed, score))
    summaries = []
    for (env_id, algo), seed_scores in sorted(groups.items()):
        seed_scores.sort()
        scores = np.array([score for _, score in seed_scores])
        estimates = {
            name: estimate([scores], statistic, n_resamples=n_resamples, seed=seed)
            for name, statistic in STATISTICS.items()
        }
        summaries.append(
            GroupSummary(
                env_id=env_id, algo=algo, seeds=[s for s, _ in seed_scores], scores=scores.tolist(), estimates=estimates
            )
        )
    return summaries, unscored


def few_runs_notes(summaries: list[GroupSummary]) -> list[str]:
    """One line per group whose interval rests on fewer than MIN_RUNS_FOR_INTERVAL runs (a single
    run has no interval, and says so in the table)."""
    return [
        f"{s.env_id} {s.algo} has {len(s.scores)} runs: a {INTERVAL_NAME} from fewer than "
        f"{MIN_RUNS_FOR_INTERVAL} is too narrow to trust (for the mean of 2 or 3 it is the scores' [min, max]); "
        "run more seeds"
        for s in summaries
        if 2 <= len(s.scores) < MIN_RUNS_FOR_INTERVAL
    ]


def format_table(summaries: list[GroupSummary]) -> str:
    """One row per (env, algo): seeds, then each statistic as 'value [low, high]'."""
    header = ["env", "algo", "seeds", *(f"{name} [{CONFIDENCE:.0%} CI]" for name in STATISTICS)]
    rows = [
        [s.env_id, s.algo, str(len(s.seeds)), *(_format_estimate(s.estimates[name]) for name in STATISTICS)]
        for s in summaries
    ]
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)


def _format_estimate(value: Estimate) -> str:
    if value.low is None or value.high is None:
        return f"{value.value:.1f} [-]"
    return f"{value.value:.1f} [{value.low:.1f}, {value.high:.1f}]"
