"""Killing real training processes: SIGKILL at each stage of a checkpoint write (the test hook
pauses the writer there) and in the middle of training always leaves a latest checkpoint that
loads, from which the run finishes; SIGTERM and SIGINT save a checkpoint and stop cleanly.

Every process is started at once by one module fixture. The SIGKILLed ones are forks of this
already-imported test process running ``train.main`` (the command line's code, in a process of its
own): a fresh interpreter would spend seconds importing torch for each. The SIGTERM one is a real
``python train.py`` command, to check the exit code and message end to end."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from dqn_family import train
from dqn_family.checkpoints import latest_checkpoint, load_checkpoint
from dqn_family.checkpoints.files import PAUSE_ENV, STAGES
from dqn_family.training import state as training_state
from tests.checkpoints.conftest import checkpoint_steps, leftovers, small_config

REPO_ROOT = Path(__file__).resolve().parents[2]
# 600 CartPole steps, a checkpoint every 200 and only the newest kept (so saving 400 prunes 200).
TRAIN_ARGS = [
    "--env",
    "CartPole-v1",
    "--seed",
    "4",
    "--learning-starts",
    "100",
    "--batch-size",
    "16",
    "--buffer-size",
    "400",
    "--train-frequency",
    "2",
    "--target-update-interval",
    "100",
    "--hidden-sizes",
    "16",
    "--log-frequency",
    "50",
    "--eval-frequency",
    "0",
    "--checkpoint-every",
    "200",
    "--keep-checkpoints",
    "1",
    "--no-progress",
    "--device",
    "cpu",
]


class Child:
    """A training process: its pid, its stderr as lines, how to wait for its end."""

    def __init__(self, pid: int, stderr, popen: subprocess.Popen | None = None) -> None:
        self.pid, self.stderr, self.popen = pid, stderr, popen

    def wait(self) -> int:
        """The exit status as subprocess gives it: the exit code, or -N after signal N."""
        if self.popen is not None:
            return self.popen.wait()
        _, status = os.waitpid(self.pid, 0)
        return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def fork_training(run_dir: Path, pause: str, total_steps: int) -> Child:
    """``train.py`` (its main()) in a forked child whose stderr comes back through a pipe."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: train, then leave without ever returning into pytest
        code = 1
        try:
            os.close(read_fd)
            os.dup2(write_fd, 2)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            sys.stdout, sys.stderr = open(1, "w", closefd=False), open(2, "w", buffering=1, closefd=False)
            os.environ[PAUSE_ENV] = pause
            code = train.main([*TRAIN_ARGS, "--total-steps", str(total_steps), "--run-dir", str(run_dir)])
        finally:
            os._exit(code)
    os.close(write_fd)
    return Child(pid, os.fdopen(read_fd))


def run_training(run_dir: Path, pause: str, total_steps: int) -> Child:
    """``python train.py`` as a real command."""
    popen = subprocess.Popen(
        [sys.executable, "train.py", *TRAIN_ARGS, "--total-steps", str(total_steps), "--run-dir", str(run_dir)],
        cwd=REPO_ROOT,
        env={**os.environ, PAUSE_ENV: pause},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Child(popen.pid, popen.stderr, popen)


def wait_for(child: Child, line: str) -> str:
    """Read the child's stderr up to ``line`` (the writer prints it before pausing); return what
    came before it."""
    seen = []
    while (text := child.stderr.readline()) != "":
        if text.strip() == line:
            return "".join(seen)
        seen.append(text)
    raise AssertionError(f"the process ended before printing {line!r}: {''.join(seen)[-2000:]}")


def sigkill_at(line: str, delay: float = 0.0):
    def stop(child: Child) -> dict:
        wait_for(child, line)
        time.sleep(delay)
        os.kill(child.pid, signal.SIGKILL)
        return {"returncode": child.wait()}

    return stop


def sigterm_after_first_checkpoint(child: Child) -> dict:
    wait_for(child, "checkpoint-test: committed 200")
    os.kill(child.pid, signal.SIGTERM)
    stderr = child.stderr.read()
    return {"returncode": child.wait(), "stderr": stderr}


# name: (how to start, test hook setting, total steps, how to stop)
PROCESSES = {
    "sigterm": (run_training, "0", 1_000_000, sigterm_after_first_checkpoint),
    **{stage: (fork_training, f"60:{stage}:400", 600, sigkill_at(f"checkpoint-test: {stage} 400")) for stage in STAGES},
    "training": (fork_training, "0", 1000, sigkill_at("checkpoint-test: pruning 400", delay=0.05)),  # after 400
}


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Run directory and outcome of each process in PROCESSES, all started at once."""
    folder = tmp_path_factory.mktemp("killed")
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # its first use imports for a second: not in each child
    children = {name: start(folder / name, pause, total) for name, (start, pause, total, _) in PROCESSES.items()}
    outcomes: dict[str, dict] = {}

    def stop(name: str) -> None:
        try:
            outcomes[name] = PROCESSES[name][3](children[name])
        except AssertionError as error:
            outcomes[name] = {"error": str(error)}

    threads = [threading.Thread(target=stop, args=(name,), daemon=True) for name in children]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    for name, child in children.items():  # whatever went wrong, leave no process behind
        if name not in outcomes:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        child.stderr.close()
    return {name: (folder / name, outcomes.get(name, {"error": "no outcome"})) for name in children}


# At each stage of writing the checkpoint of step 400, with the checkpoint of 200 committed before:
# which checkpoint is the latest, which are committed, and what the interrupted write left behind.
AT_STAGE = {
    "writing-state": (200, [200], r"\.step_000000000400\.pt\.\w+\.tmp"),  # half a temporary file
    "state-renamed": (200, [200], r"step_000000000400\.pt"),  # whole, but not committed
    "committed": (400, [200, 400], None),  # committed, the old one not yet pruned
    "pruning": (400, [400], r"step_000000000200\.pt"),  # the old manifest deleted, its state not yet
}


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_during_checkpoint_write_leaves_loadable_latest_and_resume_finishes(stopped, stage):
    run_dir, outcome = stopped[stage]
    assert outcome.get("returncode") == -signal.SIGKILL, outcome
    latest, committed, leftover = AT_STAGE[stage]
    assert load_checkpoint(latest_checkpoint(run_dir))["env_step"] == latest
    assert checkpoint_steps(run_dir) == committed
    left = leftovers(run_dir)
    assert left == [] if leftover is None else (len(left) == 1 and re.fullmatch(leftover, left[0])), left
    result = train.resume(run_dir)
    assert (result.env_steps, result.resumed_from) == (600, latest)
    assert checkpoint_steps(run_dir) == [600] and leftovers(run_dir) == []  # interrupted writes cleaned up


def test_sigkill_while_training_leaves_loadable_latest_and_resume_finishes(stopped):
    run_dir, outcome = stopped["training"]
    assert outcome.get("returncode") == -signal.SIGKILL, outcome
    assert load_checkpoint(latest_checkpoint(run_dir))["env_step"] in (400, 600, 800)
    assert train.resume(run_dir).env_steps == 1000


def test_sigterm_saves_checkpoint_and_exits_cleanly_saying_how_to_resume(stopped):
    run_dir, outcome = stopped["sigterm"]
    assert outcome.get("returncode") == 128 + signal.SIGTERM, outcome
    assert "Traceback" not in outcome["stderr"]
    last_line = outcome["stderr"].strip().splitlines()[-1]
    message = re.fullmatch(
        r"train\.py: stopped by SIGTERM at env step ([\d,]+); checkpoint saved\. "
        rf"Resume with: python train\.py --resume {re.escape(str(run_dir))}",
        last_line,
    )
    assert message, outcome["stderr"]
    step = int(message[1].replace(",", ""))
    assert step >= 200 and checkpoint_steps(run_dir)[-1] == step
    assert load_checkpoint(latest_checkpoint(run_dir))["counters"]["env_steps"] == step


def test_sigint_in_process_saves_checkpoint_and_raises_training_interrupted(tmp_path, monkeypatch):
    real_save = training_state.save_checkpoint

    def save_then_interrupt(run_dir, state, *, env_step, keep):
        real_save(run_dir, state, env_step=env_step, keep=keep)
        if env_step == 200:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, arriving during the first checkpoint

    monkeypatch.setattr(training_state, "save_checkpoint", save_then_interrupt)
    config = small_config(tmp_path / "run", total_steps=600, eval_frequency=0)
    handler_before = signal.getsignal(signal.SIGINT)
    # The checkpoint of step 200 ends that step, so the loop stops there with nothing new to save.
    with pytest.raises(
        train.TrainingInterrupted,
        match=r"stopped by SIGINT at env step 200; checkpoint saved\. "
        "Resume with: python train.py --resume",
    ) as raised:
        train.train(config, handle_signals=True)
    assert raised.value.exit_code == 130
    assert checkpoint_steps(config.run_dir) == [200]
    assert signal.getsignal(signal.SIGINT) is handler_before  # the handler is put back
    assert train.resume(config.run_dir).env_steps == 600
