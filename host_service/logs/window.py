"""Bounded windows of log lines: what a stream keeps, and chunks picked by cursor."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from host_service.logs.lines import Cursor, LogLine


class LineWindow:
    """The last ``capacity`` lines of a stream, oldest first; ``dropped`` counts what fell
    off the front."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a line window holds at least one line")
        self.capacity = capacity
        self._lines: deque[LogLine] = deque(maxlen=capacity)
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._lines)

    def append(self, line: LogLine) -> None:
        if len(self._lines) == self.capacity:
            self.dropped += 1
        self._lines.append(line)

    @property
    def first(self) -> Cursor | None:
        return self._lines[0].cursor if self._lines else None

    @property
    def last(self) -> Cursor | None:
        return self._lines[-1].cursor if self._lines else None

    def lines(self) -> list[LogLine]:
        return list(self._lines)

    def after(self, cursor: Cursor | None) -> tuple[list[LogLine], bool]:
        """The kept lines after ``cursor`` (all without one), and whether lines between
        ``cursor`` and them may be missing (they fell off the front of the window)."""
        lines = list(self._lines)
        if cursor is None:
            return lines, False
        newer = after(lines, cursor)
        gap = self.dropped > 0 and len(newer) == len(lines) and bool(lines)
        return newer, gap


@dataclass(frozen=True)
class Chunk:
    """Lines read for a viewer; ``start`` says the log's first line is among them (or the
    log is empty): there is nothing older to load."""

    lines: list[LogLine]
    start: bool


def after(lines: Sequence[LogLine], cursor: Cursor) -> list[LogLine]:
    """The lines after ``cursor`` (``lines`` in log order)."""
    keys = [line.cursor for line in lines]
    return list(lines[bisect.bisect_right(keys, cursor) :])


def before(lines: Sequence[LogLine], cursor: Cursor, limit: int) -> list[LogLine]:
    """The last ``limit`` lines before ``cursor`` (``lines`` in log order)."""
    keys = [line.cursor for line in lines]
    end = bisect.bisect_left(keys, cursor)
    return list(lines[max(0, end - limit) : end])
