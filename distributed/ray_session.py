"""Starting or joining Ray: the one place that calls ``ray.init``, for a distributed run
(distributed.run), ``tune.py --backend ray`` (tuning.workers) and ``multirun.py --backend ray``
(analysis.multirun). It imports neither torch nor, until a command asks for it, Ray.

Without an address, a new local instance is started, always: Ray's address ``"local"``, so that a
cluster that ``ray start`` left on this machine (running, or stopped uncleanly, which leaves
``/tmp/ray/ray_current_cluster`` behind) is never joined by surprise. It is reachable from this
machine only: every process it starts (GCS, raylet, object manager, workers, agents, this driver's
own server) listens on 127.0.0.1, and there is no dashboard. With an address, the cluster there is
joined: ``auto`` (the cluster ``ray start --head`` runs on this machine), its ``HOST:PORT``, or
``ray://HOST:PORT`` (Ray Client); its network and authentication are the cluster's own.

Ray puts the driver's current folder first on every worker's import path (and makes it their
current folder): a local instance is started from an empty folder of its own instead, so that a
``numpy.py`` planted in the folder a run is started from (a run directory from someone else, for
``--resume``) is never what a worker imports. A module the user named on the command line reaches
the workers through PYTHONPATH (distributed.run), as the import-path rule allows (configs.trust).

Both ways, Ray is quiet (its log lines, some coloured, would surround a command's one-line error),
and the workers of a local instance run at the user's priority (Ray's default, nice 15, starves them
whenever anything else runs).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from dqn_family.configs.errors import ConfigError
from dqn_family.fileio import one_line

# Set before Ray is imported (it reads the first when imported) and while it starts its processes.
LOCAL_ENV = {
    # With multi-node clusters off (Ray's default on macOS and Windows), Ray takes the loopback
    # address as the node's address, and its servers then listen on it alone.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_worker_niceness": "0",  # a RayConfig setting; Ray's job supervisor sets it the same way
}
QUIET_ENV = {
    "RAY_COLOR_PREFIX": "0",
    "RAY_DEDUP_LOGS": "0",
}
LOOPBACK = ("127.0.0.1", "::1")
CONNECT_SECONDS = 5.0  # to reach a HOST:PORT before handing it to Ray, which retries for minutes


def require_ray(what: str) -> ModuleType:
    """The ray module, or a ConfigError saying that ``what`` (a flag) needs the ray extra."""
    try:
        import ray
    except ModuleNotFoundError:
        raise ConfigError(
            f"{what} needs ray, which is not installed; install the ray extra: pip install -e '.[ray]'"
        ) from None
    return ray


def start_ray(
    *, address: str | None, num_cpus: int, what: str, runtime_env: dict[str, Any] | None = None
) -> tuple[ModuleType, bool]:
    """(ray, whether Ray was started here): a new local instance with ``num_cpus`` CPUs when
    ``address`` is None, else the cluster at ``address`` joined; nothing when this process has
    already joined one (a caller's own ``ray.init``). Whoever started it shuts it down. A cluster
    that cannot be joined is a ConfigError naming the address."""
    os.environ.update(QUIET_ENV)
    if address is None:
        os.environ.update(LOCAL_ENV)
    ray = require_ray(what)
    if ray.is_initialized():
        return ray, False
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR, "include_dashboard": False}
    if runtime_env is not None:
        quiet["runtime_env"] = runtime_env
    if address is None:
        if ray.util.get_node_ip_address() not in LOOPBACK:
            print(
                "warning: Ray was imported before dqn_family could keep it on the loopback address, so this "
                "local Ray instance listens on every interface; set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 "
                "before importing ray",
                file=sys.stderr,
            )
        with _in_folder(_workers_folder()):
            ray.init(address="local", num_cpus=num_cpus, **quiet)
        return ray, True
    _check_reachable(address)
    quiet.pop("include_dashboard")  # a setting of the cluster, not of a driver that joins it
    try:
        ray.init(address=address, **quiet)
    except Exception as error:  # Ray reports a cluster it cannot join as ConnectionError, RuntimeError, ValueError...
        raise ConfigError(
            f"cannot join the Ray cluster at --ray-address {address}: {one_line(error)[:150]}{_token_hint(address)}"
        ) from None
    return ray, True


_WORKERS_FOLDER: list[str] = []


def _workers_folder() -> str:
    """An empty folder of this process's for Ray's workers (removed when the process exits, after Ray)."""
    if not _WORKERS_FOLDER:
        folder = tempfile.mkdtemp(prefix="dqn-family-ray-")
        atexit.register(shutil.rmtree, folder, True)
        _WORKERS_FOLDER.append(folder)
    return _WORKERS_FOLDER[0]


@contextlib.contextmanager
def _in_folder(folder: str) -> Iterator[None]:
    here = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)


def _token_hint(address: str) -> str:
    """Ray sends its token (~/.ray/auth_token) to a HOST:PORT only when told to: say how."""
    if address == "auto" or address.startswith("ray://") or "RAY_AUTH_MODE" in os.environ:
        return ""
    return (
        "; a cluster with token authentication (Ray's default) is joined at host:port only with "
        "RAY_AUTH_MODE=token set (or use --ray-address auto on the head's machine)"
    )


def _check_reachable(address: str) -> None:
    """A ``HOST:PORT`` (or ``ray://HOST:PORT``) must accept a connection within CONNECT_SECONDS and
    answer as a gRPC server does (Ray's GCS and Ray Client both are): Ray itself retries an
    unreachable address, or one where something else listens, for minutes, unmoved by SIGTERM."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # left to Ray, which says what it expected
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS) as connection:
            speaks_http2 = os.environ.get("RAY_USE_TLS", "0") not in ("0", "") or _answers_http2(connection)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(
            f"cannot join the Ray cluster at --ray-address {address}: nothing answers there ({reason}); "
            "start it with 'ray start --head', or pass --ray-address auto for the one on this machine"
        ) from None
    if not speaks_http2:
        raise ConfigError(
            f"cannot join the Ray cluster at --ray-address {address}: something listens there, but it does not "
            f"answer as a Ray server (gRPC) within {CONNECT_SECONDS:.0f} s; check the head's address and port"
        )


# An HTTP/2 client's first bytes (RFC 9113, 3.4): the connection preface, then an empty SETTINGS frame.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _answers_http2(connection: socket.socket) -> bool:
    """Whether the server answers an HTTP/2 preface with a frame of its own, SETTINGS first (as every
    HTTP/2 server must), within the connection's timeout."""
    connection.sendall(_HTTP2_PREFACE)
    header = b""
    while len(header) < 9:
        try:
            chunk = connection.recv(9 - len(header))
        except TimeoutError:
            return False
        if not chunk:
            return False
        header += chunk
    return header[3] == 4  # the frame type: SETTINGS
