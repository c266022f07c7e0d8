"""Tic-tac-toe by self-play (issue 23's target: after training, over 1,000 games in each seat, no
loss against the random player nor against the perfect minimax player).

    python benchmarks/games.py                              # 3 seeds, the preset's budget
    python benchmarks/games.py --seeds 1 --budget 3000 --games 20 --out /tmp/games.json   # a smoke run

Each seed trains configs/dqn/tictactoe_v3.yaml (self-play against its own snapshots; --budget
overrides total_steps) under runs/bench/, then its final network (model_latest.pt) plays --games
games in each seat against the uniformly random, the one-ply and the minimax player
(training.games.game_report, evaluate.py's evaluation, seeded alike). Also recorded per seed: the
first periodic evaluation step with no loss against minimax in either seat (the periodic
evaluations play the preset's eval_episodes games per seat), and the training wall-clock time.
Prints a table, writes benchmarks/results/games_tictactoe.json (or --out).
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

ENV = "pettingzoo:tictactoe_v3"
GAME = "tictactoe_v3"
PLAYERS = ("random", "one_ply", "minimax")
GAME_SEED = 123_456  # the final evaluation's seed, apart from training's and the periodic evaluations'


def run_one(job: tuple[dict, str, int]) -> dict:
    overrides, run_dir, games = job
    import torch  # imported in the worker process

    from dqn_family import train
    from dqn_family.evaluate import load_run
    from dqn_family.training.games import game_report, report_json

    config = resolve_config({**overrides, "run_dir": run_dir, "progress": False}, None)
    result = train.train(config)
    _, q_network = load_run(run_dir, device=torch.device("cpu"))
    started = time.perf_counter()
    report = game_report(q_network, GAME, games=games, seed=GAME_SEED, device="cpu")
    losses = [read_scalars(run_dir, f"eval/vs_minimax/seat{seat}/loss_rate") for seat in (0, 1)]
    perfect = [step for (step, seat0), (_, seat1) in zip(*losses) if seat0 == 0 and seat1 == 0]
    return {
        "seed": config.seed,
        "run_dir": run_dir,
        "total_steps": config.total_steps,
        "train_seconds": result.seconds,
        "first_eval_without_minimax_loss": perfect[0] if perfect else None,
        "games_per_seat": games,
        "games": report_json(report),
        "play_seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="Seeds 1..N (default 3).")
    parser.add_argument("--budget", type=int, default=None, help="Env steps per run (default: the preset's).")
    parser.add_argument("--games", type=int, default=1_000, help="Games per seat per player after training.")
    parser.add_argument("--workers", type=int, default=1, help="Runs in parallel (default 1).")
    parser.add_argument("--out", default="benchmarks/results/games_tictactoe.json")
    args = parser.parse_args()
    if args.seeds < 1 or args.workers < 1 or args.games < 1 or (args.budget is not None and args.budget < 100):
        parser.error("--seeds, --workers and --games must be >= 1 and --budget >= 100")

    stamp = time.strftime("%Y%m%d-%H%M%S")
    base: dict = {"env_id": ENV, "checkpoint_every": 0}
    if args.budget is not None:
        base["total_steps"] = args.budget
    jobs = [
        ({**base, "seed": seed}, f"runs/bench/games_{GAME}__s{seed}__{stamp}", args.games)
        for seed in range(1, args.seeds + 1)
    ]
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(run_one, jobs)

    rows = [
        [r["seed"], f"{r['train_seconds']:.0f}", r["first_eval_without_minimax_loss"] or "never"]
        + [f"{r['games'][player][f'seat{seat}']['losses']}" for player in PLAYERS for seat in (0, 1)]
        for r in results
    ]
    print(f"\n{ENV}: {args.games:,} games per seat after training; losses by player and seat")
    print_table(
        ["seed", "train s", "first eval w/o minimax loss"]
        + [f"{player} s{seat}" for player in PLAYERS for seat in (0, 1)],
        rows,
    )
    resolved = resolve_config(dict(base))
    write_json(
        args.out,
        {
            "env": ENV,
            "total_steps": resolved.total_steps,
            "preset": "configs/dqn/tictactoe_v3.yaml",
            "games_per_seat": args.games,
            "target": "0 losses against random and against minimax in each seat",
            "met": [
                all(r["games"][p][f"seat{s}"]["losses"] == 0 for p in ("random", "minimax") for s in (0, 1))
                for r in results
            ],
            "results": results,
            "machine": machine_info(),
        },
    )


if __name__ == "__main__":
    main()
