"""The replay memory check takes the tightest limit that applies (free memory, ulimit -v/-d,
cgroup v2 and v1), read from /proc and cgroup files faked here; a buffer over it, or an
allocation that fails anyway, is one line advising a lower --buffer-size."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dqn_family.configs import ConfigError
from dqn_family.replay.memory import available_memory
from dqn_family.training import buffers
from tests.hostile.conftest import error_line

CODE_DIR = Path(__file__).resolve().parents[2]
GB = 10**9


def fake_proc(
    tmp_path: Path, *, available_kb: int, vm_size_kb: int = 1000, vm_data_kb: int = 500, cgroup: str = "0::/job\n"
) -> Path:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text(f"MemTotal: 99999999 kB\nMemAvailable: {available_kb} kB\n")
    (proc / "self" / "status").write_text(f"Name: python\nVmSize:\t{vm_size_kb} kB\nVmData:\t{vm_data_kb} kB\n")
    (proc / "self" / "cgroup").write_text(cgroup)
    return proc


def write_files(folder: Path, **files: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("_", ".", 1)).write_text(text)


def test_available_memory_is_mem_available_without_other_limits(tmp_path):
    proc = fake_proc(tmp_path, available_kb=8_000_000)
    assert available_memory(proc=proc, cgroup_root=tmp_path / "none", rlimits={}) == (
        8_192_000_000,
        "MemAvailable in /proc/meminfo",
    )


def test_available_memory_takes_ulimit_v_less_the_address_space_in_use(tmp_path):
    proc = fake_proc(tmp_path, available_kb=24_000_000, vm_size_kb=1_000_000)
    found = available_memory(proc=proc, cgroup_root=tmp_path / "none", rlimits={"AS": 3 * GB})
    assert found == (3 * GB - 1_024_000_000, "ulimit -v (RLIMIT_AS) less the VmSize in use")


def test_available_memory_takes_ulimit_d_less_the_data_in_use(tmp_path):
    proc = fake_proc(tmp_path, available_kb=24_000_000, vm_data_kb=100_000)
    found = available_memory(proc=proc, cgroup_root=tmp_path / "none", rlimits={"AS": 5 * GB, "DATA": 2 * GB})
    assert found == (2 * GB - 102_400_000, "ulimit -d (RLIMIT_DATA) less the VmData in use")


def test_available_memory_takes_the_tightest_cgroup_v2_level(tmp_path):
    proc = fake_proc(tmp_path, available_kb=24_000_000, cgroup="0::/outer/job\n")
    root = tmp_path / "cgroup"
    write_files(root / "outer", memory_max=str(4 * GB), memory_current=str(3 * GB))  # 1 GB left above
    write_files(root / "outer" / "job", memory_max=str(2 * GB), memory_current=str(GB // 2))
    bytes_left, limit = available_memory(proc=proc, cgroup_root=root, rlimits={})
    assert bytes_left == GB and limit == f"cgroup {root / 'outer' / 'memory.max'} less memory.current"


def test_available_memory_ignores_cgroup_v2_max_without_a_limit(tmp_path):
    proc = fake_proc(tmp_path, available_kb=1_000_000)
    write_files(tmp_path / "cgroup" / "job", memory_max="max", memory_current=str(GB))
    assert available_memory(proc=proc, cgroup_root=tmp_path / "cgroup", rlimits={})[0] == 1_024_000_000


def test_available_memory_takes_a_cgroup_v1_limit_and_ignores_v1_no_limit(tmp_path):
    proc = fake_proc(tmp_path, available_kb=24_000_000, cgroup="4:memory:/job\n0::/\n")
    v1 = tmp_path / "cgroup" / "memory"
    write_files(v1, memory_limit_in_bytes="9223372036854771712", memory_usage_in_bytes=str(GB))  # no limit
    write_files(v1 / "job", memory_limit_in_bytes=str(3 * GB), memory_usage_in_bytes=str(GB))
    assert available_memory(proc=proc, cgroup_root=tmp_path / "cgroup", rlimits={})[0] == 2 * GB


def test_available_memory_is_none_without_proc(tmp_path):
    assert available_memory(proc=tmp_path / "none", cgroup_root=tmp_path / "none", rlimits={}) is None


def test_train_under_ulimit_v_refuses_a_huge_buffer_in_one_line():
    def limit_address_space():
        resource.setrlimit(resource.RLIMIT_AS, (3_000_000 * 1024, 3_000_000 * 1024))  # ulimit -v 3000000

    done = subprocess.run(
        [sys.executable, "train.py", "--buffer-size", "60000000", "--no-progress", "--device", "cpu"],
        cwd=CODE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_address_space,
    )
    line = error_line(done.stderr, "train.py")
    assert done.returncode == 2 and "ulimit -v" in line and "lower --buffer-size" in line


def test_build_replay_failed_allocation_is_a_config_error(tiny_config, monkeypatch):
    def out_of_memory(**options):
        raise MemoryError("Unable to allocate 3.00 GiB for an array")  # numpy's ArrayMemoryError is one

    monkeypatch.setattr(buffers, "ReplayBuffer", out_of_memory)
    with pytest.raises(ConfigError, match=r"could not be allocated in memory; lower --buffer-size"):
        buffers.build_replay(tiny_config(), (4,), np.dtype(np.float32), seed=0)
