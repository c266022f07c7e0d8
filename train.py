"""Train a DQN-family agent: ``python train.py --env CartPole-v1 [--flag value ...]``; continue a
stopped run with ``python train.py --resume RUN_DIR``.

This file keeps the command line, building a run's parts (``build_parts``) and ``train(config)`` /
``resume(run_dir)``, the same things as Python functions. The loop itself, one for feed-forward and
recurrent runs, read top to bottom, is ``training.loop.train_loop``: seed, build, then per vector
step {act, step, store, maybe update, maybe sync target, maybe log, maybe evaluate and save, maybe
checkpoint}. The loop decides *when*; the agent decides *what the maths is*; acting and what replay
stores are parts chosen from the agent and the buffer.

A checkpoint (every ``checkpoint_every`` env steps, and at exit, including after SIGINT or SIGTERM
on the command line) holds the full training state: networks, optimizer, replay contents and
priorities, every generator (Python, numpy, torch), the counters and the loss sums not yet logged
(``checkpoints/`` has the file protocol). A resumed run restarts its envs at fresh episodes seeded
from the checkpoint's env-seed generator: the n-step windows and episode returns in progress at
the checkpoint are not saved, so those partial episodes are neither stored nor logged. Resuming
the same checkpoint twice gives identical runs on the CPU, and the TensorBoard curves go on from
the checkpoint's step, the steps the stopped process logged after it being purged.
"""

from __future__ import annotations

import argparse
import os
import sys

from dqn_family.configs import add_config_arguments, make_parser, values_for_help
from dqn_family.configs.config import HARMLESS_ON_RESUME


def parse_args(argv: list[str]) -> argparse.Namespace:
    """train.py's command line. Reading it needs neither torch nor gymnasium, so that --help and a
    mistyped flag answer at once, before the imports below."""
    parser = make_parser(
        "train.py",
        "Train a DQN-family agent on a Gymnasium environment. Settings apply in "
        "order: defaults < env preset (configs/) < --config FILE < flags. The defaults shown are "
        "the presets' for the --env, --algo and --config given with --help (CartPole-v1, dqn).",
    )
    add_config_arguments(parser, shown=values_for_help(argv))
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="Print the resolved config as YAML, each preset value with its source, and exit; nothing "
        "is trained. The output is a valid --config FILE.",
    )
    harmless = ", ".join("--" + name.replace("_", "-") for name in HARMLESS_ON_RESUME)
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="Continue the run in RUN_DIR from its latest checkpoint to its total_steps. Other "
        f"settings given must equal the run's, except {harmless}; and a larger --total-steps extends the "
        "run, a finished one too (config.yaml then records the new total): epsilon follows its schedule "
        "as before (it is in env steps, epsilon_decay_steps); the learning-rate decay and the "
        "importance-sampling anneal still end where they did (at anneal_steps, set to the earlier total "
        "if it was none), so the steps past that end run at learning_rate_end and beta 1. A smaller "
        "--total-steps is refused.",
    )
    parser.add_argument(
        "--trust-imports",
        action="store_true",
        help="With --resume: import the modules the run's config names ('module:EnvId', "
        "'module:Factory'), running their code; without it they must be given again as flags. "
        "Never from inside the run directory.",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":  # the command line first: --help needs none of the imports below
    ARGS = parse_args(sys.argv[1:])

try:  # Ctrl-C during the imports (torch's take seconds): one line and the shell's code for SIGINT, not a traceback
    import dataclasses
    from pathlib import Path
    from typing import Any

    from dqn_family.agents import NetworkFactory, factory_spec, resolve_device
    from dqn_family.checkpoints import (
        TrainingInterrupted,
        check_same_run,
        latest_checkpoint,
        load_checkpoint,
        lock_run_dir,
        record_extension,
        record_resume,
        resume_config,
        stop_on_signals,
        wait_for_later_event_file_name,
    )
    from dqn_family.configs import (
        Config,
        ConfigError,
        config_from_args,
        config_origins,
        config_to_dict,
        print_config,
        read_config_file,
        report_user_errors,
    )
    from dqn_family.configs.config import FIELD_NAMES
    from dqn_family.configs.errors import os_errors_in
    from dqn_family.configs.trust import IMPORTING_FIELDS, check_run_imports, settle_import_path
    from dqn_family.evaluate import evaluate_and_save
    from dqn_family.training.games import self_play_of
    from dqn_family.training.hooks import EvaluationCallback
    from dqn_family.training.loop import InProcess, train_loop
    from dqn_family.training.run_dir import config_table, create_run_dir, find_run_dir
    from dqn_family.training.state import (
        Run,
        TrainResult,
        build_parts,
        checked,
        progress_from,
        restore,
    )
    from dqn_family.training.tracking import check_available as check_tracker_available
    from dqn_family.training.tracking import open_writer
except KeyboardInterrupt:
    sys.stderr.write(
        f"\n{os.path.basename(sys.argv[0])}: interrupted\n"
    )  # the script run (train.py imports evaluate.py)
    raise SystemExit(130) from None


def train(
    config: Config,
    *,
    network: NetworkFactory | None = None,
    handle_signals: bool = False,
    on_evaluation: EvaluationCallback | None = None,
) -> TrainResult:
    """Train from ``config``; ``network`` optionally gives your own Q-network factory.
    ``handle_signals`` (main thread only) makes SIGINT and SIGTERM save a checkpoint and raise
    TrainingInterrupted, instead of their usual effect; from the run directory's creation on, so
    that a signal before the first step leaves a run that ``resume`` continues (from step 0).
    ``on_evaluation(env_step, mean_return)`` is called after each periodic evaluation; raising
    StopTraining there ends the run cleanly (training.hooks)."""
    if network is not None and config.network is None and (spec := factory_spec(network)) is not None:
        config = dataclasses.replace(config, network=spec)  # recorded so evaluate.py can rebuild it
    if config.actors:  # distributed: Ape-X on Ray (distributed/), the same run directory
        if network is not None and config.network is None:
            raise ConfigError("--actors needs a network that actors can import: give it as --network module:Factory")
        from dqn_family.distributed.run import train_distributed

        return train_distributed(config, handle_signals=handle_signals, on_evaluation=on_evaluation)
    device = resolve_device(config.device)
    check_tracker_available(config.track)
    envs, agent, buffer, env_seeds = build_parts(config, device, network)
    try:
        with stop_on_signals(handle_signals):  # the loop goes on with this request (a signal now stops at step 0)
            run_dir = create_run_dir(config, device)
            if network is not None and config.network is None:
                print(
                    "note: this network cannot be imported by name, so evaluate.py cannot rebuild it (nor --resume "
                    "continue the run); define it in an importable module to make the run reloadable",
                    file=sys.stderr,
                )
            run = Run(
                config, run_dir, device, envs, agent, buffer, env_seeds, self_play_of(config, agent.q_network, envs)
            )
            with os_errors_in(run_dir), lock_run_dir(run_dir), open_writer(config, run_dir) as writer:
                writer.add_text("hyperparameters", config_table(dataclasses.replace(config, run_dir=str(run_dir))))
                return train_loop(
                    run,
                    writer,
                    None,
                    handle_signals,
                    on_evaluation,
                    collector=InProcess(run),
                    evaluate_and_save=evaluate_and_save,
                )
    finally:
        envs.close()


def resume(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    handle_signals: bool = False,
    trust_imports: bool = False,
) -> TrainResult:
    """Continue the run in directory ``path`` from its latest checkpoint to its total_steps.
    ``overrides`` may change only harmless settings (``checkpoints.HARMLESS_ON_RESUME``), and raise
    total_steps, which extends the run (``checkpoints.resume``; config.yaml records it). A
    ``module:Name`` in the run's config is imported only if ``overrides`` give the same value or
    with ``trust_imports`` (configs.trust)."""
    run_dir = find_run_dir(path)
    overrides = overrides or {}
    with os_errors_in(run_dir), lock_run_dir(run_dir):
        config = resume_config(run_dir, overrides)
        check_run_imports(
            config_to_dict(config),
            run_dir,
            given=[value for name in IMPORTING_FIELDS if (value := overrides.get(name)) is not None],
            trust_imports=trust_imports,
        )
        checkpoint_path = latest_checkpoint(run_dir)
        payload = load_checkpoint(checkpoint_path)
        check_same_run(payload.get("config"), config, checkpoint_path)
        check_tracker_available(config.track)
        record_extension(run_dir, config)  # a larger total_steps: from now on the run's own
        if payload["env_step"] >= config.total_steps:  # nothing left to do
            counters, final_eval = checked(checkpoint_path, progress_from, payload)
            return TrainResult(
                run_dir,
                counters.env_steps,
                counters.updates,
                counters.episodes,
                counters.seconds,
                final_eval,
                counters.best_eval_mean,
                resumed_from=counters.env_steps,
            )
        if config.actors:  # a distributed run (distributed/)
            from dqn_family.distributed.run import resume_distributed

            return resume_distributed(run_dir, config, checkpoint_path, payload, handle_signals=handle_signals)
        device = resolve_device(config.device)
        envs, agent, buffer, env_seeds = build_parts(config, device)
        try:
            run = Run(
                config, run_dir, device, envs, agent, buffer, env_seeds, self_play_of(config, agent.q_network, envs)
            )
            resumed = checked(checkpoint_path, restore, run, payload)
            record_resume(run_dir, env_step=payload["env_step"], device=str(device))
            wait_for_later_event_file_name(run_dir)
            # Steps after the checkpoint, logged by the stopped process, are hidden from TensorBoard.
            with open_writer(config, run_dir, purge_step=payload["env_step"] + 1) as writer:
                return train_loop(
                    run, writer, resumed, handle_signals, collector=InProcess(run), evaluate_and_save=evaluate_and_save
                )
        finally:
            envs.close()


# --- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args(sys.argv[1:] if argv is None else argv))


def run_command(args: argparse.Namespace) -> int:
    """Do what parsed train.py arguments ask: one line and exit code 2 for a user's mistake."""
    return report_user_errors("train.py", args, lambda: _train_command(args))


def _train_command(args) -> int:
    if args.print_config:
        if args.resume is not None:
            raise ConfigError(f"--print-config shows a new run's config; a run's own is {args.resume}/config.yaml")
        print(print_config(config_from_args(args), config_origins(args)), end="")
        return 0
    try:
        if args.resume is not None:
            overrides = _resume_overrides(args)
            settle_import_path(overrides)  # only names given again here come from the current directory
            result = resume(args.resume, overrides, handle_signals=True, trust_imports=args.trust_imports)
        else:
            config = config_from_args(args)
            settle_import_path(config_to_dict(config))  # the user's own flags and --config file
            result = train(config, handle_signals=True)
    except TrainingInterrupted as stop:
        print(f"train.py: {stop}", file=sys.stderr)
        return stop.exit_code
    if result.resumed_from == result.env_steps:
        print(f"nothing to do: {result.run_dir} already finished ({result.env_steps:,} env steps)")
        return 0
    final = (
        f"final eval {result.final_eval.mean:.1f} ± {result.final_eval.std:.1f}, best {result.best_eval_mean:.1f}; "
        if result.final_eval
        else ""
    )
    print(
        f"done: {result.env_steps:,} env steps, {result.episodes:,} episodes in {result.seconds:.1f} s "
        f"({result.env_steps / max(result.seconds, 1e-9):,.0f} steps/s); {final}run directory: {result.run_dir}"
    )
    return 0


def _resume_overrides(args) -> dict[str, Any]:
    """The settings given with --resume: from --config FILE, then the flags."""
    from_file = read_config_file(args.config) if args.config else {}
    return {**from_file, **{name: value for name, value in vars(args).items() if name in FIELD_NAMES}}


if __name__ == "__main__":
    sys.exit(run_command(ARGS))
