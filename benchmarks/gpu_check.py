"""The GPU path end to end, in a few minutes: ``bash benchmarks/gpu_check.sh`` runs this on CUDA.

    python benchmarks/gpu_check.py [--device cuda] [--out benchmarks/results/gpu_check.json]
    python benchmarks/gpu_check.py --device cpu --dry       # the same checks, tiny, on the CPU

1. Batches: replay with a device copy (``device_replay``) gathers byte for byte the batches the
   host buffer gathers, filled with the same real transitions of CartPole-v1 and ALE/Breakout-v5
   (frame storage) and sampled with the same seed (as tests/replay/test_device.py checks on the CPU).
2. Training: short runs with ``--device cuda``: CartPole-v1 and ALE/Breakout-v5 (DQN presets,
   shortened), eager and ``--compile`` (CUDA graphs), device replay on and off, fp32, bf16 and fp16
   (fp16 eager only: the compiled step has no gradient scaler). Each must finish with finite
   losses; its env steps per second are recorded.

Writes JSON with the GPU's name, torch's version, the batch checks and one entry per variant.
Exit code 1 if any check fails (the JSON says which), 2 when the device is missing.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.common import print_table, write_json  # noqa: E402
from dqn_family.analysis.runs import read_scalars  # noqa: E402
from dqn_family.configs import resolve_config  # noqa: E402
from dqn_family.envs import AutoresetTracker, EnvOptions, make_vector_env  # noqa: E402
from dqn_family.training import build_replay  # noqa: E402

ENVS = ("CartPole-v1", "ALE/Breakout-v5")
# (name, compile, device_replay, precision)
VARIANTS = (
    ("eager fp32", False, True, "fp32"),
    ("eager fp32 host replay", False, False, "fp32"),
    ("eager bf16", False, True, "bf16"),
    ("eager fp16", False, True, "fp16"),
    ("compiled fp32", True, True, "fp32"),
    ("compiled bf16", True, True, "bf16"),
)


def _as_bytes(value: object) -> bytes | None:
    """A batch field's bytes, wherever it lives (None stays None)."""
    if isinstance(value, torch.Tensor):
        return value.cpu().numpy().tobytes()
    return None if value is None else np.asarray(value).tobytes()


def short_config(env_id: str, device: str, steps: int, run_dir: Path, **overrides):
    """The env's DQN preset, shortened: learning from steps // 4, a small buffer, no evaluation."""
    return resolve_config(
        {
            "env_id": env_id,
            "device": device,
            "total_steps": steps,
            "learning_starts": steps // 4,
            "buffer_size": max(steps, 1000),
            "epsilon_decay_steps": steps // 2,
            "eval_frequency": 0,
            "checkpoint_every": 0,
            "progress": False,
            "log_frequency": max(steps // 10, 1),
            "run_dir": str(run_dir),
            **overrides,
        }
    )


def same_batches(env_id: str, device: torch.device, steps: int, batches: int = 20) -> dict:
    """Fill a host buffer and a device-copy buffer with the same real transitions (random play);
    compare ``batches`` samples byte for byte."""
    config = short_config(env_id, str(device), steps, Path("unused"))
    envs = make_vector_env(env_id, 1, mode="sync", options=EnvOptions.of(config))
    space = envs.single_observation_space
    host, mirrored = (build_replay(config, space.shape, space.dtype, seed=7, device=d) for d in (None, device))
    autoreset, rng = AutoresetTracker(1), np.random.default_rng(0)
    observations, _ = envs.reset(seed=0)
    try:
        for _ in range(steps):
            actions = rng.integers(envs.single_action_space.n, size=1)
            next_observations, rewards, terminated, truncated, _ = envs.step(actions)
            real = autoreset.real_steps(terminated, truncated)
            for buffer in (host, mirrored):
                buffer.add(
                    observations[real],
                    actions[real],
                    rewards[real],
                    next_observations[real],
                    terminated[real],
                    truncated[real],
                    config.gamma,
                )
            observations = next_observations
    finally:
        envs.close()
    differing = []
    for _ in range(batches):
        expected, actual = host.sample(32).to_torch("cpu"), mirrored.sample(32)
        for name, value in expected.__dict__.items():
            other = actual.__dict__[name]
            if _as_bytes(value) != _as_bytes(other):
                differing.append(name)
    return {
        "env": env_id,
        "transitions": len(host),
        "batches": batches,
        "ok": not differing,
        "differing_fields": sorted(set(differing)),
    }


def train_variant(env_id: str, name: str, device: str, steps: int, folder: Path, **options) -> dict:
    from dqn_family import train

    run_dir = folder / f"{env_id.replace('/', '_')}__{name.replace(' ', '_')}"
    started = time.perf_counter()
    result = train.train(short_config(env_id, device, steps, run_dir, **options))
    wall = time.perf_counter() - started
    losses = [value for _, value in read_scalars(run_dir, "losses/td_loss")]  # logged every steps // 10
    return {
        "env": env_id,
        "variant": name,
        **options,
        "env_steps": result.env_steps,
        "updates": result.updates,
        "steps_per_second": round(result.env_steps / max(result.seconds, 1e-9), 1),
        "wall_seconds": round(wall, 1),
        "losses_logged": len(losses),
        "last_loss": losses[-1] if losses else None,
        "ok": bool(losses) and all(math.isfinite(value) for value in losses),
    }


def check_device(device: str) -> str:
    """The device's name; exit 2 with one line when it is missing."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            print(
                f"gpu_check.py: error: CUDA is not available to torch {torch.__version__} on this machine "
                "(no GPU, or a CPU-only torch build); run with --device cpu --dry for the CPU version",
                file=sys.stderr,
            )
            raise SystemExit(2)
        return torch.cuda.get_device_name(torch.device(device))
    return "cpu"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dry", action="store_true", help="Tiny runs (a few hundred steps) for a smoke test.")
    parser.add_argument("--envs", nargs="+", default=list(ENVS), choices=ENVS)
    parser.add_argument("--variants", nargs="+", default=[v[0] for v in VARIANTS], choices=[v[0] for v in VARIANTS])
    parser.add_argument(
        "--steps", type=int, default=None, help="Env steps per run (default 4000 CartPole, 3000 Breakout; --dry 200)."
    )
    parser.add_argument("--out", default="benchmarks/results/gpu_check.json")
    args = parser.parse_args(argv)
    gpu = check_device(args.device)
    print(f"device: {args.device} ({gpu}), torch {torch.__version__}", flush=True)
    batches = [same_batches(env_id, torch.device(args.device), 300 if args.dry else 2000) for env_id in args.envs]
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for env_id in args.envs:
            steps = args.steps or (200 if args.dry else (4000 if env_id == "CartPole-v1" else 3000))
            for name, compiled, device_replay, precision in VARIANTS:
                if name in args.variants:
                    runs.append(
                        train_variant(
                            env_id,
                            name,
                            args.device,
                            steps,
                            Path(folder),
                            compile=compiled,
                            device_replay=device_replay,
                            precision=precision,
                        )
                    )
                    print(runs[-1], flush=True)
    ok = all(check["ok"] for check in batches + runs)
    print_table(
        ["env", "variant", "steps/s", "updates", "last loss", "ok"],
        [
            [
                r["env"],
                r["variant"],
                f"{r['steps_per_second']:,.0f}",
                r["updates"],
                f"{r['last_loss']:.4g}" if r["last_loss"] is not None else "-",
                r["ok"],
            ]
            for r in runs
        ],
    )
    for check in batches:
        print(f"same batches with and without device replay, {check['env']}: {check['ok']} {check['differing_fields']}")
    write_json(
        args.out,
        {
            "device": args.device,
            "gpu": gpu,
            "torch": torch.__version__,
            "dry": args.dry,
            "ok": ok,
            "same_batches": batches,
            "runs": runs,
        },
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
