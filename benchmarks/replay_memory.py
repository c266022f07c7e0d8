"""Memory and speed of replay with stacked-frame storage, on Atari-sized frame stacks.

    python benchmarks/replay_memory.py [--capacity 1000000] [--output PATH]

Builds a ReplayBuffer with ``stacked_frames=True`` for (4, 84, 84) uint8 observations and fills it
completely from a synthetic stream: one env, 1-step transitions, episodes of 900-1100 steps,
random frames stacked as Gymnasium's FrameStackObservation(4) stacks them (the reset frame padded
into the first stack). Reports the bytes allocated (``nbytes``, and ``replay_bytes`` computed
without allocating), bytes per transition against the 2 x 4 x 7056 of storing whole observations,
the process RSS after filling (VmRSS), and the time of each add() and of sample(32) and
sample(256) in microseconds. Needs about 7.2 GB of memory at the default capacity.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, time_us, write_json  # noqa: E402
from dqn_family.replay import ReplayBuffer, replay_bytes  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "replay_memory.json"
STACK, FRAME_SHAPE = 4, (84, 84)


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/status (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def fill(buffer: ReplayBuffer, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Add ``capacity`` transitions of a frame-stacked random stream; the time of each add (us)
    and the number of episodes begun."""
    frame_bytes = int(np.prod(FRAME_SHAPE))
    new_frame = lambda: np.frombuffer(rng.bytes(frame_bytes), np.uint8).reshape(FRAME_SHAPE)  # noqa: E731
    observation = np.empty((STACK, *FRAME_SHAPE), np.uint8)
    action, reward, discount = np.zeros(1, np.int64), np.zeros(1, np.float32), 0.99
    times_us, steps_left, episodes = np.empty(buffer.capacity), 0, 0
    for t in range(buffer.capacity):
        if steps_left == 0:  # reset: the first frame fills the whole stack
            observation[:] = new_frame()
            steps_left, episodes = int(rng.integers(900, 1101)), episodes + 1
        next_observation = np.concatenate([observation[1:], new_frame()[None]])
        steps_left -= 1
        terminated = np.array([steps_left == 0])
        start = time.perf_counter()
        buffer.add(observation[None], action, reward, next_observation[None], terminated, np.zeros(1, bool), discount)
        times_us[t] = (time.perf_counter() - start) * 1e6
        observation = next_observation
    return times_us, episodes


def summary(times: np.ndarray) -> dict[str, float]:
    return {
        "median": round(float(np.median(times)), 1),
        "mean": round(float(times.mean()), 1),
        "p90": round(float(np.percentile(times, 90)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--frame-window", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1000, help="sample() calls timed per batch size")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    shape, dtype = (STACK, *FRAME_SHAPE), np.dtype(np.uint8)
    predicted = replay_bytes(
        capacity=args.capacity,
        observation_shape=shape,
        observation_dtype=dtype,
        stacked_frames=True,
        frame_window=args.frame_window,
    )
    rss_before = rss_bytes()
    buffer = ReplayBuffer(
        capacity=args.capacity,
        observation_shape=shape,
        observation_dtype=dtype,
        seed=0,
        stacked_frames=True,
        frame_window=args.frame_window,
    )
    started = time.perf_counter()
    add_us, episodes = fill(buffer, np.random.default_rng(0))
    fill_seconds = time.perf_counter() - started
    rss_after = rss_bytes()
    sample_us = {size: time_us(functools.partial(buffer.sample, size), args.repeats) for size in (32, 256)}

    naive_per_transition = 2 * STACK * int(np.prod(FRAME_SHAPE))
    results = {
        "capacity": args.capacity,
        "observation_shape": list(shape),
        "frame_window": args.frame_window,
        "episodes": episodes,
        "frame_count": len(buffer.storage.frames),
        "live_frames": buffer.storage.live_frames,
        "total_bytes": buffer.nbytes,
        "replay_bytes_predicted": predicted,
        "bytes_per_transition": round(buffer.nbytes / args.capacity, 1),
        "naive_observation_bytes_per_transition": naive_per_transition,
        "naive_total_bytes": replay_bytes(capacity=args.capacity, observation_shape=shape, observation_dtype=dtype),
        "rss_bytes_before_build": rss_before,
        "rss_bytes_after_fill": rss_after,
        "rss_bytes_per_transition": round((rss_after - rss_before) / args.capacity, 1),
        "fill_seconds": round(fill_seconds, 1),
        "add_us": summary(add_us),
        "sample_us": {str(size): summary(times) for size, times in sample_us.items()},
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    print(f"capacity {args.capacity:,} of {shape} uint8, {episodes} episodes, filled in {fill_seconds:,.1f} s")
    print_table(
        ["measure", "value"],
        [
            ["bytes allocated (nbytes)", f"{buffer.nbytes:,}"],
            ["bytes per transition", f"{results['bytes_per_transition']:,}"],
            ["whole observations, bytes per transition", f"{naive_per_transition:,} (+ 18 of fields)"],
            ["RSS after filling", f"{rss_after:,}"],
            ["RSS growth per transition", f"{results['rss_bytes_per_transition']:,}"],
            ["add() us, median / p90", f"{results['add_us']['median']} / {results['add_us']['p90']}"],
            *[
                [f"sample({size}) us, median / p90", f"{summary(t)['median']} / {summary(t)['p90']}"]
                for size, t in sample_us.items()
            ],
        ],
    )
    write_json(args.output, results)


if __name__ == "__main__":
    main()
