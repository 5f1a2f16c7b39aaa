"""The state directory's lock: one process at a time drives the appliance (the service, or a
support command while the service is stopped)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from host_service.errors import AlreadyRunning


def hold(path: Path) -> IO[str]:
    """Take the exclusive lock on ``path`` (kept while the returned file is open)."""
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise AlreadyRunning(
            f"{path}: another host service process is running with this state directory "
            f"(pid {holder})",
            hint="stop it first (systemctl stop appliance-setup)",
        ) from exc
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
