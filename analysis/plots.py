"""Figures: learning curves (one figure per env, one line per algorithm, mean and 95% band across
seeds), the same curves side by side in one figure, and a bar chart of the aggregates.

Figures are built as ``matplotlib.figure.Figure`` objects, never through pyplot, so nothing needs a
display and no global figure state leaks between calls; the functions return them for the caller
(or a test) to inspect and save. Each algorithm keeps its colour in every figure.

All text is literal: env ids, algorithm names and titles come from run directories and the command
line, and a ``$`` in them must not start mathtext (or LaTeX), which fails on most such strings.
Each function builds and saves under ``text.parse_math`` and ``text.usetex`` off.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from dqn_family.analysis import INTERVAL_NAME
from dqn_family.analysis.curves import Curve
from dqn_family.analysis.summary import GroupSummary
from dqn_family.fileio import write_figure

TAG_LABELS = {
    "eval/mean_return": "Evaluation return (sum of rewards per episode)",
    "charts/episodic_return": "Training return (sum of rewards per episode)",
}
STAT_LABELS = {"iqm": "IQM", "mean": "Mean", "median": "Median"}
STEPS_LABEL = "Environment steps"
_LITERAL_TEXT = {"text.parse_math": False, "text.usetex": False}
_Function = TypeVar("_Function", bound=Callable)


def _literal_text(function: _Function) -> _Function:
    """Run ``function`` with mathtext and LaTeX off, so every text it makes (or draws) is literal."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_LITERAL_TEXT):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def algo_colours(algos: list[str]) -> dict[str, str]:
    """A fixed colour per algorithm (in sorted order), shared by every figure."""
    return {algo: f"C{i % 10}" for i, algo in enumerate(sorted(set(algos)))}


def draw_curves(ax: Axes, curves: list[Curve], colours: dict[str, str], ylabel: str) -> None:
    """One line with a shaded band per curve on ``ax`` (all curves of one env)."""
    for curve in curves:
        colour = colours[curve.algo]
        ax.plot(
            curve.steps_G,
            curve.mean_G,
            color=colour,
            linewidth=1.8,
            label=f"{curve.algo} ({curve.seeds} seed{'s' if curve.seeds != 1 else ''})",
        )
        ax.fill_between(curve.steps_G, curve.low_G, curve.high_G, color=colour, alpha=0.2, linewidth=0)
    ax.set_title(curves[0].env_id)
    ax.set_xlabel(STEPS_LABEL)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", frameon=False)


@_literal_text
def plot_learning_curves(
    curves: list[Curve], *, tag: str = "eval/mean_return", title: str | None = None
) -> dict[str, Figure]:
    """One figure per env, keyed by env id."""
    colours = algo_colours([curve.algo for curve in curves])
    figures = {}
    for env_id in sorted({curve.env_id for curve in curves}):
        figure = Figure(figsize=(6.4, 4.4), layout="constrained")
        draw_curves(figure.subplots(), [c for c in curves if c.env_id == env_id], colours, _tag_label(tag))
        figure.suptitle(_heading(title, f"Mean and {INTERVAL_NAME} across seeds"), fontsize="medium")
        figures[env_id] = figure
    return figures


@_literal_text
def plot_curve_grid(curves: list[Curve], *, tag: str = "eval/mean_return", title: str | None = None) -> Figure:
    """Every env's learning curves side by side in one figure."""
    colours = algo_colours([curve.algo for curve in curves])
    env_ids = sorted({curve.env_id for curve in curves})
    figure = Figure(figsize=(5.0 * len(env_ids), 4.2), layout="constrained")
    for ax, env_id in zip(np.atleast_1d(figure.subplots(1, len(env_ids))), env_ids):
        draw_curves(ax, [c for c in curves if c.env_id == env_id], colours, _tag_label(tag))
    figure.suptitle(_heading(title, f"Learning curves: mean and {INTERVAL_NAME} across seeds"), fontsize="medium")
    return figure


@_literal_text
def plot_aggregates(summaries: list[GroupSummary], *, statistic: str = "iqm", title: str | None = None) -> Figure:
    """Per env, one bar per algorithm: ``statistic`` of the final evaluation return with its 95%
    CI as an error bar, and each seed's score as a dot."""
    colours = algo_colours([s.algo for s in summaries])
    env_ids = sorted({s.env_id for s in summaries})
    figure = Figure(figsize=(max(5.0, 3.6 * len(env_ids)), 4.6), layout="constrained")
    jitter = np.random.default_rng(0)  # spreads the seed dots sideways so equal scores stay visible
    for ax, env_id in zip(np.atleast_1d(figure.subplots(1, len(env_ids))), env_ids):
        group = [s for s in summaries if s.env_id == env_id]
        for x, summary in enumerate(group):
            value = summary.estimates[statistic]
            error = (
                None
                if value.low is None or value.high is None
                else [[value.value - value.low], [value.high - value.value]]
            )
            ax.bar(
                x,
                value.value,
                width=0.6,
                yerr=error,
                capsize=6,
                color=colours[summary.algo],
                alpha=0.8,
                label=summary.algo,
            )
            offsets = jitter.uniform(-0.12, 0.12, len(summary.scores))
            ax.scatter(x + offsets, summary.scores, color="black", s=10, zorder=3)
        ax.set_xticks(range(len(group)), [f"{s.algo}\n({len(s.seeds)} seeds)" for s in group])
        ax.set_xlim(-0.75, len(group) - 0.25)
        ax.set_title(env_id)
        ax.set_ylabel(f"Final evaluation return, {STAT_LABELS[statistic]}")
        ax.grid(axis="y", alpha=0.3)
    figure.suptitle(
        _heading(
            title,
            f"{STAT_LABELS[statistic]} of the final evaluation across seeds\n"
            f"error bars: {INTERVAL_NAME}; dots: one seed each",
        ),
        fontsize="medium",
    )
    return figure


@_literal_text
def save_figure(figure: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Write ``out_dir/stem.png`` (150 dpi) and ``out_dir/stem.svg``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    for path in paths:
        write_figure(path, figure, dpi=150)
    return paths


def _heading(title: str | None, description: str) -> str:
    return f"{title}\n{description}" if title else description


def _tag_label(tag: str) -> str:
    return TAG_LABELS.get(tag, tag)
