"""Train many seeds (and envs, and algos) at once:

    python multirun.py --envs CartPole-v1 Acrobot-v1 --algos dqn rainbow --seeds 1 2 3 4 5 \\
        --root runs/compare [--workers 2] [--total-steps 20000 ...] [--set total_steps=20000 ...] [-- TRAIN.PY FLAGS]

Every (env, algo, seed) is one ``train.py`` process with its own run directory ROOT/<env>__<algo>__s<seed>;
``--workers`` of them run at a time, with a combined progress view. A trial that fails does not
stop the others; the failures are listed at the end (exit code 1). ``--backend ray`` runs the same
trials as Ray tasks (the ``ray`` extra): on a local Ray instance, or on a cluster with
``--ray-address``. Then: ``python aggregate.py ROOT`` and ``python plot.py ROOT --out DIR``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from dqn_family.configs import UserError, make_parser, report_user_errors, train_overrides


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the main thread is, so that the same cleanup as for Ctrl-C
    stops the running trials."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number


def _raise_stopped(signal_number: int, frame) -> None:
    raise Stopped(signal_number)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    own, train_flags = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = _parser()
    args, unknown = parser.parse_known_args(own)  # train.py's flags may come before a '--' too
    train_flags = [*unknown, *train_flags]
    main_thread = threading.current_thread() is threading.main_thread()
    stops = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if main_thread and hasattr(signal, name)]
    previous = {number: signal.signal(number, _raise_stopped) for number in stops}
    try:
        return report_user_errors("multirun.py", args, lambda: _stoppable(args, train_flags))
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _stoppable(args: argparse.Namespace, train_flags: list[str]) -> int:
    try:
        return _multirun_command(args, train_flags)
    except KeyboardInterrupt as stop:
        name = f"stopped by {stop}" if isinstance(stop, Stopped) else "interrupted"
        print(f"\nmultirun.py: {name}; the running trials were stopped", file=sys.stderr)
        return 128 + (stop.signal_number if isinstance(stop, Stopped) else signal.SIGINT)


def _parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "multirun.py",
        "Train a grid of envs x algos x seeds as parallel train.py processes, each "
        "in its own run directory under --root. Any train.py flag given here (e.g. --total-steps "
        "20000 --config my.yaml) goes to every trial, also after a lone '--'.",
    )
    parser.add_argument(
        "--envs", "--env", nargs="+", default=["CartPole-v1"], metavar="ENV_ID", help="Env ids (default: CartPole-v1)."
    )
    parser.add_argument(
        "--algos",
        "--algo",
        nargs="+",
        default=["dqn"],
        metavar="ALGO",
        help="Algos from the agent registry (default: dqn).",
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5], metavar="SEED", help="Seeds (default: 1 2 3 4 5)."
    )
    parser.add_argument(
        "--root", default=None, help="Folder of the run directories (default: runs/multirun-<date>-<time>)."
    )
    parser.add_argument("--workers", type=int, default=2, help="Trials running at once (default: 2).")
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: child processes on this machine (default); ray: Ray tasks.",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster to use (e.g. auto or ray://host:10001); default: start a local Ray "
        "instance with --workers CPUs.",
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        dest="settings",
        help="Config fields for every trial, e.g. --set total_steps=20000 learning_rate=1e-3.",
    )
    parser.add_argument(
        "--skip-finished",
        action="store_true",
        help="Keep run directories that finished (have summary.json) and train only the rest.",
    )
    parser.add_argument("--dry-run", action="store_true", help="List the trials and their configs; train nothing.")
    return parser


def _multirun_command(args: argparse.Namespace, train_flags: list[str]) -> int:
    from dqn_family.analysis.multirun import plan_trials, run_local, run_ray
    from dqn_family.analysis.progress import ProgressView, report, write_outcomes

    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    overrides, config_file = train_overrides(args.settings, train_flags)
    root = Path(args.root or f"runs/multirun-{time.strftime('%Y%m%d-%H%M%S')}")
    if root.exists() and not root.is_dir():
        raise UserError(f"--root {root} is a file, not a folder; choose a folder for the run directories")
    trials = plan_trials(
        env_ids=args.envs, algos=args.algos, seeds=args.seeds, root=root, overrides=overrides, config_file=config_file
    )
    trials, finished = _select(trials, args.skip_finished)
    grid = f"{len(args.envs)} env x {len(args.algos)} algo x {len(args.seeds)} seed"
    skipped = f", {finished} already finished" if finished else ""
    runner = "local processes" if args.backend == "local" else "Ray tasks"
    print(
        f"multirun: {len(trials)} trial{'' if len(trials) == 1 else 's'} to train ({grid}{skipped}) in {root}, "
        f"{args.workers} at a time as {runner}"
    )
    if args.dry_run:
        for trial in trials:
            print(f"  {trial.name}: {trial.total_steps:,} env steps -> {trial.run_dir}")
        return 0
    view = ProgressView(trials)
    if args.backend == "ray":
        outcomes = run_ray(trials, workers=args.workers, poll=view.update, address=args.ray_address)
    else:
        outcomes = run_local(trials, workers=args.workers, poll=view.update)
    view.close(outcomes)
    print(report(trials, outcomes))
    write_outcomes(root / "multirun" / "outcomes.json", trials, outcomes)
    print(f"next: python aggregate.py {root}  |  python plot.py {root} --out {root}/figures")
    return 0 if all(outcome.ok for outcome in outcomes.values()) else 1


def _select(trials: list, skip_finished: bool) -> tuple[list, int]:
    """The trials to train: refuses to write into a used run directory unless it finished and
    ``skip_finished`` is set. Removes stale logs of the trials to train. Refuses a link or special
    file where multirun writes."""
    from dqn_family.fileio import require_real_folder, require_writable_file

    chosen, finished = [], 0
    # multirun's own folder under --root (trial configs and logs, outcomes.json) may come from
    # someone else: a link there would make multirun write wherever it points.
    folders = {Path(trial.log_path).parent for trial in trials}
    for folder in folders:
        require_real_folder(folder, create=False)  # made when the first trial starts
    for trial in trials:
        run_dir = Path(trial.run_dir)
        if run_dir.exists() and any(run_dir.iterdir()):
            if skip_finished and (run_dir / "summary.json").is_file():
                finished += 1
                continue
            hint = (
                "it never finished; delete it to train it again"
                if skip_finished
                else "choose a new --root, or --skip-finished to keep the finished runs there"
            )
            raise UserError(f"run directory {run_dir} already exists; {hint}")
        Path(trial.log_path).unlink(missing_ok=True)
        require_writable_file(Path(trial.log_path).with_suffix(".yaml"))  # refused before any trial trains
        chosen.append(trial)
    return chosen, finished


if __name__ == "__main__":
    sys.exit(main())
