"""One background thread per resource kind: read at a bounded rate, keep the last reading.

Requests never read the cluster; they take the pollers' last readings. A kick (the bootstrap
advanced) wakes a poller early, but never closer than ``min_gap`` to its previous read, so
twenty viewers or a chatty bootstrap cost the cluster the same. A stop ends the program a
poller is running (kubectl) and joins the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from host_service import command
from host_service.operate.snapshot import NOT_READ, Reading

log = logging.getLogger(__name__)

STOP_GRACE = 2.0


class Poller:
    def __init__(
        self,
        name: str,
        read: Callable[[], Any],
        *,
        interval: float,
        clock: Callable[[], float] = time.time,
        skip: Callable[[], str | None] = lambda: None,
        on_read: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self._read = read
        self.interval = interval
        self.min_gap = min(1.0, interval)
        self._clock = clock
        self._skip = skip
        self._on_read = on_read
        self._reading = NOT_READ
        self._lock = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._children = command.Children()
        self._thread: threading.Thread | None = None
        self._last_try = 0.0  # monotonic

    @property
    def reading(self) -> Reading:
        with self._lock:
            return self._reading

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"poll-{self.name}", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._children.stop(STOP_GRACE)
        if self._thread is not None:
            self._thread.join(timeout=STOP_GRACE + 5)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait_cycles(self, cycles: int, timeout: float) -> Reading:
        """Block until ``cycles`` reads have completed (or ``timeout``); for tests and the
        first page after a start."""
        with self._lock:
            self._lock.wait_for(lambda: self._reading.cycles >= cycles, timeout=timeout)
            return self._reading

    def _run(self) -> None:
        with command.tracking(self._children):
            while not self._stop.is_set():
                self._once()
                self._wake.wait(self.interval)
                gap = self._last_try + self.min_gap - time.monotonic()
                if gap > 0:
                    self._stop.wait(gap)
                self._wake.clear()  # kicks until now are answered by the read that follows

    def _once(self) -> None:
        self._last_try = time.monotonic()
        now = self._clock()
        previous = self.reading
        skipped = self._skip()
        if skipped is not None:
            new = Reading(tried_at=now, cycles=previous.cycles + 1, skipped=skipped)
        else:
            try:
                value = self._read()
            except Exception as exc:  # a poller never dies: the reading says what failed
                if self._stop.is_set():
                    return
                message = str(exc).strip() or type(exc).__name__
                output = getattr(exc, "output", "")
                if output and output.strip().splitlines()[-1] not in message:
                    message = f"{message}: {output.strip().splitlines()[-1]}"
                log.debug("poll %s failed: %s", self.name, message)
                new = Reading(
                    value=previous.value,
                    error=message,
                    read_at=previous.read_at,
                    tried_at=now,
                    cycles=previous.cycles + 1,
                )
            else:
                new = Reading(value=value, read_at=now, tried_at=now, cycles=previous.cycles + 1)
        with self._lock:
            self._reading = new
            self._lock.notify_all()
        try:
            self._on_read()
        except Exception:  # a view bug must not end the poller
            log.exception("after reading %s", self.name)
