"""The live bootstrap state: one lock, atomic persistence after every change, change waiters."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from host_service import atomic
from host_service import state as sm
from host_service.errors import HostNotReady
from host_service.schema import Schema
from host_service.state import BootstrapState

log = logging.getLogger(__name__)

SCHEMA = Schema.load(Path(__file__).resolve().parent / "schemas" / "bootstrap-state-v1.json")


def load_state(path: Path) -> BootstrapState:
    """The persisted state; a missing file is a fresh appliance.

    A corrupt file is moved aside, not trusted: the state is only a cache of progress and the
    steps probe reality, so starting over is safe.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return BootstrapState()
    except (OSError, ValueError) as exc:
        _quarantine(path, f"not readable JSON: {exc}")
        return BootstrapState()
    problems = [str(p) for p in SCHEMA.problems(data)]
    state = BootstrapState.from_json(data) if not problems else BootstrapState()
    problems = problems or sm.contradictions(state)
    if problems:
        _quarantine(path, "; ".join(problems[:5]))
        return BootstrapState()
    return state


def _quarantine(path: Path, why: str) -> None:
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    log.warning("%s: %s; moved to %s and starting from a fresh state", path, why, aside.name)
    path.replace(aside)


def save_state(path: Path, state: BootstrapState) -> None:
    atomic.write_json(path, state.to_json(), mode=0o600)


STATE_DISK_HINT = "free space on (or remount read-write) the disk holding the state directory"

Transition = Callable[[BootstrapState], BootstrapState]


class StateWriteFailed(HostNotReady):
    """The state could not be written (a full or read-only disk); nothing changed."""


def _write_error(path: Path, exc: OSError) -> str:
    # The OSError's own text names the temp file; the operator needs the state file and why.
    return f"cannot write {path}: {exc.strerror or exc}"


class StateKeeper:
    """Holds the current state; every change is persisted before anyone can observe it."""

    def __init__(self, path: Path, state: BootstrapState) -> None:
        self.path = path
        self._state = state
        self._version = 0
        self._write_error: str | None = None
        self._changed = threading.Condition()

    @property
    def state(self) -> BootstrapState:
        with self._changed:
            return self._state

    @property
    def version(self) -> int:
        with self._changed:
            return self._version

    @property
    def write_error(self) -> str | None:
        """Why the last write failed, until a write succeeds again (shown in the status)."""
        with self._changed:
            return self._write_error

    def snapshot(self) -> tuple[int, BootstrapState]:
        with self._changed:
            return self._version, self._state

    def persist(self) -> None:
        with self._changed:
            save_state(self.path, self._state)

    def update(self, transition: Transition) -> BootstrapState:
        """Apply ``transition``, write it to disk, then wake waiters. Raises what it raises.

        A failed write raises ``StateWriteFailed`` and changes nothing but ``write_error``
        (waiters are woken so the status shows it).
        """
        with self._changed:
            new = transition(self._state)
            if new is not self._state:
                try:
                    save_state(self.path, new)
                except OSError as exc:
                    message = _write_error(self.path, exc)
                    if message != self._write_error:
                        self._write_error = message
                        self._version += 1
                        self._changed.notify_all()
                    raise StateWriteFailed(message, hint=STATE_DISK_HINT) from exc
                self._write_error = None
                self._state = new
                self._version += 1
                self._changed.notify_all()
            return new

    def wait_for_change(self, version: int, timeout: float) -> tuple[int, BootstrapState]:
        """Block until the version differs from ``version`` (or ``timeout``); for SSE/long-poll."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != version, timeout=timeout)
            return self._version, self._state
