"""Host facts for the status page, read from /proc and the file systems (no programs)."""

from __future__ import annotations

import functools
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


def memory(proc: Path) -> dict[str, int | None]:
    """Total and available bytes; None for what /proc/meminfo does not say. Kernels before
    3.14 have no MemAvailable: free + buffers + page cache, free(1)'s estimate then."""
    values: dict[str, int] = {}
    for line in (proc / "meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():  # "MemTotal:" with no value is not a zero
            values[key.strip()] = int(fields[0]) * 1024
    available = values.get("MemAvailable")
    if available is None and {"MemFree", "Buffers", "Cached"} <= values.keys():
        available = values["MemFree"] + values["Buffers"] + values["Cached"]
    return {"total": values.get("MemTotal"), "available": available}


def _fact(name: str, read: Callable[[], Any], unreadable: dict[str, str]) -> Any:
    """One fact, or None with why in ``unreadable``: a fact that cannot be read must not
    take the others with it (the disk-full blocker reads the disks)."""
    try:
        return read()
    except Exception as exc:
        unreadable[name] = str(exc) or type(exc).__name__
        return None


def read_host(
    proc: Path,
    *,
    volumes: Mapping[str, Path],
    timesync_flag: Path,
    kernel_clock: Callable[[], bool | None],
    addresses: Callable[[], list[str]],
) -> dict[str, Any]:
    """Uptime, load, memory, the named volumes' disks, clock sync and addresses, each read on
    its own: what cannot be read is None (a disk is left out) and ``unreadable`` says why.

    The clock is synchronized when systemd-timesyncd's flag is there or the kernel says so
    (another NTP daemon: chrony, ntpd).
    """
    unreadable: dict[str, str] = {}
    disks = {}
    for name, path in volumes.items():
        found = _fact(f"{name} volume", functools.partial(disk, path), unreadable)
        if found is not None:
            disks[name] = found
    return {
        "uptime_seconds": _fact(
            "uptime", lambda: float((proc / "uptime").read_text().split()[0]), unreadable
        ),
        "load": _fact(
            "load",
            lambda: [float(x) for x in (proc / "loadavg").read_text().split()[:3]],
            unreadable,
        ),
        "cpus": os.cpu_count() or 1,
        "memory": _fact("memory", lambda: memory(proc), unreadable),
        "disks": disks,
        "clock_synchronized": _fact(
            "clock", lambda: timesync_flag.exists() or kernel_clock() is True, unreadable
        ),
        "addresses": _fact("addresses", addresses, unreadable),
        "unreadable": unreadable,
    }
