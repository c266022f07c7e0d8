"""Memory stability: this process's RSS after 1,000,000 CartPole env steps with a full replay
buffer, against its RSS when the buffer first filled. Target: within 5%.

    python benchmarks/memory.py [--total-steps 1000000] [--buffer-size 100000] [--json PATH]

Trains in this process through ``train.train`` with the usual logging (every 10,000 steps),
evaluation (every 100,000) and checkpoints (every 100,000), and learning kept light (one gradient
step every ``--train-frequency`` env steps) so that the run takes minutes. RSS is read from
``/proc/self/statm`` (Linux) at every log, by wrapping ``MetricLog.flush``: measurement only, the
loop is unchanged. The replay arrays are allocated zeroed, so their pages become resident as the
buffer fills; from then on nothing should grow. Prints the samples and a summary.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table, write_json  # noqa: E402
from dqn_family import train  # noqa: E402
from dqn_family.configs import Config  # noqa: E402

PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_MIB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total-steps", type=int, default=1_000_000)
    parser.add_argument("--buffer-size", type=int, default=100_000)
    parser.add_argument("--train-frequency", type=int, default=50, help="Env steps per gradient step (light learning).")
    parser.add_argument("--json", metavar="PATH", default=None, help="Also write the samples and summary here.")
    args = parser.parse_args()
    if not Path("/proc/self/statm").exists():
        raise SystemExit("memory.py reads /proc/self/statm: it runs on Linux only")

    samples: list[tuple[int, float]] = []
    flush = train.MetricLog.flush

    def measuring_flush(self, step: int, epsilon: float):
        samples.append((step, rss_mib()))
        return flush(self, step, epsilon)

    train.MetricLog.flush = measuring_flush
    with tempfile.TemporaryDirectory(prefix="memory_") as folder:
        config = Config(
            env_id="CartPole-v1",
            total_steps=args.total_steps,
            buffer_size=args.buffer_size,
            learning_starts=10_000,
            train_frequency=args.train_frequency,
            batch_size=64,
            hidden_sizes=(64, 64),
            log_frequency=10_000,
            eval_frequency=100_000,
            eval_episodes=5,
            checkpoint_every=100_000,
            progress=False,
            device="cpu",
            run_dir=str(Path(folder) / "run"),
        )
        result = train.train(config)

    full = next((rss for step, rss in samples if step >= args.buffer_size), None)
    after = [rss for step, rss in samples if step >= args.buffer_size]
    if full is None:
        raise SystemExit("the buffer never filled: give more --total-steps than --buffer-size")
    summary = {
        "env_steps": result.env_steps,
        "buffer_size": args.buffer_size,
        "rss_buffer_full_mib": round(full, 1),
        "rss_end_mib": round(samples[-1][1], 1),
        "rss_max_after_full_mib": round(max(after), 1),
        "growth_percent": round(100 * (samples[-1][1] - full) / full, 2),
        "max_growth_percent": round(100 * (max(after) - full) / full, 2),
        "seconds": round(result.seconds, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": f"python benchmarks/memory.py --total-steps {args.total_steps} "
        f"--buffer-size {args.buffer_size} --train-frequency {args.train_frequency}",
    }
    every = max(1, len(samples) // 20)
    print_table(["env step", "RSS (MiB)"], [[f"{step:,}", f"{rss:.1f}"] for step, rss in samples[::every]])
    print(
        f"RSS when the buffer filled (step {args.buffer_size:,}): {full:.1f} MiB; after {result.env_steps:,} steps: "
        f"{samples[-1][1]:.1f} MiB ({summary['growth_percent']:+.2f}%, max after filling "
        f"{summary['max_growth_percent']:+.2f}%); target: within 5%"
    )
    if args.json:
        write_json(args.json, {"summary": summary, "samples": samples})
    return 0 if abs(summary["growth_percent"]) <= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
