"""distributed.ray_session on real Ray, each driver in its own process (Ray reads its settings when
imported): a local instance listens on the loopback address only and runs its workers at nice 0; a
running ``ray start --head`` cluster is joined by ``--ray-address auto`` and by nothing else; a
distributed run that fails after joining says so in one line; one SIGTERM stops a run within seconds."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
# One `ray start --head` at a time on this machine: Ray records the running cluster in one file, which
# `--ray-address auto` reads; so these tests run in one process under pytest-xdist (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("ray_head")

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # as distributed.ray_session.LOCAL_ENV

# A driver that starts Ray as the project does, starts one actor, prints what the test needs, and
# waits for its stdin to close.
DRIVER = """
import json, os, sys
from dqn_family.distributed.ray_session import start_ray
address = None if sys.argv[1] == "none" else sys.argv[1]
ray, started = start_ray(address=address, num_cpus=1, what="test")

@ray.remote(num_cpus=1)
class Probe:
    def pid(self):
        return os.getpid()

    def imports(self):
        import sys
        try:
            import planted_probe  # noqa: F401  (a file in the driver's current folder)
        except ImportError:
            return sys.path
        return "imported planted_probe"

probe = Probe.remote()
facts = {
    "actor": ray.get(probe.pid.remote()),
    "actor_path": ray.get(probe.imports.remote()),
    "gcs": ray.get_runtime_context().gcs_address,
    "cpus": ray.cluster_resources().get("CPU"),
}
print(json.dumps(facts), flush=True)
sys.stdin.read()
ray.shutdown()
"""


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, ValueError):
                continue
    found, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address of /proc/net/tcp{,6}: 32-bit words in the host's (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def listening(pids: list[int]) -> list[tuple[int, str]]:
    """(pid, address) of every listening TCP socket the processes ``pids`` hold."""
    owner: dict[str, int] = {}
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owner[target[len("socket:[") : -1]] = pid
        except OSError:
            continue  # a process that ended meanwhile
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in owner:  # 0A: LISTEN
                found.append((owner[inode], str(_address(local.split(":")[0]))))
    return found


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[16])


def start_driver(
    address: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[subprocess.Popen, dict]:
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, address],
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    line = driver.stdout.readline()
    if not line:
        driver.kill()
        pytest.fail(f"the driver did not start Ray: {driver.stderr.read()[-2000:]}")
    return driver, json.loads(line)


def stop_driver(driver: subprocess.Popen) -> str:
    _, err = driver.communicate("", timeout=60)
    return err


def test_local_ray_workers_never_import_from_the_drivers_current_folder(tmp_path):
    """Ray puts the driver's current folder first on its workers' import path: a run started from a
    folder holding planted_probe.py (or numpy.py) would run it in every actor."""
    (tmp_path / "planted_probe.py").write_text('open("PWNED", "w").write("x")\n')
    driver, facts = start_driver("none", cwd=tmp_path)
    stop_driver(driver)
    assert isinstance(facts["actor_path"], list), facts["actor_path"]
    assert str(tmp_path) not in facts["actor_path"]
    assert not list(tmp_path.rglob("PWNED"))


def test_local_ray_listens_on_loopback_only_with_workers_at_nice_0():
    driver, facts = start_driver("none")
    try:
        sockets = listening(_descendants(driver.pid))
        pids = {pid for pid, _ in sockets}
        # the GCS, the raylet, the actor and this driver at least: the listing sees them all
        assert driver.pid in pids and facts["actor"] in pids and len(pids) >= 4, sockets
        assert [(pid, address) for pid, address in sockets if not is_loopback(address)] == []
        assert facts["gcs"].startswith("127.0.0.1:")
        assert niceness(facts["actor"]) == 0  # Ray's default would be 15
    finally:
        stop_driver(driver)


# --- a cluster that `ray start --head` runs on this machine -------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def head():
    """A 2-CPU ``ray start --head`` on the loopback address; stopped (its own process group only:
    ``ray stop`` would stop every Ray on the machine) and its current-cluster record removed after."""
    port = _free_port()
    command = ["ray", "start", "--head", "--num-cpus", "2", "--port", str(port), "--include-dashboard=false"]
    process = subprocess.Popen(
        [*command, "--disable-usage-stats", "--block"],
        env={**os.environ, **LOOPBACK_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    record = Path("/tmp/ray/ray_current_cluster")
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not (record.exists() and record.read_text().strip() == address):
            assert time.monotonic() < deadline and process.poll() is None, "ray start --head did not start"
            time.sleep(0.2)
        yield address
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        if record.exists() and record.read_text().strip() == address:
            record.unlink()


def test_local_ray_starts_its_own_instance_beside_a_running_cluster(head):
    driver, facts = start_driver("none")
    stop_driver(driver)
    assert facts["gcs"] != head and facts["cpus"] == 1  # its own instance, with the CPUs it asked for


def test_a_running_head_answers_the_reachability_probe(head):
    """The probe that refuses a silent listener (test_plain) lets a real head's GCS through."""
    from dqn_family.distributed.ray_session import _check_reachable

    _check_reachable(head)


def test_ray_address_auto_joins_the_running_cluster(head):
    driver, facts = start_driver("auto", LOOPBACK_ENV)  # a loopback head is joined from loopback
    stop_driver(driver)
    assert facts["gcs"] == head and facts["cpus"] == 2


def test_distributed_run_failing_after_joining_is_one_line(head, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "dqn_family.train", "--env", "CartPole-v1", "--actors", "3"]
        + ["--ray-address", "auto", "--total-steps", "1000", "--run-dir", str(tmp_path / "run"), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **LOOPBACK_ENV},
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "train.py: error: --actors 3 needs 4 CPUs on the Ray cluster (one per actor, one for the replay), "
        "but it has 2; lower --actors or add nodes"
    ]
    assert "\x1b" not in done.stdout + done.stderr


# --- one SIGTERM ---------------------------------------------------------------------------------


def test_distributed_run_stops_within_seconds_of_one_sigterm(tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "dqn_family.train", "--env", "CartPole-v1", "--actors", "4"]
        + ["--total-steps", "100000", "--run-dir", str(run_dir), "--no-progress"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "config.yaml").exists():  # written just before the actors start
            assert time.monotonic() < deadline and process.poll() is None, "the run did not start"
            time.sleep(0.1)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        seconds = time.monotonic() - signalled
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    assert seconds < 15, f"{seconds:.1f} s"
    errors = [line for line in err.splitlines() if line.startswith("train.py: ")]
    assert errors[-1].startswith("train.py: stopped by SIGTERM at env step 0"), err
    assert "Traceback" not in err and "\x1b" not in err
