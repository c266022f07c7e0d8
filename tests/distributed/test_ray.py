"""distributed/ on a local Ray instance shared by the module (2 actors, a few thousand CartPole
steps): a complete run directory that evaluate.py reads, a SIGKILLed actor restarted with nothing
stored lost, and a resume from a checkpoint."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

ray = pytest.importorskip("ray")

from dqn_family import evaluate, train  # noqa: E402
from dqn_family.checkpoints import list_checkpoints  # noqa: E402
from dqn_family.distributed import run as distributed_run  # noqa: E402
from dqn_family.distributed.ray_session import start_ray  # noqa: E402
from dqn_family.distributed.ray_workers import RayWorkers  # noqa: E402
from tests.run_logs import read_scalars  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    """One local Ray for the module; its workers import dqn_family as this process does."""
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = distributed_run._pythonpath()
    start_ray(address=None, num_cpus=3, what="the tests")  # never a cluster left on this machine
    try:
        yield
    finally:
        ray.shutdown()
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous


def ray_config(tiny_config, **overrides):
    values = dict(
        actors=2,
        total_steps=3_000,
        learning_starts=200,
        buffer_size=5_000,
        eval_frequency=1_000,
        checkpoint_every=1_000,
        log_frequency=500,
        send_steps=50,
    )
    values.update(overrides)
    return tiny_config(**values)


@pytest.fixture
def workers(monkeypatch) -> list[RayWorkers]:
    """The RayWorkers of the run under test, with the replay's counts read just before it closes."""
    made: list[RayWorkers] = []
    acknowledged: list[int] = []
    original_init, original_close, original_ack = RayWorkers.__init__, RayWorkers.close, RayWorkers._acknowledge

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        made.append(self)

    def acknowledge(self, ref, polled, stored=None):
        original_ack(self, ref, polled, stored)
        acknowledged.append(polled.acks[-1].stored)

    def close(self):
        self.final_stats = self.replay_stats()
        self.acknowledged = sum(acknowledged)
        original_close(self)

    monkeypatch.setattr(RayWorkers, "__init__", init)
    monkeypatch.setattr(RayWorkers, "_acknowledge", acknowledge)
    monkeypatch.setattr(RayWorkers, "close", close)
    return made


def test_distributed_run_directory_is_complete_and_evaluate_reads_it(tiny_config, workers, capsys):
    config = ray_config(tiny_config, prioritized=True)
    result = train.train(config)
    assert result.env_steps >= 3_000 and result.final_eval is not None
    run_dir = result.run_dir
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.yaml", "meta.json", "model_latest.pt", "model_best.pt", "summary.json", "checkpoints"} <= names
    assert json.loads((run_dir / "summary.json").read_text())["env_steps"] == result.env_steps
    (worker,) = workers
    assert worker.final_stats["added"] == worker.acknowledged  # every stored transition was counted
    scalars = read_scalars(run_dir)
    for tag in (
        "distributed/env_steps_per_second",
        "distributed/learner_updates_per_second",
        "distributed/replay_ratio",
        "distributed/weight_lag",
        "distributed/steps_in_flight",
        "distributed/actor_restarts",
        "distributed/actor_1/env_steps_per_second",
    ):
        assert tag in scalars, tag
    capsys.readouterr()
    assert evaluate.main([str(run_dir), "--episodes", "2"]) == 0
    assert "CartPole-v1: mean return" in capsys.readouterr().out


def test_killed_actor_is_restarted_and_no_stored_transition_is_lost(tiny_config, workers):
    killed = []

    def kill_actor_once(step, mean_return):
        if not killed:
            (worker,) = workers
            pid = worker.actor_pids()[0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            # Wait until Ray has the new process up, so that its sends arrive before the run ends.
            for _ in range(120):
                try:
                    if worker.actor_pids()[0] != pid:
                        return
                except ray.exceptions.ActorUnavailableError:  # restarting
                    pass
                time.sleep(0.5)
            pytest.fail("Ray did not restart the killed actor within a minute")

    result = train.train(ray_config(tiny_config), on_evaluation=kill_actor_once)
    assert killed and result.env_steps >= 3_000
    (worker,) = workers
    assert worker.final_stats["added"] == worker.acknowledged
    restarts = read_scalars(result.run_dir)["distributed/actor_restarts"]
    assert restarts[-1][1] == 1.0


@pytest.mark.slow
def test_resume_after_a_kill_continues_from_the_checkpoint(tiny_config, workers):
    first = train.train(ray_config(tiny_config))
    # What a learner killed between its last two checkpoints leaves: the earlier one is the latest.
    (middle_step, _), (last_step, last) = list_checkpoints(first.run_dir)[-2:]
    assert 2_000 <= middle_step < last_step == first.env_steps
    last.with_suffix(".pt").unlink()
    last.unlink()
    (first.run_dir / "summary.json").unlink()
    resumed = train.resume(first.run_dir)
    assert resumed.resumed_from == middle_step
    assert resumed.env_steps >= 3_000 and (first.run_dir / "summary.json").is_file()
    stats = workers[-1].final_stats
    assert stats["size"] > stats["added"]  # the replay holds the checkpoint's transitions besides the new ones


def test_distributed_run_on_dictionary_observations_evaluates_and_exports(tiny_config, workers, capsys, tmp_path):
    from dqn_family import export

    config = ray_config(
        tiny_config,
        env_id="tests.dict_envs:TestOnly/CueImage-v0",
        algo="rainbow",
        total_steps=600,
        learning_starts=100,
        eval_frequency=300,
        checkpoint_every=300,
    )
    result = train.train(config)
    assert result.env_steps >= 600 and result.final_eval is not None
    (worker,) = workers
    assert worker.final_stats["added"] == worker.acknowledged
    capsys.readouterr()
    assert evaluate.main([str(result.run_dir), "--episodes", "2", "--trust-imports"]) == 0
    out = tmp_path / "model.onnx"
    flags = ["--out", str(out), "--verify", "--verify-observations", "50", "--trust-imports"]
    assert export.main([str(result.run_dir), *flags]) == 0
    assert "verified: 0 of 50 greedy actions differ" in capsys.readouterr().out
    assert list(json.loads(out.with_name("model.onnx.json").read_text())["inputs"]) == ["clock", "cue", "image"]
