"""train.py under mixed precision: a short bf16 run learns with finite losses, and a run resumes
under another precision (config ``precision`` is harmless on resume)."""

from __future__ import annotations

import math

from dqn_family import train
from dqn_family.checkpoints import list_checkpoints
from tests.checkpoints.conftest import copy_run, small_config
from tests.run_logs import read_scalars


def test_train_bf16_short_run_logs_finite_losses(tmp_path):
    result = train.train(small_config(tmp_path / "run", precision="bf16", total_steps=400, eval_frequency=400))
    losses = [value for _, value in read_scalars(result.run_dir)["losses/td_loss"]]
    assert result.updates == 151  # an update at env steps 100, 102, ..., 400
    assert losses and all(math.isfinite(value) for value in losses)
    assert math.isfinite(result.final_eval.mean)


def test_resume_under_another_precision_continues_to_the_end(tmp_path):
    finished = train.train(small_config(tmp_path / "fp32", total_steps=400, eval_frequency=400)).run_dir
    run = copy_run(finished, tmp_path / "resumed", latest=200)
    result = train.resume(run, {"precision": "fp16", "progress": False})
    assert (result.resumed_from, result.env_steps) == (200, 400)
    assert train.load_checkpoint(list_checkpoints(run)[-1][1])["config"]["precision"] == "fp16"
    losses = [value for step, value in read_scalars(run)["losses/td_loss"] if step > 200]
    assert losses and all(math.isfinite(value) for value in losses)
