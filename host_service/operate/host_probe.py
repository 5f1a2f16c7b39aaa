"""Host facts for the status page, read from /proc and the file systems (no programs)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# systemd-timesyncd touches this file once the clock is synchronized (and after every sync).
TIMESYNC_FLAG = "/run/systemd/timesync/synchronized"


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk(path: Path) -> dict[str, Any]:
    usage = shutil.disk_usage(_existing(path))
    used = usage.total - usage.free
    return {
        "path": str(path),
        "total": usage.total,
        "free": usage.free,
        "used_percent": round(100.0 * used / usage.total, 1) if usage.total else 0.0,
    }


def memory(proc: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in (proc / "meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            values[key] = int(rest.split()[0]) * 1024
    return {"total": values.get("MemTotal", 0), "available": values.get("MemAvailable", 0)}


def read_host(
    proc: Path,
    *,
    volumes: Mapping[str, Path],
    timesync_flag: Path,
    kernel_clock: Callable[[], bool | None],
    addresses: Callable[[], list[str]],
) -> dict[str, Any]:
    """Uptime, load, memory, the named volumes' disks, clock sync and addresses.

    The clock is synchronized when systemd-timesyncd's flag is there or the kernel says so
    (another NTP daemon: chrony, ntpd).
    """
    uptime = float((proc / "uptime").read_text().split()[0])
    load = [float(x) for x in (proc / "loadavg").read_text().split()[:3]]
    return {
        "uptime_seconds": uptime,
        "load": load,
        "cpus": os.cpu_count() or 1,
        "memory": memory(proc),
        "disks": {name: disk(path) for name, path in volumes.items()},
        "clock_synchronized": timesync_flag.exists() or kernel_clock() is True,
        "addresses": addresses(),
    }
