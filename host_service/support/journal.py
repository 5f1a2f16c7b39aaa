"""The systemd journal of a unit, bounded by time and size (for the support bundle)."""

from __future__ import annotations

from typing import Protocol

from host_service import command
from host_service.command import CommandError
from host_service.errors import ExternalError

# Lines are far shorter on average; this only keeps journalctl from printing days of logs.
AVERAGE_LINE = 120


class JournalError(ExternalError):
    """The journal could not be read; the message says why."""


class Journal(Protocol):
    def read(self, unit: str, *, since_hours: float, max_bytes: int) -> str:
        """The unit's journal of the last ``since_hours`` hours, at most about ``max_bytes``
        (the newest lines); raises JournalError."""
        ...


class Journalctl:
    """``Journal`` through ``journalctl``: ISO timestamps, no pager, newest lines kept."""

    def __init__(self, *, timeout: float = 30.0) -> None:
        self.timeout = timeout

    def read(self, unit: str, *, since_hours: float, max_bytes: int) -> str:
        argv = [
            "journalctl",
            "--unit",
            unit,
            f"--since=-{max(1, round(since_hours * 60))}min",
            f"--lines={max(1, max_bytes // AVERAGE_LINE)}",
            "--output=short-iso-precise",
            "--no-pager",
            "--quiet",
        ]
        try:
            text = command.run(argv, timeout=self.timeout).stdout
        except CommandError as exc:
            raise JournalError(f"{exc.message}: {exc.output}".strip(": ")) from exc
        data = text.encode("utf-8", "surrogateescape")
        if len(data) > max_bytes:
            text = data[-max_bytes:].decode("utf-8", "replace")
        return text
