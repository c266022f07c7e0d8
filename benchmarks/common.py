"""Helpers shared by the benchmark scripts: quantiles, tables, timing a call, the machine a result
came from (a run's TensorBoard scalars are read with analysis.runs.read_scalars)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path

import numpy as np


def median_iqr(values: list[float], digits: int = 0) -> str:
    """'median [q25, q75]' of the finite values (``digits`` decimals), or '-' when there are none."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return "-"
    q25, median, q75 = np.percentile(finite, [25, 50, 75])
    return f"{median:,.{digits}f} [{q25:,.{digits}f}, {q75:,.{digits}f}]"


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for line in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)))


def write_json(path: str | Path, data: object) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")


def time_us(function, repeats: int) -> np.ndarray:
    """Microseconds each of ``repeats`` calls of ``function()`` took."""
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        function()
        times[i] = time.perf_counter() - start
    return times * 1e6


def machine_info() -> dict:
    """What a timing depends on: CPU model and cores, library versions, the date (UTC)."""
    cpu_model = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:  # not Linux
        pass
    versions = {}
    for package in ("torch", "gymnasium", "numpy", "stable-baselines3", "minatar"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        **versions,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
