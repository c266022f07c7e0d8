"""Train a DQN-family agent: ``python train.py --env CartPole-v1 [--flag value ...]``; continue a
stopped run with ``python train.py --resume RUN_DIR``.

One loop, read top to bottom: seed, build, then per vector step {act, step, store, maybe update,
maybe sync target, maybe log, maybe evaluate and save, maybe checkpoint}. The loop decides *when*;
the agent decides *what the maths is*. ``train(config)`` and ``resume(run_dir)`` are the same
things as Python functions.

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
    import time
    from pathlib import Path
    from typing import Any

    import torch
    from torch.utils.tensorboard import SummaryWriter

    from dqn_family.agents import DQNAgent, NetworkFactory, factory_spec, resolve_device
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
    from dqn_family.configs.schedules import SCHEDULES, crossed, learning_rate_at, priority_beta_at
    from dqn_family.configs.trust import IMPORTING_FIELDS, check_run_imports, settle_import_path
    from dqn_family.envs import AutoresetTracker, learning_signal
    from dqn_family.evaluate import evaluate_and_save
    from dqn_family.replay import NStepAccumulator, PrioritizedReplayBuffer, ReplayBuffer
    from dqn_family.training import EpisodeTracker, MetricLog, NonFiniteError, Progress
    from dqn_family.training.hooks import EvaluationCallback
    from dqn_family.training.metrics import checked_priorities
    from dqn_family.training.run_dir import config_table, create_run_dir, find_run_dir, finish_run
    from dqn_family.training.state import (
        Counters,
        Resumed,
        Run,
        TrainResult,
        build_parts,
        checked,
        progress_from,
        restore,
        save_training_state,
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
            run = Run(config, run_dir, device, envs, agent, buffer, env_seeds)
            with os_errors_in(run_dir), lock_run_dir(run_dir), open_writer(config, run_dir) as writer:
                writer.add_text("hyperparameters", config_table(dataclasses.replace(config, run_dir=str(run_dir))))
                return _loop(run, writer, None, handle_signals, on_evaluation)
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
            run = Run(config, run_dir, device, envs, agent, buffer, env_seeds)
            resumed = checked(checkpoint_path, restore, run, payload)
            record_resume(run_dir, env_step=payload["env_step"], device=str(device))
            wait_for_later_event_file_name(run_dir)
            # Steps after the checkpoint, logged by the stopped process, are hidden from TensorBoard.
            with open_writer(config, run_dir, purge_step=payload["env_step"] + 1) as writer:
                return _loop(run, writer, resumed, handle_signals)
        finally:
            envs.close()


def _loop(
    run: Run,
    writer: SummaryWriter,
    resumed: Resumed | None,
    handle_signals: bool,
    on_evaluation: EvaluationCallback | None = None,
) -> TrainResult:
    if run.config.recurrent != "off":  # R2D2: the recurrent loop, from the same parts (recurrent.py)
        from dqn_family.recurrent import recurrent_loop

        return recurrent_loop(run, writer, resumed, handle_signals, on_evaluation)
    config, agent, buffer, envs = run.config, run.agent, run.buffer, run.envs
    assert isinstance(agent, DQNAgent) and isinstance(buffer, ReplayBuffer)  # feed-forward parts (build_parts)
    num_envs = config.num_envs
    epsilon_at = SCHEDULES[config.exploration_schedule]
    autoreset = AutoresetTracker(num_envs)
    n_step = NStepAccumulator(num_envs, config.n_step, config.gamma) if config.n_step > 1 else None
    episodes = EpisodeTracker(num_envs)
    count, log, final_eval, saved_step = Counters(), MetricLog(writer, run.device), None, None
    if resumed is None:
        observations, _ = envs.reset(seed=config.seed)  # sub-env i is seeded seed + i
    else:
        count, final_eval, saved_step = resumed.counters, resumed.final_eval, resumed.counters.env_steps
        log.load_state_dict(resumed.metrics)
        observations, _ = envs.reset(seed=int(run.env_seeds.integers(2**31)))  # fresh episodes, from the checkpoint
    resumed_from, stopped_early = saved_step, None
    started = time.perf_counter() - count.seconds  # so that elapsed times count earlier sessions too
    progress = Progress(total=config.total_steps, initial=count.env_steps, enabled=config.progress)
    with stop_on_signals(handle_signals) as stop:
        try:
            while count.env_steps < config.total_steps and stop.signal is None and stopped_early is None:
                epsilon = epsilon_at(
                    count.env_steps,
                    start=config.epsilon_start,
                    end=config.epsilon_end,
                    decay_steps=config.epsilon_decay_steps,
                )
                actions = agent.act(observations, epsilon)
                next_observations, rewards, terminated, truncated, infos = envs.step(actions)

                # Under NEXT_STEP autoreset, the step after an episode's end only resets that sub-env:
                # it is not a transition, so it is neither stored nor counted.
                real = autoreset.real_steps(terminated, truncated)
                # Indexing with slice(None) copies nothing: the common step, where every sub-env's is real.
                stored = slice(None) if autoreset.all_real else real
                learn_rewards, learn_terminated = learning_signal(config, rewards, terminated, infos)
                if n_step is None:  # 1-step: the transitions are the real steps themselves
                    buffer.add(
                        observations[stored],
                        actions[stored],
                        learn_rewards[stored],
                        next_observations[stored],
                        learn_terminated[stored],
                        truncated[stored],
                        config.gamma,
                    )
                else:
                    buffer.add(
                        **n_step.push(
                            observations, actions, learn_rewards, next_observations, learn_terminated, truncated, real
                        ).as_dict()
                    )
                observations = next_observations
                before = count.env_steps
                count.env_steps += num_envs if autoreset.all_real else int(real.sum())
                progress.update(count.env_steps - before)

                for episode_return, length in episodes.step(rewards, real, autoreset):
                    log.add_episode(episode_return, length, count.env_steps)
                    count.episodes += 1

                if count.env_steps >= config.learning_starts and len(buffer) >= config.batch_size:
                    due = crossed(before, count.env_steps, config.train_frequency)
                    if due:
                        if config.compile and count.updates == 0:
                            progress.note("compiling the update with torch.compile (once, about 3-15 s)...")
                        _learn(config, agent, buffer, log, count, due, run.device)
                    if crossed(before, count.env_steps, config.target_update_interval):
                        agent.sync_target(config.tau)

                if crossed(before, count.env_steps, config.log_frequency):
                    progress.set_status(**log.flush(count.env_steps, epsilon))

                finished = count.env_steps >= config.total_steps
                if config.eval_frequency and (crossed(before, count.env_steps, config.eval_frequency) or finished):
                    final_eval, stopped_early = evaluate_and_save(run, log, count, progress, started, on_evaluation)

                if config.checkpoint_every and crossed(before, count.env_steps, config.checkpoint_every):
                    count.seconds = time.perf_counter() - started
                    saved_step = save_training_state(run, writer, count, log, final_eval)
            if count.env_steps > config.total_steps:  # a vector step moves every sub-env at once
                progress.note(
                    f"stopped at {count.env_steps:,} env steps: the last step of the {num_envs} envs "
                    f"together went past total_steps {config.total_steps:,}"
                )
            progress.close()
            count.seconds = time.perf_counter() - started
            if saved_step != count.env_steps:  # at exit: finished, or stopped by a signal
                saved_step = save_training_state(run, writer, count, log, final_eval)
        except NonFiniteError as error:
            kept = (
                "no checkpoint was written yet"
                if saved_step is None
                else f"the last good checkpoint (env step {saved_step:,}) is kept in {run.run_dir / 'checkpoints'}"
            )
            raise NonFiniteError(
                f"{error}; training stopped, {kept} (a lower --learning-rate or "
                "--max-grad-norm may help, or check the env's rewards)"
            ) from None
        finally:
            progress.close()
            log.write_episodes()  # the episodes since the last log, whatever stopped the loop

    return finish_run(
        run, count, final_eval, resumed_from=resumed_from, stopped_early=stopped_early, stop_signal=stop.signal
    )


def _learn(
    config: Config, agent, buffer: ReplayBuffer, log: MetricLog, count: Counters, due: int, device: torch.device
) -> None:
    """Run the gradient steps that are due; prioritized replay gets its new priorities back."""
    if config.learning_rate_end is not None:
        agent.set_learning_rate(learning_rate_at(config, count.env_steps))
    for _ in range(due * config.gradient_steps):
        if isinstance(buffer, PrioritizedReplayBuffer):  # config.prioritized
            batch = buffer.sample(config.batch_size, priority_beta_at(config, count.env_steps))
        else:
            batch = buffer.sample(config.batch_size)
        metrics = agent.update(batch.to_torch(device))
        if isinstance(buffer, PrioritizedReplayBuffer):
            buffer.update_priorities(batch.indices, checked_priorities(metrics, count.env_steps))
        log.add_update(metrics)
        count.updates += 1


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
