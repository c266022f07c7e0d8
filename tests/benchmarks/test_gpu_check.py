"""benchmarks/gpu_check.sh and its helper: without CUDA the script stops at once with one line;
the helper's CPU dry mode runs the same checks (device-copy batches byte for byte, short runs with
finite losses under each precision) and writes its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_gpu_check_sh_without_cuda_fails_fast_with_one_line(tmp_path):
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "CUDA is not available" in done.stderr
    assert done.stdout == ""  # nothing was run


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_gpu_check_helper_without_cuda_exits_2(capsys):
    from benchmarks import gpu_check

    with pytest.raises(SystemExit) as exit:
        gpu_check.main(["--device", "cuda"])
    assert exit.value.code == 2 and "CUDA is not available" in capsys.readouterr().err


@pytest.mark.slow
def test_gpu_check_dry_on_cpu_checks_batches_and_finite_losses(tmp_path):
    from benchmarks import gpu_check

    out = tmp_path / "gpu_check.json"
    code = gpu_check.main(
        [
            "--device",
            "cpu",
            "--dry",
            "--envs",
            "CartPole-v1",
            "--variants",
            "eager fp32",
            "eager fp16",
            "--out",
            str(out),
        ]
    )
    report = json.loads(out.read_text())
    assert code == 0 and report["ok"] and report["gpu"] == "cpu"
    assert [check["env"] for check in report["same_batches"] if check["ok"]] == ["CartPole-v1"]
    assert [(run["variant"], run["precision"], run["env_steps"]) for run in report["runs"]] == [
        ("eager fp32", "fp32", 200),
        ("eager fp16", "fp16", 200),
    ]
    assert all(run["losses_logged"] > 0 and run["steps_per_second"] > 0 for run in report["runs"])
