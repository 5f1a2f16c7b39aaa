"""What every step gets (settings, inputs, the typed interfaces) and how it fails."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from host_service.errors import ServiceError
from host_service.host import Host
from host_service.intent import SetupIntent
from host_service.k3s_binary import K3sBinary
from host_service.kube import Kube
from host_service.registry_access import RegistryAccess
from host_service.settings import Settings
from host_service.systemd import Systemd

T = TypeVar("T")


class StepFailed(ServiceError):
    """A step stopped: what failed, the likely cause, what to do, and the output tail."""

    def __init__(self, message: str, *, cause: str, next_step: str, output: str = "") -> None:
        super().__init__(message, hint=next_step)
        self.cause = cause
        self.next_step = next_step
        self.output = output


class Cancelled(Exception):
    """The service is shutting down; the step stops where it is and resumes on next start.

    Control flow, not an error: it is outside the ``ServiceError`` tree on purpose.
    """


Reporter = Callable[[str, "str | None"], None]


@dataclass
class StepContext:
    settings: Settings
    intent: SetupIntent
    kube: Kube
    systemd: Systemd
    k3s: K3sBinary
    host: Host
    registry: RegistryAccess
    reporter: Reporter
    clock: Callable[[], float] = time.monotonic
    stopping: threading.Event = field(default_factory=threading.Event)

    def report(self, message: str, *, detail: str | None = None) -> None:
        """Progress shown on the status page (``detail`` is kept as a line in the step)."""
        self.reporter(message, detail)

    def sleep(self, seconds: float) -> None:
        if self.stopping.wait(seconds):
            raise Cancelled()

    def poll(
        self,
        check: Callable[[], tuple[T | None, str]],
        *,
        timeout: float,
        on_timeout: Callable[[str], StepFailed],
    ) -> T:
        """Call ``check`` until it returns a value; it also returns what it is waiting for.

        The waiting message is reported whenever it changes; after ``timeout`` seconds
        ``on_timeout(last message)`` is raised.
        """
        deadline = self.clock() + timeout
        last = ""
        while True:
            value, waiting = check()
            if value is not None:
                return value
            if waiting != last:
                self.report(waiting)
                last = waiting
            if self.clock() >= deadline:
                raise on_timeout(last)
            self.sleep(min(self.settings.timeouts.poll_interval, max(0.0, deadline - self.clock())))
