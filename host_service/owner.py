"""Who owns a run: this process's identity, and whether a recorded owner is still alive."""

from __future__ import annotations

import os
from pathlib import Path

from host_service.state import Owner

PROC = Path("/proc")


def boot_id(proc: Path = PROC) -> str:
    try:
        return (proc / "sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return "unknown"


def process_start(pid: int, proc: Path = PROC) -> float | None:
    """The start time of ``pid`` in clock ticks since boot, or None when it is gone.

    Field 22 of /proc/PID/stat; the command name (field 2) may hold spaces and parentheses,
    so split after its closing parenthesis.
    """
    try:
        stat = (proc / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if fields and fields[0] in ("Z", "X"):
        return None  # a zombie has finished; only its parent has not reaped it yet
    try:
        return float(fields[19])
    except (IndexError, ValueError):
        return None


def this_process() -> tuple[int, float, str]:
    """(pid, start time, boot id) of the running process, for ``state.claim``."""
    pid = os.getpid()
    return pid, process_start(pid) or 0.0, boot_id()


def is_alive(owner: Owner, proc: Path = PROC) -> bool:
    """True only for the very process that recorded itself: same boot, pid and start time."""
    if owner.boot_id != boot_id(proc):
        return False
    started = process_start(owner.pid, proc)
    return started is not None and started == owner.started_at
