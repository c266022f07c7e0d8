"""Evaluate a saved agent: ``python evaluate.py RUN_DIR [--episodes N] [--seed S] [--epsilon E]``,
optionally recording each episode as an MP4 (``--video DIR``) or showing it in a window (``--render``).
A two-player game (``pettingzoo:<game>``) plays ``--episodes`` games in each seat against each scripted
player and reports win/draw/loss rates (training.games).

:func:`evaluate_policy` is also what ``train.py`` runs for its periodic evaluations, and the
default seed is the one those evaluations use, so evaluating ``model_latest.pt`` of a finished
run reproduces its last logged evaluation.
"""

from __future__ import annotations

import argparse
import os
import sys

from dqn_family.configs import make_parser
from dqn_family.fileio.results import json_path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """evaluate.py's command line. Reading it needs neither torch nor gymnasium, so that --help and
    a mistyped flag answer at once, before the imports below."""
    parser = make_parser("evaluate.py", "Evaluate a saved agent from its run directory.")
    parser.add_argument("run_dir", help="Run directory written by train.py.")
    parser.add_argument("--episodes", type=int, default=20, help="Episodes to play (default: 20).")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="Seed of the first reset (default: the run's evaluation seed, seed + 10000).",
    )
    parser.add_argument(
        "--epsilon",
        type=float,
        default=None,
        help="Probability of a random action (default: the run's eval_epsilon; 0.05 in the Atari presets).",
    )
    parser.add_argument(
        "--model",
        default="latest",
        help="'latest' (end of training), 'best' (best periodic evaluation) or a file path.",
    )
    parser.add_argument("--device", default="auto", help="Torch device (default: auto).")
    parser.add_argument(
        "--json",
        metavar="PATH",
        type=json_path,
        default=None,
        help="Also write the results as JSON here; '-' writes them to stdout, the summary line then going to stderr.",
    )
    parser.add_argument(
        "--trust-imports",
        action="store_true",
        help="Import the modules the run's config names (a 'module:EnvId' env id or a 'module:Factory' "
        "network), running their code; without it such a run is refused. Never from inside the "
        "run directory.",
    )
    watch = parser.add_mutually_exclusive_group()
    watch.add_argument(
        "--video",
        metavar="DIR",
        default=None,
        help="Record each episode as DIR/<env>-episode-<i>.mp4, deleting those of an earlier "
        "recording first (needs the video extra: moviepy).",
    )
    watch.add_argument("--render", action="store_true", help="Show the episodes in a window (needs a display).")
    return parser.parse_args(argv)


if __name__ == "__main__":  # the command line first: --help needs none of the imports below
    ARGS = parse_args(sys.argv[1:])

try:  # Ctrl-C during the imports (torch's take seconds): one line and the shell's code for SIGINT, not a traceback
    import time
    from pathlib import Path

    import numpy as np
    import torch
    from torch import nn

    from dqn_family.agents import (
        as_recurrent,
        build_network,
        input_parts,
        is_recurrent,
        load_model,
        numpy_greedy_policy,
        resolve_device,
        save_model,
        set_torch_threads,
    )
    from dqn_family.agents.acting import explore_action, greedy_step
    from dqn_family.agents.state_checks import check_module_state
    from dqn_family.configs import (
        Config,
        ConfigError,
        UserError,
        config_to_dict,
        env_file_name,
        load_config,
        report_user_errors,
    )
    from dqn_family.configs.trust import check_run_imports, game_of, settle_import_path
    from dqn_family.envs import (
        MASK_KEY,
        EnvOptions,
        MaskError,
        action_count,
        check_some_legal,
        make_env,
        mask_source,
        observation_layout,
        observation_states,
    )
    from dqn_family.envs.masks import legal_rows
    from dqn_family.envs.render import record_video, require_display, require_moviepy
    from dqn_family.fileio.results import human_stream, write_json
    from dqn_family.replay.observations import one_batch
    from dqn_family.training import MetricLog, Progress
    from dqn_family.training.games import game_report, report_eval_result, report_json, report_lines, report_scalars
    from dqn_family.training.hooks import EvaluationCallback, stop_requested
    from dqn_family.training.run_dir import find_run_dir
    from dqn_family.training.state import CheckpointedRun, Counters, EvalResult, check_finite
except KeyboardInterrupt:
    sys.stderr.write(
        f"\n{os.path.basename(sys.argv[0])}: interrupted\n"
    )  # the script run (train.py imports evaluate.py)
    raise SystemExit(130) from None

EVAL_SEED_OFFSET = 10_000  # evaluation envs use seed + this, apart from the training envs' seeds
MODEL_FILES = {"latest": "model_latest.pt", "best": "model_best.pt"}


@torch.no_grad()
def evaluate_policy(
    q_network: nn.Module,
    env_spec: str,
    *,
    episodes: int,
    seed: int,
    epsilon: float = 0.0,
    device: torch.device | str = "cpu",
    render_mode: str | None = None,
    video_dir: str | Path | None = None,
    env_options: EnvOptions | None = None,
    numpy_acting: bool = True,
    action_mask: str = "off",
) -> EvalResult:
    """Play ``episodes`` full episodes, greedy with probability 1 - epsilon; the first reset is
    seeded with ``seed`` and exploration draws from its own generator seeded the same way
    (``rng.random()`` then, when exploring, one ``rng.integers``: examples/play_onnx.py draws alike).
    ``video_dir`` records every episode there as an MP4 (rendering ``rgb_array`` frames);
    ``render_mode="human"`` shows them in a window instead. ``env_options`` build the env as
    training did (Atari preprocessing, time limits); an Atari episode is a whole game.
    ``numpy_acting`` picks greedy actions with a numpy forward where the network allows it.
    ``action_mask`` (the run's --action-mask, decided on the env's first reset: envs.mask_source):
    with masks, both the greedy and the random actions are legal ones. Greedy actions come from
    agents.acting.greedy_step, as in training."""
    env = make_env(env_spec, render_mode="rgb_array" if video_dir is not None else render_mode, options=env_options)
    if video_dir is not None:
        env = record_video(env, video_dir, episodes=episodes, name_prefix=env_file_name(env_spec))
    rng = np.random.default_rng(seed)
    was_training = q_network.training
    q_network.eval()
    # A recurrent network (agents.recurrent) carries its state through each episode, from its initial state.
    recurrent = is_recurrent(q_network)
    # The same greedy actions as the torch forward, ~10x cheaper for an MLP on the CPU.
    numpy_greedy = numpy_greedy_policy(q_network) if numpy_acting and not recurrent else None
    returns, lengths = [], []
    try:
        n_actions = action_count(env.action_space)
        observation, info = env.reset(seed=seed)
        masked = mask_source(env, action_mask, info, env_spec)
        for _ in range(episodes):
            episode_return, length, done = 0.0, 0, False
            state = as_recurrent(q_network).initial_state(1) if recurrent else None
            while not done:
                legal_1A = legal_of(info, n_actions, env_spec, length) if masked else None
                explore = rng.random() < epsilon
                # A recurrent network steps even when exploring: its state follows the episode.
                if recurrent or not explore:  # one_batch: Discrete observations are Python ints, Dicts by key
                    observation_1 = one_batch(observation)
                    greedy_1, state = greedy_step(
                        q_network, observation_1, state, legal_1A, device=device, numpy_greedy=numpy_greedy
                    )
                if explore:
                    action = explore_action(rng, n_actions, None if legal_1A is None else legal_1A[0])
                else:
                    action = int(greedy_1[0])
                observation, reward, terminated, truncated, info = env.step(action)
                episode_return += float(reward)
                length += 1
                done = terminated or truncated
            returns.append(episode_return)
            lengths.append(length)
            observation, info = env.reset()
    finally:
        env.close()
        q_network.train(was_training)
    return EvalResult(returns=returns, lengths=lengths)


def legal_of(info: dict, n_actions: int, env_spec: str, episode_step: int) -> np.ndarray:
    """The action mask of one env's current observation, bool [1, A], checked (envs.masks): one
    with no legal action in a state the episode goes on from is a MaskError."""
    if MASK_KEY not in info:
        raise MaskError(
            f"env {env_spec!r} gave no info['{MASK_KEY}'] at episode step {episode_step:,} of an evaluation"
        )
    legal_1A = legal_rows(np.asarray(info[MASK_KEY])[None], n_actions, env_spec)
    check_some_legal(legal_1A, np.zeros(1, dtype=bool), env_spec, episode_step)
    return legal_1A


def evaluate_and_save(
    run: CheckpointedRun,
    log: MetricLog,
    count: Counters,
    progress: Progress,
    started: float,
    on_evaluation: EvaluationCallback | None,
) -> tuple[EvalResult, str | None]:
    """A periodic evaluation of training (training.loop and the distributed learner): the
    networks checked finite, then greedy play on a separate env, seeded as ``evaluate.py RUN_DIR``
    seeds it; logged (with the wall time since ``started``), shown in the progress line, the model
    saved as latest, and as best if it is, and the result passed to ``on_evaluation``. Returns the
    result and the callback's reason to stop, if it gave one."""
    config, agent, writer, step = run.config, run.agent, log.writer, count.env_steps
    check_finite(agent, log, step)
    game = game_of(config.env_id)
    if game is not None:  # win/draw/loss rates against scripted players; the mean return is vs random
        report = game_report(
            agent.q_network,
            game,
            games=config.eval_episodes,
            seed=config.seed + EVAL_SEED_OFFSET,
            epsilon=config.eval_epsilon,
            device=run.device,
        )
        for tag, rate in report_scalars(report).items():
            writer.add_scalar(tag, rate, step)
        result = report_eval_result(report)
    else:
        result = evaluate_policy(
            agent.q_network,
            config.env_id,
            episodes=config.eval_episodes,
            seed=config.seed + EVAL_SEED_OFFSET,
            epsilon=config.eval_epsilon,
            device=run.device,
            env_options=EnvOptions.of(config),
            numpy_acting=config.numpy_acting,
            action_mask=config.action_mask,
        )
    writer.add_scalar("eval/mean_return", result.mean, step)
    writer.add_scalar("eval/std_return", result.std, step)
    writer.add_scalar("eval/mean_length", float(np.mean(result.lengths)), step)
    q_network_state = agent.q_network.state_dict()
    save_model(run.run_dir / "model_latest.pt", q_network_state, env_step=step, eval_mean_return=result.mean)
    if count.best_eval_mean is None or result.mean > count.best_eval_mean:
        count.best_eval_mean = result.mean
        save_model(run.run_dir / "model_best.pt", q_network_state, env_step=step, eval_mean_return=result.mean)
    progress.set_status(eval=f"{result.mean:.1f}")
    writer.add_scalar("eval/elapsed_seconds", time.perf_counter() - started, step)
    return result, stop_requested(on_evaluation, step, result.mean)


def load_run(
    run_dir: str | Path, *, model: str = "latest", device: torch.device, trust_imports: bool = False
) -> tuple[Config, nn.Module]:
    """The config and Q-network saved in a run directory. A ``module:Name`` env id or network in
    its config is imported only with ``trust_imports`` (configs.trust), and never from inside the
    run directory."""
    run_dir = find_run_dir(run_dir)
    config_path = run_dir / "config.yaml"
    config = load_config(config_path)
    check_run_imports(config_to_dict(config), run_dir, trust_imports=trust_imports)
    model_path = run_dir / MODEL_FILES[model] if model in MODEL_FILES else Path(model)
    payload = load_model(model_path)
    env = make_env(config.env_id, options=EnvOptions.of(config))
    parts = input_parts(env.observation_space)  # dictionary observations: one input per key
    observation_shape, _ = observation_layout(env.observation_space) if parts is None else ((), None)
    n_actions = action_count(env.action_space)
    env.close()
    q_network = build_network(
        config,
        observation_shape,
        n_actions,
        observation_states=observation_states(env.observation_space),
        observation_parts=parts,
    )
    try:
        check_module_state(q_network, payload.get("q_network"), "its q_network")
    except ValueError as error:  # how the check reports a misfit: keys, shapes, dtypes, NaN
        raise UserError(f"{model_path} does not fit the network in {config_path}: {str(error)[:200]}") from None
    q_network.load_state_dict(payload["q_network"])
    return config, q_network.to(device)


def main(argv: list[str] | None = None) -> int:
    return run_command(parse_args(argv))


def run_command(args: argparse.Namespace) -> int:
    """Do what parsed evaluate.py arguments ask: one line and exit code 2 for a user's mistake."""
    settle_import_path({})  # a run directory's names: never from the current directory
    return report_user_errors("evaluate.py", args, lambda: _evaluate_command(args))


def _evaluate_command(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    if args.epsilon is not None and not 0.0 <= args.epsilon <= 1.0:
        raise ConfigError(f"--epsilon must be in [0, 1], got {args.epsilon}")
    if args.seed is not None and args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    if args.video is not None:
        require_moviepy()
    if args.render:
        require_display()
    device = resolve_device(args.device)
    set_torch_threads(1)
    config, q_network = load_run(args.run_dir, model=args.model, device=device, trust_imports=args.trust_imports)
    seed = config.seed + EVAL_SEED_OFFSET if args.seed is None else args.seed
    epsilon = config.eval_epsilon if args.epsilon is None else args.epsilon
    game = game_of(config.env_id)
    if game is not None:
        return _evaluate_game(args, config, q_network, game, seed=seed, epsilon=epsilon, device=device)
    result = evaluate_policy(
        q_network,
        config.env_id,
        episodes=args.episodes,
        seed=seed,
        epsilon=epsilon,
        device=device,
        render_mode="human" if args.render else None,
        video_dir=args.video,
        env_options=EnvOptions.of(config),
        numpy_acting=config.numpy_acting,
        action_mask=config.action_mask,
    )
    human = human_stream(args.json)  # stderr while the JSON goes to stdout
    print(
        f"{config.env_id}: mean return {result.mean:.2f} ± {result.std:.2f} over {args.episodes} episodes "
        f"(min {min(result.returns):.2f}, max {max(result.returns):.2f}; seed {seed}, epsilon {epsilon})",
        file=human,
    )
    if args.video is not None:
        print(f"video: {args.episodes} episodes recorded as MP4 files in {args.video}", file=human)
    if args.json:
        summary = {
            "mean_return": result.mean,
            "std_return": result.std,
            "returns": result.returns,
            "episodes": args.episodes,
            "lengths": result.lengths,
            "seed": seed,
            "epsilon": epsilon,
            "env_id": config.env_id,
            "run_dir": str(args.run_dir),
            "model": args.model,
        }
        write_json(args.json, summary)
    return 0


def _evaluate_game(
    args: argparse.Namespace,
    config: Config,
    q_network: nn.Module,
    game: str,
    *,
    seed: int,
    epsilon: float,
    device: torch.device,
) -> int:
    """A two-player game's evaluation: --episodes games in each seat against each scripted player
    (training.games.game_report); the mean return is against the random player, as in training."""
    if args.video is not None or args.render:
        raise ConfigError(f"env {config.env_id} is a two-player game, which evaluate.py does not render or record")
    report = game_report(q_network, game, games=args.episodes, seed=seed, epsilon=epsilon, device=device)
    result = report_eval_result(report)
    human = human_stream(args.json)
    print(
        f"{config.env_id}: mean return vs random {result.mean:.2f} over {args.episodes} games per seat "
        f"(seed {seed}, epsilon {epsilon})",
        file=human,
    )
    for line in report_lines(report):
        print(f"  {line}", file=human)
    if args.json:
        summary = {
            "mean_return": result.mean,
            "std_return": result.std,
            "games_per_seat": args.episodes,
            "games": report_json(report),
            "seed": seed,
            "epsilon": epsilon,
            "env_id": config.env_id,
            "run_dir": str(args.run_dir),
            "model": args.model,
        }
        write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    sys.exit(run_command(ARGS))
