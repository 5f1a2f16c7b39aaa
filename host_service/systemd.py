"""systemd through systemctl and journalctl, behind one small typed interface."""

from __future__ import annotations

from typing import Protocol

from host_service import command
from host_service.command import CommandError, CommandFailed


class SystemdError(CommandError):
    """systemctl could not do what it was asked; ``output`` is the tail to show."""


class Systemd(Protocol):
    def daemon_reload(self) -> None: ...

    def enable_now(self, unit: str) -> None:
        """Enable ``unit`` at boot and start it now (no-op when already both)."""
        ...

    def restart(self, unit: str) -> None: ...

    def active_state(self, unit: str) -> str:
        """``active``, ``activating``, ``failed``, ``inactive``, ... (never raises for those)."""
        ...

    def journal(self, unit: str, *, lines: int = 40) -> str:
        """The unit's recent journal, for blockers; empty when unavailable."""
        ...


class Systemctl:
    def __init__(self, *, timeout: float = 120.0) -> None:
        self.timeout = timeout

    def _run(self, args: list[str]) -> str:
        try:
            return command.run(["systemctl", *args], timeout=self.timeout).stdout
        except CommandError as exc:
            raise SystemdError(exc.message, argv=exc.argv, output=exc.output) from exc

    def daemon_reload(self) -> None:
        self._run(["daemon-reload"])

    def enable_now(self, unit: str) -> None:
        # --no-block: k3s is Type=notify and may take minutes to be ready; readiness is
        # judged by the API, not by how long systemctl waits.
        self._run(["enable", "--now", "--no-block", unit])

    def restart(self, unit: str) -> None:
        self._run(["restart", "--no-block", unit])

    def active_state(self, unit: str) -> str:
        try:
            result = command.run(
                ["systemctl", "show", "--property=ActiveState", "--value", unit],
                timeout=self.timeout,
            )
        except CommandFailed as exc:
            raise SystemdError(exc.message, argv=exc.argv, output=exc.output) from exc
        except CommandError as exc:
            raise SystemdError(exc.message, argv=exc.argv, output=exc.output) from exc
        return result.stdout.strip() or "unknown"

    def journal(self, unit: str, *, lines: int = 40) -> str:
        try:
            return command.run(
                ["journalctl", "--unit", unit, "--no-pager", "--lines", str(lines), "--quiet"],
                timeout=30,
            ).stdout
        except CommandError:
            return ""
