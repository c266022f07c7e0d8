"""Kill-at-random trials: start ``python train.py`` on CartPole, SIGKILL it at a random moment,
then check that its latest checkpoint loads, count the env steps lost, and resume it to the end.

    python benchmarks/kill_trials.py [--trials 20] [--seed 0] [--write-pause 0.2] [--json PATH]

Each trial trains 3,000 env steps with a checkpoint every 500 (``--checkpoint-every``), two kept.
The kill lands at a uniformly random time between the first committed checkpoint and the end of
training, as timed by an uninterrupted calibration run. ``--write-pause S`` makes every stage of
every checkpoint write pause S seconds (the test hook of ``checkpoints/files.py``), so that many
kills land in the middle of a write; 0 writes at full speed.

The step reached at the kill is read from the progress bar, drawn at every step on stderr
(``TQDM_MININTERVAL=0``); the steps lost are that step minus the latest checkpoint's. Targets: a
loadable checkpoint after every kill, at most ``checkpoint_every`` env steps lost, and every
resumed run reaching its total. Prints a table and a summary; ``--json`` also writes the trials.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import print_table, write_json  # noqa: E402
from dqn_family.checkpoints import latest_checkpoint, list_checkpoints, load_checkpoint  # noqa: E402
from dqn_family.checkpoints.files import PAUSE_ENV  # noqa: E402

TOTAL_STEPS, CHECKPOINT_EVERY = 3_000, 500
TRAIN_ARGS = [
    "--env",
    "CartPole-v1",
    "--total-steps",
    str(TOTAL_STEPS),
    "--checkpoint-every",
    str(CHECKPOINT_EVERY),
    "--keep-checkpoints",
    "2",
    "--learning-starts",
    "500",
    "--buffer-size",
    "3000",
    "--batch-size",
    "32",
    "--train-frequency",
    "1",
    "--target-update-interval",
    "200",
    "--hidden-sizes",
    "64",
    "--log-frequency",
    "100",
    "--eval-frequency",
    "0",
    "--device",
    "cpu",
    "--progress",
]
PROGRESS = re.compile(rf"(\d+)/{TOTAL_STEPS} \[")
STAGE = re.compile(r"checkpoint-test: (\S+) (\d+)")


class Training:
    """``python train.py`` with its stderr read line by line (progress-bar updates end in \\r)."""

    def __init__(self, run_dir: Path, write_pause: float) -> None:
        env = {**os.environ, PAUSE_ENV: str(write_pause), "TQDM_MININTERVAL": "0", "TQDM_MINITERS": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "train.py", *TRAIN_ARGS, "--run-dir", str(run_dir)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.step, self.last_line, self.first_commit = 0, "", threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        pending = b""
        while chunk := self.process.stderr.read1(65536):
            *lines, pending = re.split(rb"[\r\n]", pending + chunk)
            for raw in lines:
                line = raw.decode(errors="replace").strip()
                if not line:
                    continue
                if match := PROGRESS.search(line):
                    self.step = max(self.step, int(match[1]))
                if (stage := STAGE.search(line)) and stage[1] == "committed":  # may follow a bar on its line
                    self.first_commit.set()
                self.last_line = line

    def kill(self) -> tuple[int, str]:
        """SIGKILL now; the last step the progress bar showed, and the last line written."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.reader.join()
        return self.step, self.last_line


def calibrate(folder: Path, write_pause: float) -> float:
    """Seconds from the first committed checkpoint to the end of an uninterrupted run."""
    training = Training(folder / "calibration", write_pause)
    training.first_commit.wait(timeout=300)
    committed = time.perf_counter()
    if training.process.wait(timeout=600) != 0:
        raise SystemExit("the calibration run failed")
    return time.perf_counter() - committed


def trial(run_dir: Path, delay: float, write_pause: float) -> dict:
    from dqn_family import train  # imported here: the trials' own processes do not need it

    training = Training(run_dir, write_pause)
    if not training.first_commit.wait(timeout=300):
        training.kill()
        return {"error": "no checkpoint was committed"}
    time.sleep(delay)
    finished_first = training.process.poll() is not None
    step_at_kill, last_line = training.kill()
    result = {
        "delay_s": round(delay, 3),
        "step_at_kill": step_at_kill,
        "finished_before_kill": finished_first,
        "during_write": bool(STAGE.search(last_line)),
        "committed": [s for s, _ in list_checkpoints(run_dir)],
    }
    try:
        checkpoint_step = load_checkpoint(latest_checkpoint(run_dir))["env_step"]
    except Exception as error:  # the failure this benchmark looks for
        return {**result, "loadable": False, "error": str(error)}
    resumed = train.resume(run_dir, {"progress": False})
    final = load_checkpoint(latest_checkpoint(run_dir))["env_step"]
    return {
        **result,
        "loadable": True,
        "checkpoint_step": checkpoint_step,
        "steps_lost": step_at_kill - checkpoint_step,
        "resumed_to": resumed.env_steps,
        "final_checkpoint": final,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="Seed of the kill times.")
    parser.add_argument(
        "--write-pause", type=float, default=0.2, help="Seconds each checkpoint-write stage pauses (0: full speed)."
    )
    parser.add_argument("--json", metavar="PATH", default=None, help="Also write the trials as JSON here.")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="kill_trials_"))
    try:
        window = calibrate(folder, args.write_pause)
        print(f"calibration: {window:.1f} s from the first checkpoint to the end; killing uniformly in that window")
        trials = []
        for i in range(args.trials):
            trials.append(trial(folder / f"trial_{i:03d}", float(rng.uniform(0, window)), args.write_pause))
            print(f"trial {i + 1}/{args.trials}: {trials[-1]}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report(trials, args)
    return (
        0
        if all(
            t.get("loadable") and t["steps_lost"] <= CHECKPOINT_EVERY and t["resumed_to"] == TOTAL_STEPS for t in trials
        )
        else 1
    )


def report(trials: list[dict], args: argparse.Namespace) -> None:
    rows = [
        [
            i + 1,
            t.get("step_at_kill", "-"),
            t.get("checkpoint_step", "-"),
            t.get("steps_lost", "-"),
            "yes" if t.get("during_write") else "",
            "yes" if t.get("loadable") else "NO",
            t.get("resumed_to", "-"),
        ]
        for i, t in enumerate(trials)
    ]
    print_table(["trial", "step at kill", "checkpoint", "steps lost", "in a write", "loadable", "resumed to"], rows)
    loadable = [t for t in trials if t.get("loadable")]
    lost = [t["steps_lost"] for t in loadable]
    summary = {
        "trials": len(trials),
        "loadable": len(loadable),
        "kills_during_a_write": sum(bool(t.get("during_write")) for t in trials),
        "max_steps_lost": max(lost, default=None),
        "mean_steps_lost": float(np.mean(lost)) if lost else None,
        "checkpoint_every": CHECKPOINT_EVERY,
        "resumed_to_total": sum(t.get("resumed_to") == TOTAL_STEPS for t in trials),
        "write_pause_s": args.write_pause,
        "seed": args.seed,
        "command": f"python benchmarks/kill_trials.py --trials {args.trials} --seed {args.seed} "
        f"--write-pause {args.write_pause}",
    }
    print(
        f"loadable after {summary['loadable']}/{summary['trials']} kills ({summary['kills_during_a_write']} during a "
        f"checkpoint write); env steps lost: max {summary['max_steps_lost']}, mean "
        f"{summary['mean_steps_lost'] or 0:.0f} (checkpoint every {CHECKPOINT_EVERY}); resumed to "
        f"{TOTAL_STEPS:,}: {summary['resumed_to_total']}/{summary['trials']}"
    )
    if args.json:
        write_json(args.json, {"summary": summary, "trials": trials})


if __name__ == "__main__":
    sys.exit(main())
