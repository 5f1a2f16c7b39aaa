"""Progress on a terminal: one redrawn line on stderr, nothing when quiet or not a TTY."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

BAR_WIDTH = 30
REDRAW_SECONDS = 0.2


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class Progress:
    """A byte or percentage counter for long work; a no-op unless ``enabled``.

    Use as a context manager; ``update`` takes the absolute amount done so far.
    """

    def __init__(
        self,
        label: str,
        total: float | None,
        *,
        enabled: bool,
        stream: TextIO | None = None,
        counts_bytes: bool = False,
    ) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.counts_bytes = counts_bytes  # show bytes done, the rate and the time left
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._done = 0.0

    @staticmethod
    def wanted(quiet: bool, stream: TextIO | None = None) -> bool:
        """Whether progress should show: not quiet and stderr is a terminal."""
        target = stream if stream is not None else sys.stderr
        return not quiet and target.isatty()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(success=exc_type is None)

    def render(self) -> str:
        if self.total:
            fraction = min(self._done / self.total, 1.0)
            filled = int(fraction * BAR_WIDTH)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            line = f"{self.label} [{bar}] {fraction * 100:5.1f}%"
            return line + self._rate(self.total) if self.counts_bytes else line
        return f"{self.label} {_human(self._done)}"

    def _rate(self, total: float) -> str:
        elapsed = time.monotonic() - self._started
        rate = self._done / elapsed if elapsed > 0 else 0.0
        text = f"  {_human(self._done)} of {_human(total)}  {_human(rate)}/s"
        if rate > 0 and self._done < total:
            left = int((total - self._done) / rate)
            text += f"  ETA {left // 60}:{left % 60:02d}"
        return text

    def update(self, done: float) -> None:
        self._done = done
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw >= REDRAW_SECONDS:
            self._last_draw = now
            self.stream.write("\r\x1b[K" + self.render())
            self.stream.flush()

    def close(self, *, success: bool = True) -> None:
        if not self.enabled:
            return
        if success and self.total:
            self._done = self.total
        self.stream.write("\r\x1b[K" + self.render() + "\n")
        self.stream.flush()
        self.enabled = False
