"""Two-player board games by self-play against issue 23's targets, from the games' presets.

- Tic-tac-toe (configs/dqn/tictactoe_v3.yaml): after training, over --games games in each seat, no
  loss against the random player nor against the perfect minimax player.
- Connect four (configs/dqn/connect_four_v3.yaml): a win rate of at least 95% against the random
  player and at least 70% against the one-ply player, in each seat.

    python benchmarks/games.py                                   # tic-tac-toe, 3 seeds
    python benchmarks/games.py --game connect_four_v3 --workers 2
    python benchmarks/games.py --seeds 1 --budget 3000 --games 20 --out /tmp/games.json   # a smoke run

Each seed trains the preset (--budget overrides total_steps) under runs/bench/, then its final
network (model_latest.pt) plays --games games in each seat against each scripted player the game has
(training.games.game_report, evaluate.py's evaluation, seeded alike). Also recorded per seed: the
first periodic evaluation that meets the target (those play the preset's eval_episodes games per
seat, so they are a coarser check) and the training wall-clock time. Prints a table, writes
benchmarks/results/games_<game>.json (or --out).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine_info, print_table, write_json  # noqa: E402
from dqn_family.analysis.runs import read_scalars  # noqa: E402
from dqn_family.configs import resolve_config  # noqa: E402

GAME_SEED = 123_456  # the final evaluation's seed, apart from training's and the periodic evaluations'
# game -> (target in words, {(player, rate): (comparison, bound)} that each seat must meet)
TARGETS: dict[str, tuple[str, dict[tuple[str, str], tuple[str, float]]]] = {
    "tictactoe_v3": (
        "0 losses against random and against minimax in each seat",
        {("random", "loss_rate"): ("<=", 0.0), ("minimax", "loss_rate"): ("<=", 0.0)},
    ),
    "connect_four_v3": (
        "win rate >= 95% against random and >= 70% against one-ply in each seat",
        {("random", "win_rate"): (">=", 0.95), ("one_ply", "win_rate"): (">=", 0.70)},
    ),
}


def meets(game: str, rate_of) -> bool:
    """Whether ``rate_of(player, rate, seat)`` meets the game's target in both seats."""
    return all(
        (rate_of(player, rate, seat) <= bound) if comparison == "<=" else (rate_of(player, rate, seat) >= bound)
        for (player, rate), (comparison, bound) in TARGETS[game][1].items()
        for seat in (0, 1)
    )


def run_one(job: tuple[dict, str, int, str]) -> dict:
    overrides, run_dir, games, game = job
    import torch  # imported in the worker process

    from dqn_family import train
    from dqn_family.evaluate import load_run
    from dqn_family.training.games import game_report, report_json

    config = resolve_config({**overrides, "run_dir": run_dir, "progress": False}, None)
    result = train.train(config)
    _, q_network = load_run(run_dir, device=torch.device("cpu"))
    started = time.perf_counter()
    report = game_report(q_network, game, games=games, seed=GAME_SEED, device="cpu")
    periodic = {
        (player, rate, seat): dict(read_scalars(run_dir, f"eval/vs_{player}/seat{seat}/{rate}"))
        for (player, rate) in TARGETS[game][1]
        for seat in (0, 1)
    }
    steps = sorted(set.intersection(*(set(values) for values in periodic.values())))
    met_at = [step for step in steps if meets(game, lambda p, r, s, step=step: periodic[p, r, s][step])]
    summary = report_json(report)
    return {
        "seed": config.seed,
        "run_dir": run_dir,
        "total_steps": config.total_steps,
        "train_seconds": result.seconds,
        "first_periodic_eval_meeting_target": met_at[0] if met_at else None,
        "games_per_seat": games,
        "games": summary,
        "met": meets(game, lambda p, r, s: summary[p][f"seat{s}"][r]),
        "play_seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="Seeds 1..N (default 3).")
    parser.add_argument("--budget", type=int, default=None, help="Env steps per run (default: the preset's).")
    parser.add_argument("--games", type=int, default=1_000, help="Games per seat per player after training.")
    parser.add_argument("--workers", type=int, default=1, help="Runs in parallel (default 1).")
    parser.add_argument("--game", choices=sorted(TARGETS), default="tictactoe_v3", help="Default tictactoe_v3.")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/games_<game>.json).")
    args = parser.parse_args()
    if args.seeds < 1 or args.workers < 1 or args.games < 1 or (args.budget is not None and args.budget < 100):
        parser.error("--seeds, --workers and --games must be >= 1 and --budget >= 100")

    game, env = args.game, f"pettingzoo:{args.game}"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base: dict = {"env_id": env, "checkpoint_every": 0}
    if args.budget is not None:
        base["total_steps"] = args.budget
    jobs = [
        ({**base, "seed": seed}, f"runs/bench/games_{game}__s{seed}__{stamp}", args.games, game)
        for seed in range(1, args.seeds + 1)
    ]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(run_one, jobs)

    players = list(results[0]["games"])
    rows = [
        [r["seed"], f"{r['train_seconds']:.0f}", r["first_periodic_eval_meeting_target"] or "never", r["met"]]
        + [
            f"{r['games'][player][f'seat{seat}']['wins']}/{r['games'][player][f'seat{seat}']['losses']}"
            for player in players
            for seat in (0, 1)
        ]
        for r in results
    ]
    print(f"\n{env}: {args.games:,} games per seat after training; wins/losses by player and seat")
    print(f"target: {TARGETS[game][0]}")
    print_table(
        ["seed", "train s", "first periodic eval meeting it", "met"]
        + [f"{player} s{seat}" for player in players for seat in (0, 1)],
        rows,
    )
    resolved = resolve_config(dict(base))
    write_json(
        args.out or f"benchmarks/results/games_{game}.json",
        {
            "env": env,
            "total_steps": resolved.total_steps,
            "preset": f"configs/dqn/{game}.yaml",
            "self_play": resolved.self_play,
            "games_per_seat": args.games,
            "target": TARGETS[game][0],
            "met": [r["met"] for r in results],
            "results": results,
            "machine": machine_info(),
        },
    )


if __name__ == "__main__":
    main()
