"""systemd through systemctl and journalctl, behind one small typed interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from host_service import command
from host_service.command import CommandError


class SystemdError(CommandError):
    """systemctl could not do what it was asked; ``output`` is the tail to show."""


@dataclass(frozen=True)
class UnitState:
    """What ``systemctl show`` says about a unit."""

    active: str  # ActiveState: active, activating, failed, inactive, ...
    sub: str = ""  # SubState: running, auto-restart, dead, ...
    restarts: int = 0  # NRestarts: how often Restart= has restarted it since it was started

    @property
    def crash_looping(self) -> bool:
        """Exiting and being restarted over and over (Restart=always never reaches failed)."""
        return self.active == "failed" or (self.sub == "auto-restart" and self.restarts >= 2)


class Systemd(Protocol):
    def daemon_reload(self) -> None: ...

    def enable_now(self, unit: str) -> None:
        """Enable ``unit`` at boot and start it now (no-op when already both)."""
        ...

    def restart(self, unit: str) -> None: ...

    def unit_state(self, unit: str) -> UnitState: ...

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

    def unit_state(self, unit: str) -> UnitState:
        text = self._run(["show", "--property=ActiveState,SubState,NRestarts", unit])
        values = dict(line.partition("=")[::2] for line in text.splitlines() if "=" in line)
        restarts = values.get("NRestarts", "0")
        return UnitState(
            active=values.get("ActiveState", "") or "unknown",
            sub=values.get("SubState", ""),
            restarts=int(restarts) if restarts.isascii() and restarts.isdigit() else 0,
        )

    def journal(self, unit: str, *, lines: int = 40) -> str:
        try:
            return command.run(
                ["journalctl", "--unit", unit, "--no-pager", "--lines", str(lines), "--quiet"],
                timeout=30,
            ).stdout
        except CommandError:
            return ""
