"""Time prioritized replay on a full buffer: sample + update_priorities, the per-update replay cost.

    python benchmarks/replay_speed.py [--capacity 1000000] [--batch-size 256] [--repeats 2000]

Fills a PrioritizedReplayBuffer with CartPole-sized observations (4 float32), gives every slot a
random priority, then times sample(batch, beta=0.4) and update_priorities(indices, td_errors)
separately and together; the uniform ReplayBuffer.sample is timed alongside for reference.
Reports the median and the 90th percentile in microseconds, prints a table and writes JSON. The
target is under 1 ms per prioritized sample of 256 from 1M.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, time_us, write_json  # noqa: E402
from dqn_family.replay import PrioritizedReplayBuffer, ReplayBuffer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "replay_speed.json"


def fill(buffer: ReplayBuffer, rng: np.random.Generator, chunk: int = 100_000) -> None:
    for start in range(0, buffer.capacity, chunk):
        count = min(chunk, buffer.capacity - start)
        observations = rng.normal(size=(count, 4)).astype(np.float32)
        buffer.add(
            observations,
            rng.integers(0, 2, count),
            np.ones(count),
            observations,
            np.zeros(count, bool),
            np.zeros(count, bool),
            0.99,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capacity", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    prioritized = PrioritizedReplayBuffer(
        capacity=args.capacity, observation_shape=(4,), observation_dtype=np.float32, seed=0
    )
    uniform = ReplayBuffer(capacity=args.capacity, observation_shape=(4,), observation_dtype=np.float32, seed=0)
    fill(prioritized, rng)
    fill(uniform, rng)
    prioritized.update_priorities(np.arange(args.capacity), rng.exponential(size=args.capacity))

    batch_size, beta = args.batch_size, 0.4
    td_errors = rng.normal(size=(args.repeats, batch_size))
    counter = iter(range(10**9))

    def sample_and_update() -> None:
        batch = prioritized.sample(batch_size, beta)
        prioritized.update_priorities(batch.indices, td_errors[next(counter) % args.repeats])

    last_indices = prioritized.sample(batch_size, beta).indices
    timings = {
        "prioritized sample": time_us(lambda: prioritized.sample(batch_size, beta), args.repeats),
        "update_priorities": time_us(lambda: prioritized.update_priorities(last_indices, td_errors[0]), args.repeats),
        "prioritized sample + update": time_us(sample_and_update, args.repeats),
        "uniform sample": time_us(lambda: uniform.sample(batch_size), args.repeats),
    }

    rows = [[name, f"{np.median(t):,.1f}", f"{np.percentile(t, 90):,.1f}"] for name, t in timings.items()]
    print(f"capacity {args.capacity:,}, batch {batch_size}, {args.repeats} repeats, observations 4 x float32")
    print_table(["operation", "median_us", "p90_us"], rows)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    write_json(
        args.output,
        {
            "capacity": args.capacity,
            "batch_size": batch_size,
            "beta": beta,
            "repeats": args.repeats,
            "observation_shape": [4],
            "target_us": 1000.0,
            "results_us": {
                name: {"median": round(float(np.median(t)), 1), "p90": round(float(np.percentile(t, 90)), 1)}
                for name, t in timings.items()
            },
            "load_average_1_5_15": [round(x, 2) for x in load] if load else None,
            "cpu_count": os.cpu_count(),
            "numpy": np.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )


if __name__ == "__main__":
    main()
