"""Plot runs: ``python plot.py RUN_DIR_OR_ROOT_OR_RESULTS_JSON... --out DIR [--name NAME] [--tag TAG] [--title TEXT]``.

Reads the runs' TensorBoard logs and writes, as PNG and SVG in ``--out``:

- ``NAME_curves_<env>``: learning curves of that env, env steps on the x-axis, one line per
  algorithm: the mean across seeds (interpolated to a common step grid) with a 95% percentile
  bootstrap band;
- ``NAME_curves``: the same, every env side by side;
- ``NAME_aggregates``: per env, the IQM of the final evaluation across seeds with its 95%
  percentile bootstrap CI (as ``aggregate.py`` computes it; a note on stderr for a group of fewer
  than 5 runs).

Needs the ``plots`` extra (matplotlib, scipy).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from dqn_family.analysis import missing_plots_extra
from dqn_family.configs import UserError, env_file_name, make_parser, report_user_errors


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("plot.py", "Learning curves and aggregate bar charts of runs, as PNG and SVG.")
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="RUN_DIR",
        help="Run directories, folders searched for them (e.g. a multirun.py --root), or "
        "results files of benchmarks/presets.py (JSON).",
    )
    parser.add_argument("--out", metavar="DIR", required=True, help="Folder to write the figures to.")
    parser.add_argument("--name", default="results", help="File name prefix of the figures (default: results).")
    parser.add_argument(
        "--tag",
        default="eval/mean_return",
        help="Scalar to plot against env steps (default: eval/mean_return; "
        "charts/episodic_return is the training episodes' return).",
    )
    parser.add_argument("--title", default=None, help="A heading above every figure's own description.")
    parser.add_argument(
        "--statistic",
        default="iqm",
        choices=("iqm", "mean", "median"),
        help="Statistic of the aggregate bar chart (default: iqm).",
    )
    args = parser.parse_args(argv)
    return report_user_errors("plot.py", args, lambda: _plot_command(args))


def _plot_command(args: argparse.Namespace) -> int:
    if not re.fullmatch(r"[\w.-]+", args.name):
        raise UserError(f"--name must be letters, digits, '_', '-' or '.', got {args.name!r}")
    try:
        from dqn_family.analysis.curves import learning_curves
        from dqn_family.analysis.plots import (
            plot_aggregates,
            plot_curve_grid,
            plot_learning_curves,
            save_figure,
        )
        from dqn_family.analysis.runs import find_runs
        from dqn_family.analysis.summary import few_runs_notes, summarize
    except ModuleNotFoundError as error:
        raise missing_plots_extra("plot.py", error) from None
    out = Path(args.out)
    runs = find_runs(args.paths)
    curves = learning_curves(runs, args.tag)
    written = []
    for env_id, figure in plot_learning_curves(curves, tag=args.tag, title=args.title).items():
        written += save_figure(figure, out, f"{args.name}_curves_{env_file_name(env_id)}")
    written += save_figure(plot_curve_grid(curves, tag=args.tag, title=args.title), out, f"{args.name}_curves")
    summaries, _ = summarize(runs)
    if summaries:
        for note in few_runs_notes(summaries):
            print(f"plot.py: note: {note}", file=sys.stderr)
        figure = plot_aggregates(summaries, statistic=args.statistic, title=args.title)
        written += save_figure(figure, out, f"{args.name}_aggregates")
    else:
        print("plot.py: note: no run has a final evaluation, so there is no aggregate bar chart", file=sys.stderr)
    print(f"{len(runs)} runs, {len(curves)} curves; wrote {len(written)} files:")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
