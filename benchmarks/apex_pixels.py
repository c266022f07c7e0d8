"""Ape-X on pixels: what a frame-replay buffer holds per transition when N actors fill it, beside one
process filling it (issue 22's target: within 5%).

    python benchmarks/apex_pixels.py                                  # ALE/Breakout-v5, 50,000 transitions
    python benchmarks/apex_pixels.py --env ALE/Pong-v5 --transitions 20000 --actors 4

Both sides use the project's own parts with a uniformly random policy (epsilon 1, as at the start
of training; acting does not change what is stored per transition), and fill a buffer of
``--transitions`` slots until 1.5 times that many were added (so the ring has wrapped):

- one process: the run's vector envs stepped by training.loop's Stepper into the buffer
  training.buffers.build_replay makes for the preset (frame replay, one frame stream);
- distributed: ``--actors`` ActorCores (distributed/actor.py, what each Ray actor runs) send to a
  ReplayServer (what the replay actor runs), their sends interleaved one after another as they
  reach the replay actor, each actor a frame stream of its own. (No Ray: storage, not transport,
  is measured.)

Per side: the bytes the buffer allocated per slot; the distinct frames its stored transitions use
(live frames) per stored transition; and the stored bytes per transition, counting live frames and
each slot's frame numbers and fields. Writes benchmarks/results/apex_pixels.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine_info, print_table, write_json  # noqa: E402
from dqn_family.configs import Config, resolve_config  # noqa: E402
from dqn_family.distributed.actor import ActorCore  # noqa: E402
from dqn_family.distributed.replay_server import ReplayServer  # noqa: E402
from dqn_family.envs import EnvOptions, make_vector_env, observation_layout  # noqa: E402
from dqn_family.replay import FrameStackStorage, ReplayBuffer  # noqa: E402
from dqn_family.training.buffers import build_replay  # noqa: E402
from dqn_family.training.loop import Stepper, adder_of  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "apex_pixels.json"


class RandomActing:
    """Uniform actions, no state: what epsilon 1 does, without a network."""

    def __init__(self, n_actions: int, seed: int) -> None:
        self.n_actions, self.rng = n_actions, np.random.default_rng(seed)

    def initial_state(self, count: int) -> np.ndarray:
        return np.zeros((count, 0), dtype=np.float32)

    def act(self, observations: np.ndarray, states: np.ndarray, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
        return self.rng.integers(self.n_actions, size=len(observations)), states


def measure(buffer: ReplayBuffer, seconds: float, added: int) -> dict:
    storage = buffer.storage
    assert isinstance(storage, FrameStackStorage)
    frame_bytes = storage.frames[0].nbytes
    slot_bytes = (buffer.nbytes - storage.frames.nbytes) / buffer.capacity  # frame numbers, fields, bookkeeping
    return {
        "stored": len(buffer),
        "added": added,
        "allocated_bytes_per_slot": buffer.nbytes / buffer.capacity,
        "live_frames": storage.live_frames,
        "live_frames_per_transition": storage.live_frames / len(buffer),
        "stored_bytes_per_transition": (storage.live_frames * frame_bytes) / len(buffer) + slot_bytes,
        "seconds": seconds,
    }


def single_process(config: Config, target: int) -> dict:
    envs = make_vector_env(config.env_id, config.num_envs, mode=config.vector_mode, options=EnvOptions.of(config))
    try:
        shape, dtype = observation_layout(envs.single_observation_space)
        buffer = build_replay(config, shape, dtype, seed=config.seed)
        assert isinstance(buffer, ReplayBuffer)
        acting = RandomActing(int(envs.single_action_space.n), config.seed)  # type: ignore[attr-defined]
        stepper = Stepper(config, envs, acting, adder_of(config, buffer))
        stepper.reset(config.seed)
        started, added = time.perf_counter(), 0
        while added < target:
            taken, _ = stepper.step(1.0)
            added += taken
        return measure(buffer, time.perf_counter() - started, added)
    finally:
        envs.close()


def distributed(config: Config, target: int) -> dict:
    cores = [ActorCore(config, i, env_seed=config.seed + i * config.num_envs) for i in range(config.actors)]
    try:
        space = cores[0].envs.single_observation_space
        shape, dtype = observation_layout(space)
        server = ReplayServer(config, observation_shape=shape, observation_dtype=dtype, seed=config.seed)
        started = time.perf_counter()
        while server.added < target:
            for core in cores:  # the replay actor takes sends one at a time, in the order they arrive
                _, data = core.collect(0, -1, lambda: {})
                server.add(data)
        assert isinstance(server.buffer, ReplayBuffer)
        return {**measure(server.buffer, time.perf_counter() - started, server.added), "streams": config.actors}
    finally:
        for core in cores:
            core.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="ALE/Breakout-v5")
    parser.add_argument("--transitions", type=int, default=50_000, help="Buffer slots (buffer_size).")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    config = resolve_config({"env_id": args.env, "buffer_size": args.transitions, "seed": args.seed, "progress": False})
    target = int(1.5 * args.transitions)
    results = {
        "single_process": single_process(config, target),
        f"actors_{args.actors}": distributed(dataclasses.replace(config, actors=args.actors), target),
    }
    one, many = results["single_process"], results[f"actors_{args.actors}"]
    ratio = many["stored_bytes_per_transition"] / one["stored_bytes_per_transition"]
    rows = [
        [
            name,
            f"{r['stored']:,}",
            f"{r['allocated_bytes_per_slot']:,.0f}",
            f"{r['live_frames_per_transition']:.4f}",
            f"{r['stored_bytes_per_transition']:,.0f}",
            f"{r['seconds']:.0f}",
        ]
        for name, r in results.items()
    ]
    print(f"\n{args.env}, a {args.transitions:,}-slot frame replay filled with {target:,} random-policy transitions")
    print_table(["side", "stored", "allocated B/slot", "live frames/transition", "stored B/transition", "s"], rows)
    print(f"stored bytes per transition, actors {args.actors} / one process: {ratio:.4f}")
    write_json(
        RESULTS,
        {
            "env": args.env,
            "transitions": args.transitions,
            "actors": args.actors,
            "seed": args.seed,
            "ratio": ratio,
            "results": results,
            "machine": machine_info(),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
