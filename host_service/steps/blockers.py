"""What the operator reads when a step stops: blocker wording as data, and the one builder.

A step's wording lives in a table beside the step (``Wording`` per failure, ``{field}``
placeholders filled from the failure); ``to_blocker`` turns whatever a step raised into the
``Blocker`` the status page shows. A full or read-only disk gets its own wording, never
"a bug in the host service".
"""

from __future__ import annotations

import errno
import logging
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from host_service.command import CommandError
from host_service.errors import ServiceError
from host_service.state import Blocker, Step
from host_service.steps.context import StepFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wording:
    """A blocker's three texts; ``{name}`` placeholders are filled by ``failed``."""

    message: str
    cause: str
    next_step: str

    def failed(self, *, output: str = "", **fields: object) -> StepFailed:
        return StepFailed(
            self.message.format(**fields),
            cause=self.cause.format(**fields),
            next_step=self.next_step.format(**fields),
            output=output,
        )


class WordingTable:
    """Exception class -> wording, looked up along the exception's MRO (most specific first)."""

    def __init__(self, entries: Mapping[type[BaseException], Wording]) -> None:
        self.entries = dict(entries)

    def wording(self, exc: BaseException) -> Wording | None:
        for cls in type(exc).__mro__:
            if cls in self.entries:
                return self.entries[cls]
        return None

    def failed(self, exc: BaseException, *, output: str = "", **fields: object) -> StepFailed:
        """The blocker for ``exc``; ``exc`` must be of a class the table covers."""
        wording = self.wording(exc)
        if wording is None:
            raise TypeError(f"no blocker wording for {type(exc).__name__}")
        return wording.failed(output=output, exc=exc, **fields)


_FULL = Wording(
    "cannot write {path}: {strerror}",
    "the disk holding {path} is full",
    "free space on it (df -h {directory} shows what is left) or grow the volume "
    "(lvextend + resize2fs), then retry",
)
_DENIED = Wording(
    "cannot use {path}: {strerror}",
    "the service may not write there: its owner, mode or attributes were changed",
    "restore what the installer set (root-owned, state directory mode 0700), then retry",
)
# errno of an OSError a step raised -> what the operator reads.
DISK: Mapping[int, Wording] = {
    errno.ENOSPC: _FULL,
    errno.EDQUOT: _FULL,
    errno.EROFS: Wording(
        "cannot write {path}: {strerror}",
        "the file system holding {path} is read-only (mounted so, or remounted read-only "
        "by the kernel after disk errors)",
        "check the kernel log for disk errors (journalctl -k), remount it read-write "
        "(mount -o remount,rw on its mount point), then retry",
    ),
    errno.EACCES: _DENIED,
    errno.EPERM: _DENIED,
    errno.EIO: Wording(
        "cannot use {path}: {strerror}",
        "the disk reported an input/output error",
        "check the disk (journalctl -k), replace it if it is failing, then retry",
    ),
}

_EXTERNAL = Wording(
    "{step} failed: {exc}",
    "an unexpected error from a tool or the registry",
    "read the output, then retry; if it persists, collect a support bundle",
)
_BUG = Wording(
    "{step} failed with an internal error: {exc!r}",
    "a bug in the host service",
    "retry; if it persists, collect a support bundle and report it",
)


def disk_failure(exc: OSError, *, fallback: Path) -> StepFailed | None:
    """The blocker for a full, read-only or failing disk, or None for another OSError."""
    wording = DISK.get(exc.errno or 0)
    if wording is None:
        return None
    path = Path(exc.filename) if exc.filename else fallback
    return wording.failed(
        path=path,
        directory=path if path.is_dir() else path.parent,
        strerror=exc.strerror or exc,
    )


def to_blocker(
    step: Step, exc: Exception, redact: Callable[[str], str], *, state_dir: Path
) -> Blocker:
    """What the operator sees for a step that failed (called while ``exc`` is handled)."""
    failed: StepFailed | None = exc if isinstance(exc, StepFailed) else None
    if failed is None and isinstance(exc, OSError):
        failed = disk_failure(exc, fallback=state_dir)
    if failed is None and isinstance(exc, ServiceError):
        output = exc.output if isinstance(exc, CommandError) else ""
        failed = _EXTERNAL.failed(output=output, step=step.value, exc=exc)
    if failed is None:
        log.exception("step %s crashed", step.value)
        failed = _BUG.failed(output=traceback.format_exc(), step=step.value, exc=exc)
    return Blocker(
        step=step,
        message=redact(failed.message),
        cause=redact(failed.cause),
        next_step=redact(failed.next_step),
        output=redact(failed.output),
    )
