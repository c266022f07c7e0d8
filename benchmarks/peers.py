"""Speed side by side with peer implementations, in one invocation (not part of CI).

    python benchmarks/peers.py                                    # peers in ../shared/peers, 3 rounds
    python benchmarks/peers.py --peers /path/to/peers --rounds 5
    python benchmarks/peers.py --steps 12000 --minatar-frames 5000 --minatar-timeout 30 --rounds 1  # smoke

Every run is a whole process with OMP_NUM_THREADS=1 (one torch thread) and no GPU visible. The
runs are interleaved: round r runs each program once, in the order below, with seed r, so a
machine that slows down part-way slows every program alike. Parts:
  cartpole  CartPole-v1, --steps env steps (100,000) at CleanRL dqn.py's settings: ours
            (train.py --config configs/benchmarks/cleanrl_cartpole.yaml), CleanRL's dqn.py
            (with the Gymnasium 1.x patch), Stable-Baselines3 (the peers' sb3_dqn_cartpole.py
            --config cleanrl). Figures: whole-process wall seconds and CPU seconds, and the
            program's own in-loop steps/s (ours: summary.json; CleanRL: its last `SPS:` line;
            SB3: the runner's JSON), each counted from its own start of training.
  minatar   MinAtar Breakout with an update every frame (batch 32): ours with the MinAtar DQN
            preset (configs/dqn/minatar.yaml) for 5,000 + --minatar-frames frames, against the
            MinAtar authors' examples/dqn.py, which has no frame limit and runs for
            --minatar-timeout seconds. Figure: ms per frame after learning starts (frame 5,000
            for both): ours from the TensorBoard `charts/sps` intervals, the authors' from their
            "Time per frame" log lines (cumulative, one every 1,000 episodes).
Peers come from their authors (see the README's Performance section); a missing one is skipped
with a note. Ratios are ours/peer within a round, then the median over rounds.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine_info, print_table, write_json  # noqa: E402
from benchmarks.speed import CLEANRL_CONFIG  # noqa: E402

MINATAR_ENV = "MinAtar/Breakout-v1"
MINATAR_LEARNING_STARTS = 5_000  # frames: the authors' REPLAY_START_SIZE and our preset's learning_starts
EPSILON_DECAY_STEPS = 250_000  # CleanRL's 0.5 x its default 500,000 steps, whatever --steps is

# Our config field -> (CleanRL dqn.py Args field, SB3 DQN argument), for the settings check.
CARTPOLE_FIELDS = {
    "learning_rate": ("learning_rate", "learning_rate"),
    "buffer_size": ("buffer_size", "buffer_size"),
    "gamma": ("gamma", "gamma"),
    "tau": ("tau", "tau"),
    "batch_size": ("batch_size", "batch_size"),
    "target_update_interval": ("target_network_frequency", "target_update_interval"),
    "epsilon_start": ("start_e", "exploration_initial_eps"),
    "epsilon_end": ("end_e", "exploration_final_eps"),
    "learning_starts": ("learning_starts", "learning_starts"),
    "train_frequency": ("train_frequency", "train_freq"),
}
# Our config field -> the MinAtar authors' module constant.
MINATAR_FIELDS = {
    "batch_size": "BATCH_SIZE",
    "buffer_size": "REPLAY_BUFFER_SIZE",
    "gamma": "GAMMA",
    "target_update_interval": "TARGET_NETWORK_UPDATE_FREQ",
    "train_frequency": "TRAINING_FREQ",
    "learning_starts": "REPLAY_START_SIZE",
    "epsilon_end": "END_EPSILON",
    "epsilon_decay_steps": "FIRST_N_FRAMES",
    "learning_rate": "STEP_SIZE",
}
# Differences the check above cannot see (read from the peers' code).
KNOWN_DIFFERENCES = {
    "cartpole": [
        (
            "SB3 (the runner's cleanrl config): Huber loss and gradient-norm clipping at 10 (CleanRL and ours: MSE, "
            "no clipping); a DummyVecEnv with a Monitor wrapper"
        ),
        (
            "CleanRL prints every episode's return and writes two TensorBoard scalars every 100 steps after learning "
            "starts; ours writes scalars every log_frequency steps"
        ),
    ],
    "minatar": [
        "optimizer: the authors' centered RMSprop (lr 2.5e-4, alpha 0.95, eps 0.01); ours Adam (lr 2.5e-4)",
        "actions: the authors' agent chooses among all 6 actions; ours MinAtar/Breakout-v1's minimal set of 3",
        (
            "epsilon: the authors' anneals over the 100,000 frames after the 5,000 start frames; ours over the first "
            "100,000 steps"
        ),
        (
            "the authors' replay is a list of per-transition tensors, sampled with random.sample; their clock starts "
            "after imports and set-up, ours at the loop's start"
        ),
    ],
}


# --- parsing what the programs print (pure; tested in tests/benchmarks/test_peers.py) --------------


def parse_cleanrl_sps(text: str) -> int | None:
    """The last `SPS: N` line CleanRL printed (steps so far / seconds since training started)."""
    values = re.findall(r"^SPS:\s*(\d+)\s*$", text, flags=re.MULTILINE)
    return int(values[-1]) if values else None


def parse_minatar_log(text: str) -> list[tuple[int, float]]:
    """(frame, cumulative seconds per frame) from the authors' dqn.py -v lines
    `... | Frame: 11000 | Time per frame: 0.0012`, in order."""
    pattern = r"\| Frame: (\d+) \| Time per frame: ([0-9.]+(?:[eE][-+]?\d+)?)"
    return [(int(frame), float(seconds)) for frame, seconds in re.findall(pattern, text)]


def ms_per_frame_from_log(points: list[tuple[int, float]], after_frame: int) -> tuple[float, int] | None:
    """(ms per frame, frames) between the first and the last logged point at or after ``after_frame``:
    a point's elapsed time is its frame times its cumulative time per frame. None with fewer than two."""
    points = [(frame, seconds) for frame, seconds in points if frame >= after_frame]
    if len(points) < 2:
        return None
    (first_frame, first_tpf), (last_frame, last_tpf) = points[0], points[-1]
    frames = last_frame - first_frame
    return (last_frame * last_tpf - first_frame * first_tpf) / frames * 1000, frames


def ms_per_frame_from_sps(points: list[tuple[int, float]], after_step: int) -> tuple[float, int] | None:
    """(ms per step, steps) over the logged intervals that start at or after ``after_step``, from
    (step, steps/s over the interval since the previous log) pairs; the first interval starts at 0."""
    seconds, steps, previous = 0.0, 0, 0
    for step, sps in sorted(points):
        if previous >= after_step and sps > 0:
            seconds += (step - previous) / sps
            steps += step - previous
        previous = step
    return (seconds / steps * 1000, steps) if steps else None


def parse_constants(text: str) -> dict[str, float]:
    """Module-level `NAME = number` lines (the MinAtar authors' hyperparameters)."""
    return {name: float(value) for name, value in re.findall(r"^([A-Z_]+)\s*=\s*([0-9.eE+-]+)\s*$", text, re.MULTILINE)}


def parse_dataclass_defaults(text: str, class_name: str) -> dict[str, str]:
    """`field: type = default` lines of one class (CleanRL's Args), defaults as written."""
    body = re.search(rf"^class {class_name}\b.*?:\n(.*?)(?=^\S)", text, re.MULTILINE | re.DOTALL)
    pattern = r"^\s+(\w+):\s*[^=\n]+?=\s*(.+?)\s*$"
    return dict(re.findall(pattern, body.group(1), re.MULTILINE)) if body else {}


def spread(values: list[float | None]) -> dict | None:
    """Median, min and max of the values that exist."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    return {"median": statistics.median(present), "min": min(present), "max": max(present), "n": len(present)}


def round_ratios(ours: list[float | None], peer: list[float | None]) -> dict | None:
    """ours/peer for each round where both exist, and their median."""
    ratios = [a / b for a, b in zip(ours, peer) if a is not None and b]
    return {"per_round": ratios, "median": statistics.median(ratios)} if ratios else None


def mismatches(ours: dict[str, float], peer: dict[str, float], names: dict[str, str]) -> list[str]:
    """'field: ours X, peer Y' for each of our fields whose peer value (named ``names[field]``) differs."""
    out = []
    for field, peer_name in names.items():
        if peer_name not in peer:
            out.append(f"{field}: not found in the peer ({peer_name})")
        elif abs(float(ours[field]) - float(peer[peer_name])) > 1e-9 * max(1.0, abs(float(ours[field]))):
            out.append(f"{field}: ours {ours[field]}, peer {peer_name}={peer[peer_name]}")
    return out


# --- running the programs --------------------------------------------------------------------------


class PeerRunError(RuntimeError):
    """A program failed or printed no figure; reported as one line, the other runs go on."""


def _read_text(path: Path, what: str) -> str:
    from dqn_family.fileio import read_regular_file

    return read_regular_file(path, max_bytes=256 * 2**20, what=what, error=PeerRunError).decode("utf-8", "replace")


def run_process(
    command: list[str], *, cwd: Path, workdir: Path, timeout: float | None = None, env: dict[str, str] | None = None
) -> dict:
    """Run one program to its end (or kill it after ``timeout`` seconds): wall and CPU seconds,
    exit code, and what it printed (stdout and stderr go to files in ``workdir``, never a pipe)."""
    child_env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "TMPDIR": str(workdir),
        **(env or {}),
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(workdir / "stdout.txt", "wb") as stdout, open(workdir / "stderr.txt", "wb") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, env=child_env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
        )
        try:
            returncode, timed_out = process.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            process.kill()
            returncode, timed_out = process.wait(), True
        except BaseException:  # Ctrl-C: do not leave the program running
            process.kill()
            process.wait()
            raise
        wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    result = {
        "wall_s": wall,
        "cpu_s": cpu,
        "returncode": returncode,
        "timed_out": timed_out,
        "stdout": _read_text(workdir / "stdout.txt", "stdout"),
        "stderr": _read_text(workdir / "stderr.txt", "stderr"),
    }
    if returncode != 0 and not timed_out:
        last = (result["stderr"].strip() or result["stdout"].strip() or "no output").splitlines()[-1]
        raise PeerRunError(f"exit code {returncode}: {last[:300]}")
    return result


def _timing(process: dict) -> dict:
    return {"wall_s": process["wall_s"], "cpu_s": process["cpu_s"]}


def _our_command(*flags: str) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "train.py"),
        "--eval-frequency",
        "0",
        "--checkpoint-every",
        "0",
        "--no-progress",
        "--device",
        "cpu",
        *flags,
    ]


def ours_cartpole(steps: int, seed: int, workdir: Path) -> dict:
    from dqn_family.fileio import load_json

    run_dir = workdir / "run"
    process = run_process(
        _our_command(
            "--config", str(CLEANRL_CONFIG), "--total-steps", str(steps), "--seed", str(seed), "--run-dir", str(run_dir)
        ),
        cwd=ROOT,
        workdir=workdir,
    )
    summary = load_json(run_dir / "summary.json", max_bytes=2**20, what="summary", error=PeerRunError)
    return {**_timing(process), "sps": summary["steps_per_second"], "updates": summary["updates"]}


def cleanrl_cartpole(cleanrl: Path, steps: int, seed: int, workdir: Path) -> dict:
    command = [
        sys.executable,
        str(cleanrl / "cleanrl" / "dqn.py"),
        "--seed",
        str(seed),
        "--no-track",
        "--no-capture-video",
        "--no-cuda",
        "--env-id",
        "CartPole-v1",
        "--total-timesteps",
        str(steps),
        "--exploration-fraction",
        repr(EPSILON_DECAY_STEPS / steps),
    ]
    process = run_process(command, cwd=workdir, workdir=workdir, env={"PYTHONPATH": str(cleanrl)})  # runs/ goes there
    return {**_timing(process), "sps": parse_cleanrl_sps(process["stdout"])}


def sb3_cartpole(runner: Path, steps: int, seed: int, workdir: Path) -> dict:
    from dqn_family.fileio import load_json

    out = workdir / "sb3.json"
    command = [
        sys.executable,
        str(runner),
        "--config",
        "cleanrl",
        "--seed",
        str(seed),
        "--n-timesteps",
        str(steps),
        "--eval-freq",
        "0",
        "--threads",
        "1",
        "--out",
        str(out),
    ]
    process = run_process(command, cwd=workdir, workdir=workdir)
    report = load_json(out, max_bytes=2**20, what="SB3 runner output", error=PeerRunError)
    return {**_timing(process), "sps": report["sps_excl_eval"], "hyperparams": report["hyperparams"]}


def ours_minatar(frames: int, seed: int, workdir: Path) -> dict:
    from dqn_family.analysis.runs import read_scalars

    run_dir = workdir / "run"
    process = run_process(
        _our_command(
            "--env",
            MINATAR_ENV,
            "--total-steps",
            str(MINATAR_LEARNING_STARTS + frames),
            "--seed",
            str(seed),
            "--run-dir",
            str(run_dir),
        ),
        cwd=ROOT,
        workdir=workdir,
    )
    measured = ms_per_frame_from_sps(read_scalars(run_dir, "charts/sps"), MINATAR_LEARNING_STARTS)
    return {**_timing(process), "ms_per_frame": measured and measured[0], "frames_measured": measured and measured[1]}


def reference_minatar(script: Path, timeout: float, workdir: Path) -> dict:
    command = [sys.executable, str(script), "-g", "breakout", "-v", "-o", str(workdir / "breakout")]
    process = run_process(command, cwd=workdir, workdir=workdir, timeout=timeout)
    points = parse_minatar_log(process["stderr"])
    measured = ms_per_frame_from_log(points, MINATAR_LEARNING_STARTS)
    record = {
        **_timing(process),
        "ms_per_frame": measured and measured[0],
        "frames_measured": measured and measured[1],
        "last_logged_frame": points[-1][0] if points else None,
    }
    if measured is None:  # it logs once every 1,000 episodes
        after = sum(frame >= MINATAR_LEARNING_STARTS for frame, _ in points)
        record["note"] = f"{after} log line(s) after frame 5,000 before the stop, two needed: raise --minatar-timeout"
    return record


# --- checking that the peers run the same settings -----------------------------------------------


def _numbers(values: dict) -> dict[str, float]:
    out = {}
    for name, value in values.items():
        try:
            out[name] = float(value)
        except (TypeError, ValueError):
            pass
    return out


def _ours(fields: dict, config_file: Path | None) -> dict:
    from dataclasses import asdict

    from dqn_family.configs import resolve_config

    return asdict(resolve_config(fields, str(config_file) if config_file else None))


def check_cleanrl(script: Path) -> list[str]:
    ours = _ours({}, CLEANRL_CONFIG)
    text = _read_text(script, "CleanRL dqn.py")
    peer = _numbers(parse_dataclass_defaults(text, "Args"))
    problems = mismatches(ours, peer, {field: names[0] for field, names in CARTPOLE_FIELDS.items()})
    if ours["epsilon_decay_steps"] != EPSILON_DECAY_STEPS:  # CleanRL's is set on its command line to this
        problems.append(f"epsilon_decay_steps: ours {ours['epsilon_decay_steps']}, CleanRL {EPSILON_DECAY_STEPS}")
    if not re.search(r"Linear\([^\n]*,\s*120\),\s*nn\.ReLU\(\),\s*nn\.Linear\(120,\s*84\)", text):
        problems.append("network: CleanRL's is not the 120-84 MLP ours is")
    return [f"CleanRL {problem}" for problem in problems]


def check_sb3(hyperparams: dict, steps: int) -> list[str]:
    ours = _ours({}, CLEANRL_CONFIG)
    problems = mismatches(ours, _numbers(hyperparams), {field: names[1] for field, names in CARTPOLE_FIELDS.items()})
    decay = float(hyperparams.get("exploration_fraction", 0)) * steps
    if abs(decay - ours["epsilon_decay_steps"]) > 1:
        problems.append(f"epsilon_decay_steps: ours {ours['epsilon_decay_steps']}, SB3 {decay:g}")
    if "[120, 84]" not in str(hyperparams.get("policy_kwargs")):
        problems.append(f"network: SB3's policy_kwargs are {hyperparams.get('policy_kwargs')}")
    return [f"SB3 {problem}" for problem in problems]


def check_minatar(script: Path) -> list[str]:
    ours = _ours({"env_id": MINATAR_ENV}, None)
    peer = parse_constants(_read_text(script, "MinAtar dqn.py"))
    return [f"MinAtar authors' {problem}" for problem in mismatches(ours, peer, MINATAR_FIELDS)]


# --- the invocation --------------------------------------------------------------------------------


def available_programs(args: argparse.Namespace) -> tuple[dict[str, dict[str, object]], list[str]]:
    """part -> {program: run(seed, workdir) -> record}, in running order, and a note per skipped peer."""
    notes: list[str] = []

    def have(path: Path, what: str, *modules: str) -> bool:
        if not path.exists():
            notes.append(f"{what}: {path} not found; skipped (see the README's Performance section)")
            return False
        missing = [module for module in modules if importlib.util.find_spec(module) is None]
        if missing:
            notes.append(f"{what}: needs {', '.join(missing)} (pip install {' '.join(missing)}); skipped")
        return not missing

    cleanrl_script = args.cleanrl / "cleanrl" / "dqn.py"
    cartpole = {"ours": lambda seed, workdir: ours_cartpole(args.steps, seed, workdir)}
    if have(cleanrl_script, "CleanRL", "tyro"):
        cartpole["cleanrl"] = lambda seed, workdir: cleanrl_cartpole(args.cleanrl, args.steps, seed, workdir)
    if have(args.sb3_runner, "SB3 runner", "stable_baselines3"):
        cartpole["sb3"] = lambda seed, workdir: sb3_cartpole(args.sb3_runner, args.steps, seed, workdir)
    minatar: dict[str, object] = {}
    if have(args.minatar_reference, "MinAtar authors' dqn.py", "minatar"):
        minatar = {
            "ours": lambda seed, workdir: ours_minatar(args.minatar_frames, seed, workdir),
            "authors": lambda seed, workdir: reference_minatar(args.minatar_reference, args.minatar_timeout, workdir),
        }
    programs = {"cartpole": cartpole, "minatar": minatar}
    return {part: programs[part] for part in args.parts if programs[part]}, notes


def run_rounds(programs: dict[str, dict], rounds: int) -> dict[str, dict[str, list[dict]]]:
    """Round r runs every program once with seed r; a failure is recorded and the rest go on."""
    runs: dict[str, dict[str, list[dict]]] = {part: {name: [] for name in group} for part, group in programs.items()}
    for seed in range(1, rounds + 1):
        for part, group in programs.items():
            for name, run in group.items():
                workdir = Path(tempfile.mkdtemp(prefix=f"peers_{part}_{name}_"))
                try:
                    record = {"seed": seed, **run(seed, workdir)}
                except PeerRunError as problem:
                    record = {"seed": seed, "error": str(problem)}
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
                runs[part][name].append(record)
                shown = {
                    key: round(value, 4) if isinstance(value, float) else value
                    for key, value in record.items()
                    if key != "hyperparams"
                }
                print(f"round {seed} {part} {name}: {shown}", flush=True)
    return runs


FIGURES = {
    "cartpole": (("wall_s", "whole process, s"), ("cpu_s", "CPU, s"), ("sps", "in-loop steps/s")),
    "minatar": (("ms_per_frame", "ms per frame after frame 5,000"), ("frames_measured", "frames measured")),
}


def summarise(runs: dict[str, dict[str, list[dict]]]) -> tuple[dict, list[list[str]]]:
    """Per part, program and figure: median [min, max] over rounds and the median ours/peer ratio."""
    summary: dict = {}
    rows = []
    for part, by_program in runs.items():
        for name, records in by_program.items():
            for key, label in FIGURES[part]:
                values = [record.get(key) for record in records]
                stats = spread(values)
                ratio = None if name == "ours" else round_ratios([r.get(key) for r in by_program["ours"]], values)
                summary.setdefault(part, {}).setdefault(name, {})[key] = {"spread": stats, "ours_over_peer": ratio}
                if stats is None:
                    rows.append([part, name, label, "-", "-", "-"])
                    continue
                rows.append(
                    [
                        part,
                        name,
                        label,
                        f"{stats['median']:,.3g}" if stats["median"] < 100 else f"{stats['median']:,.0f}",
                        f"[{stats['min']:,.4g}, {stats['max']:,.4g}]",
                        "" if ratio is None else f"{ratio['median']:.3f}",
                    ]
                )
    return summary, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--peers",
        type=Path,
        default=ROOT.parent / "shared" / "peers",
        help="Folder holding cleanrl/, minatar/dqn.py and sb3_dqn_cartpole.py (default: %(default)s).",
    )
    parser.add_argument(
        "--cleanrl", type=Path, help="CleanRL checkout, patched for Gymnasium 1.x (default: PEERS/cleanrl)."
    )
    parser.add_argument(
        "--minatar-reference", type=Path, help="The MinAtar authors' examples/dqn.py (default: PEERS/minatar/dqn.py)."
    )
    parser.add_argument("--sb3-runner", type=Path, help="sb3_dqn_cartpole.py (default: PEERS/sb3_dqn_cartpole.py).")
    parser.add_argument("--parts", nargs="+", default=["cartpole", "minatar"], choices=["cartpole", "minatar"])
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds; round r uses seed r.")
    parser.add_argument("--steps", type=int, default=100_000, help="CartPole-v1 env steps per run.")
    parser.add_argument(
        "--minatar-frames",
        type=int,
        default=50_000,
        help="Our MinAtar frames after learning starts (the run is 5,000 frames longer).",
    )
    parser.add_argument(
        "--minatar-timeout",
        type=float,
        default=120.0,
        help="Seconds the MinAtar authors' dqn.py runs before it is stopped (it has no frame limit).",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "peers.json")
    args = parser.parse_args()
    args.cleanrl = args.cleanrl or args.peers / "cleanrl"
    args.minatar_reference = args.minatar_reference or args.peers / "minatar" / "dqn.py"
    args.sb3_runner = args.sb3_runner or args.peers / "sb3_dqn_cartpole.py"

    programs, notes = available_programs(args)
    differences = []
    if "cleanrl" in programs.get("cartpole", {}):
        differences += check_cleanrl(args.cleanrl / "cleanrl" / "dqn.py")
    if "minatar" in programs:
        differences += check_minatar(args.minatar_reference)
    for note in notes + [f"settings differ: {difference}" for difference in differences]:
        print(note)
    runs = run_rounds(programs, args.rounds)
    sb3_runs = [run for run in runs.get("cartpole", {}).get("sb3", []) if "hyperparams" in run]
    if sb3_runs:
        differences += check_sb3(sb3_runs[0]["hyperparams"], args.steps)
    summary, rows = summarise(runs)
    print(
        f"\n{args.rounds} interleaved rounds, one process per run, OMP_NUM_THREADS=1, CPU only; CartPole-v1 "
        f"{args.steps:,} steps at CleanRL's settings; MinAtar Breakout, an update every frame, batch 32"
    )
    print_table(["part", "program", "figure", "median", "[min, max]", "ours/peer (median of rounds)"], rows)
    for difference in differences + [f"{part}: {text}" for part in programs for text in KNOWN_DIFFERENCES[part]]:
        print(f"- {difference}")
    peers = {
        "cleanrl": args.cleanrl / "cleanrl" / "dqn.py",
        "sb3_runner": args.sb3_runner,
        "minatar_reference": args.minatar_reference,
    }
    write_json(
        args.out,
        {
            "rounds": args.rounds,
            "steps": args.steps,
            "minatar_frames": args.minatar_frames,
            "minatar_timeout_s": args.minatar_timeout,
            "machine": machine_info(),
            "skipped": notes,
            "peers": {
                name: {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
                for name, path in peers.items()
                if path.is_file()
            },
            "setting_differences": differences,
            "known_differences": {part: KNOWN_DIFFERENCES[part] for part in programs},
            "summary": summary,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
