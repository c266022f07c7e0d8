"""Summarise many runs' final evaluations: ``python aggregate.py RUN_DIR_OR_ROOT_OR_RESULTS_JSON... [--json PATH]``.

Per env and algo: mean, median and interquartile mean (IQM) of the final evaluation return across
seeds, each with a 95% percentile bootstrap confidence interval over the seeds (Agarwal et al. 2021;
computed with scipy, see analysis/stats.py), and a note on stderr for a group of fewer than 5 runs.
Needs the ``plots`` extra (scipy).
"""

from __future__ import annotations

import argparse
import sys

from dqn_family.analysis import INTERVAL_METHOD, INTERVAL_NAME, MIN_RUNS_FOR_INTERVAL, missing_plots_extra
from dqn_family.configs import UserError, make_parser, report_user_errors
from dqn_family.configs.config import SEED_MAX
from dqn_family.fileio import short_repr
from dqn_family.fileio.results import human_stream, json_path, names_stdout, write_json

MAX_RESAMPLES = 1_000_000  # each resample is a row of every group's scores in one array: bounded memory


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(
        "aggregate.py",
        "Mean, median and IQM of runs' final evaluations across seeds, per env "
        f"and algo, each with a {INTERVAL_NAME} (a note on stderr below {MIN_RUNS_FOR_INTERVAL} runs per group).",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="RUN_DIR",
        help="Run directories, folders searched for them (e.g. a multirun.py --root), or "
        "results files of benchmarks/presets.py (JSON).",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        type=json_path,
        default=None,
        help="Also write the aggregates as JSON here; '-' writes them to stdout, the table then going to stderr.",
    )
    parser.add_argument("--resamples", type=int, default=10_000, help="Bootstrap resamples (default: 10000).")
    parser.add_argument("--bootstrap-seed", type=int, default=0, help="Seed of the bootstrap (default: 0).")
    args = parser.parse_args(argv)
    return report_user_errors("aggregate.py", args, lambda: _aggregate_command(args))


def _aggregate_command(args: argparse.Namespace) -> int:
    if not 100 <= args.resamples <= MAX_RESAMPLES:
        raise UserError(f"--resamples must be >= 100 and <= {MAX_RESAMPLES:,}, got {short_repr(args.resamples)}")
    if not 0 <= args.bootstrap_seed <= SEED_MAX:
        raise UserError(f"--bootstrap-seed must be >= 0 and <= {SEED_MAX:,}, got {short_repr(args.bootstrap_seed)}")
    try:
        from dqn_family.analysis.runs import find_runs
        from dqn_family.analysis.summary import few_runs_notes, format_table, summarize
    except ModuleNotFoundError as error:
        raise missing_plots_extra("aggregate.py", error) from None
    runs = find_runs(args.paths)
    summaries, unscored = summarize(runs, n_resamples=args.resamples, seed=args.bootstrap_seed)
    for run in unscored:
        print(
            f"aggregate.py: note: left out {run.run_dir}: it has no evaluation (still running, failed, "
            "or trained with eval_frequency 0)",
            file=sys.stderr,
        )
    if not summaries:
        raise UserError(f"none of the {len(runs)} runs has an evaluation to aggregate")
    for summary in summaries:
        if len(set(summary.seeds)) < len(summary.seeds):
            print(
                f"aggregate.py: note: {summary.env_id} {summary.algo} has several runs of the same seed "
                f"({summary.seeds}); each counts as a sample",
                file=sys.stderr,
            )
    for note in few_runs_notes(summaries):
        print(f"aggregate.py: note: {note}", file=sys.stderr)
    human = human_stream(args.json)  # stderr while the JSON goes to stdout
    print(
        f"Final evaluation return over seeds ({len(runs) - len(unscored)} runs; IQM = mean of the middle 50%; "
        f"{INTERVAL_NAME}, {args.resamples} resamples)",
        file=human,
    )
    print(format_table(summaries), file=human)
    if args.json:
        data = {
            "score": "final evaluation mean return (summary.json final_eval_mean_return, else the last "
            "eval/mean_return)",
            "confidence": 0.95,
            "method": INTERVAL_METHOD,  # scipy.stats.bootstrap, method="percentile", over the seeds of each group
            "resamples": args.resamples,
            "bootstrap_seed": args.bootstrap_seed,
            "runs": [str(run.run_dir) for run in runs if run not in unscored],
            "groups": [summary.as_dict() for summary in summaries],
        }
        write_json(args.json, data)
        if not names_stdout(args.json):
            print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
