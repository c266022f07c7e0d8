"""Search hyperparameters with Optuna:

    python tune.py --env CartPole-v1 --algo dqn --trials 50 [--study NAME] [--storage URL]
        [--sampler tpe|cmaes|nsga2|random] [--pruner median|hyperband|none] [--workers N]
        [--backend local|ray] [--space FILE] [--objective mean-last|auc] [--out DIR] [-- TRAIN.PY FLAGS]

Each trial is a normal training run in ``<out>/trial_<number>/`` with the config fields of the
search space (``configs/tune/<algo>.yaml``, or ``--space FILE``; tuning.space) sampled, and the
train.py flags given here fixed for every trial (also before a lone '--', as multirun.py takes
them). The study lives in a storage (``<out>/study.db`` by default), so running the same command
again continues it up to ``--trials`` finished trials, after failing the trials whose process was
killed. At the end: ``best.yaml`` (a config ``train.py --config`` takes), figures, and the
optuna-dashboard command. The parts: tuning.space, tuning.study, tuning.objective,
tuning.workers, tuning.report.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
from pathlib import Path

from dqn_family.configs import (
    ConfigError,
    UserError,
    env_file_name,
    make_parser,
    report_user_errors,
    resolve_config,
    train_overrides,
)
from dqn_family.configs.trust import settle_import_path
from dqn_family.fileio import short_repr
from dqn_family.multirun import Stopped

# Train flags that tune.py sets itself (its own --env and --algo; a directory per trial).
_OWN_FIELDS = {"env_id": "--env", "algo": "--algo", "run_dir": "--out"}
_STUDY_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _raise_stopped(signal_number: int, frame) -> None:
    raise Stopped(signal_number)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    own, after = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    args, unknown = _parser().parse_known_args(own)  # train.py's flags may come before a '--' too
    main_thread = threading.current_thread() is threading.main_thread()
    stops = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if main_thread and hasattr(signal, name)]
    previous = {number: signal.signal(number, _raise_stopped) for number in stops}
    try:
        return report_user_errors("tune.py", args, lambda: _stoppable(args, [*unknown, *after], argv))
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _parser() -> argparse.ArgumentParser:
    from dqn_family.tuning.study import OBJECTIVES, PRUNERS, SAMPLERS

    parser = make_parser(
        "tune.py",
        "Search hyperparameters with Optuna: each trial a normal run directory under "
        "--out, the study in --storage (continued when run again). Any train.py flag given here "
        "(e.g. --total-steps 50000) is fixed for every trial, also after a lone '--'.",
    )
    parser.add_argument(
        "--env", "--env-id", dest="env_id", default="CartPole-v1", help="Env id (default: CartPole-v1)."
    )
    parser.add_argument("--algo", default="dqn", help="Algo from the agent registry (default: dqn).")
    parser.add_argument(
        "--trials",
        type=int,
        default=50,
        help="Finished (complete or pruned) trials the study should hold; a re-run tops it up (default: 50).",
    )
    parser.add_argument("--study", default=None, help="Study name (default: <env>__<algo>).")
    parser.add_argument(
        "--storage",
        default=None,
        help="SQLAlchemy URL of the study storage (default: the environment variable DQN_TUNE_STORAGE if set, "
        "else sqlite:///<out>/study.db). A URL with a password is better given in DQN_TUNE_STORAGE: a command "
        "line is visible to every user of the machine (ps); the password is never printed or recorded.",
    )
    parser.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default="tpe",
        help="tpe (default), cmaes (needs cmaes), random, or nsga2: two objectives, the return "
        "(maximised) and training seconds (minimised), giving a Pareto front.",
    )
    parser.add_argument(
        "--pruner",
        choices=PRUNERS,
        default=None,
        help="Stop unpromising trials at their periodic evaluations: median (default), hyperband, or "
        "none (the default with nsga2, which cannot prune).",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="Trials running at once, each in its own process (default: 1)."
    )
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: worker processes on this machine (default); ray: Ray tasks on a local Ray instance.",
    )
    parser.add_argument(
        "--space",
        metavar="FILE",
        default=None,
        help="Search-space YAML (default: configs/tune/<algo>.yaml, or configs/tune/<algo>/<env>.yaml).",
    )
    parser.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default="mean-last",
        help="mean-last: the mean of the last 3 periodic greedy evaluations (default); auc: the mean "
        "of all of them (area under the curve over its number of points).",
    )
    parser.add_argument("--out", default=None, help="The study's folder (default: runs/tune/<study>).")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one of --workers' processes
    return parser


def _stoppable(args: argparse.Namespace, train_flags: list[str], argv: list[str]) -> int:
    try:
        return _tune_command(args, train_flags, argv)
    except KeyboardInterrupt as stop:
        name = f"stopped by {stop}" if isinstance(stop, Stopped) else "interrupted"
        print(
            f"\ntune.py: {name}; the running trials were stopped (marked FAIL); run the same command to continue",
            file=sys.stderr,
        )
        return 128 + (stop.signal_number if isinstance(stop, Stopped) else signal.SIGINT)


def settings_from_args(args: argparse.Namespace, train_flags: list[str]):
    """The validated TuneSettings of tune.py's arguments; UserError for anything wrong."""
    from dqn_family.analysis.multirun import check_env_id
    from dqn_family.training.tracking import check_available as check_tracker_available
    from dqn_family.tuning.report import check_study_folder
    from dqn_family.tuning.space import load_space, shipped_space_path
    from dqn_family.tuning.study import STORAGE_ENV, TuneSettings, check_sqlite_file

    overrides, config_file = train_overrides([], train_flags)
    # The current folder is importable only for a module the user named (its workers decide alike).
    settle_import_path({**overrides, "env_id": args.env_id})
    if args.trials < 1:
        raise UserError(f"--trials must be >= 1, got {args.trials}")
    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    if args.sampler == "nsga2" and args.pruner not in (None, "none"):
        raise UserError(
            "--pruner does not work with --sampler nsga2 (Optuna cannot prune multi-objective studies); "
            "leave it out or use --pruner none"
        )
    for name, flag in _OWN_FIELDS.items():
        if name in overrides:
            raise UserError(f"{name} is set by tune.py itself: use tune.py's {flag}")
    study = args.study or f"{env_file_name(args.env_id)}__{args.algo}"
    if not _STUDY_NAME.match(study) or study in (".", ".."):
        raise UserError(
            f"--study must be 1 to 100 letters, digits, '_', '-' or '.' (not '.' or '..'), got {short_repr(study)}"
        )
    _check_base_config(args.env_id, args.algo, overrides, config_file)
    check_tracker_available(overrides.get("track", "none"))
    check_env_id(args.env_id)
    space_path = args.space or shipped_space_path(args.env_id, args.algo)
    if args.space is None and not Path(space_path).is_file():
        raise UserError(f"no search space ships for --algo {args.algo}; give one with --space FILE")
    space = load_space(space_path)
    both = sorted(set(space) & set(overrides))
    if both:
        raise UserError(
            f"{', '.join(both)} is both fixed by a train flag and in the search space {space_path}; drop one of them"
        )
    out = Path(args.out or Path("runs") / "tune" / study).resolve()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    in_folder = f"sqlite:///{out / 'study.db'}"
    # The URL may hold a password: a worker gets it from its parent in the environment, never on its
    # command line (ps shows that to every user), and the user may give it the same way.
    storage = (None if args.worker else args.storage) or os.environ.get(STORAGE_ENV) or in_folder
    check_sqlite_file(storage, in_study_folder=storage == in_folder)
    check_study_folder(out)
    pruner = args.pruner or ("none" if args.sampler == "nsga2" else "median")
    return TuneSettings(
        env_id=args.env_id,
        algo=args.algo,
        trials=args.trials,
        study_name=study,
        storage_url=storage,
        out=out,
        sampler=args.sampler,
        pruner=pruner,
        objective=args.objective,
        space=space,
        overrides=overrides,
        config_file=config_file,
    )


def _check_base_config(env_id: str, algo: str, overrides: dict, config_file: str | None) -> None:
    """The fixed settings must make a valid config with periodic evaluations (the objective)."""
    from dqn_family.agents import AGENTS

    if algo not in AGENTS:
        raise ConfigError(f"--algo must be one of {', '.join(AGENTS)}; got {algo!r}")
    config = resolve_config({**overrides, "env_id": env_id, "algo": algo}, config_file)
    if not 0 < config.eval_frequency <= config.total_steps:
        raise UserError(
            f"trials are scored by their periodic evaluations: --eval-frequency must be between 1 and "
            f"--total-steps ({config.total_steps:,}), got {config.eval_frequency:,}"
        )


def _tune_command(args: argparse.Namespace, train_flags: list[str], argv: list[str]) -> int:
    settings = settings_from_args(args, train_flags)
    settings.out.mkdir(parents=True, exist_ok=True)
    from dqn_family.tuning.workers import run_local_workers, run_ray_workers, run_trials

    if args.worker:
        run_trials(settings)
        return 0
    from dqn_family.training.tracking import prepare_store as prepare_tracking_store
    from dqn_family.tuning.objective import too_few_evaluations
    from dqn_family.tuning.report import summary_lines, write_best, write_figures
    from dqn_family.tuning.study import (
        count_trials,
        fail_dead_trials,
        open_storage,
        open_study,
        quiet_optuna,
        shown_url,
    )

    quiet_optuna()
    prepare_tracking_store(settings.overrides.get("track", "none"))  # before workers that would race to create it
    storage = open_storage(settings.storage_url)
    study = open_study(settings, storage)  # created here, before any worker, so that workers only load it
    for number in fail_dead_trials(study, storage):
        print(f"trial {number}: FAIL: its worker process ended while it ran (marked now)")
    finished, _ = count_trials(study)
    runner = (
        "in this process"
        if args.workers == 1 and args.backend == "local"
        else f"{args.workers} {'local processes' if args.backend == 'local' else 'Ray tasks'}"
    )
    print(
        f"tune: study {settings.study_name} in {shown_url(settings.storage_url)}: {finished} of {settings.trials} "
        f"trials finished; sampler {settings.sampler}, pruner {settings.pruner}, objective {settings.objective}, "
        f"{runner}; trials in {settings.out}",
        flush=True,
    )
    warning = too_few_evaluations(settings)
    if warning:
        print(f"tune.py: warning: {warning}", file=sys.stderr, flush=True)
    if args.backend == "ray":
        codes = run_ray_workers(argv, args.workers, settings.storage_url)
    elif args.workers > 1:
        codes = run_local_workers(argv, args.workers, settings.storage_url)
    else:
        run_trials(settings)
        codes = [0]
    best_files = write_best(study, settings)
    write_figures(study, settings)
    print("\n".join(summary_lines(study, settings, best_files)))
    finished, _ = count_trials(study)
    return 0 if finished >= settings.trials and not any(codes) else 1


if __name__ == "__main__":
    sys.exit(main())
