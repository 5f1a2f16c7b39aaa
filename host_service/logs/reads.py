"""Chunks of a log read through the ``Kube`` seam: the recent tail and older lines."""

from __future__ import annotations

from host_service.kube import Kube
from host_service.logs.lines import Cursor, LogLine, number_text
from host_service.logs.target import LogTarget
from host_service.logs.window import Chunk, before

# An older chunk is found by reading a longer tail each time (the API has no "before"):
# at most this many lines are read for one chunk.
MAX_SCAN_LINES = 100_000
FIRST_SCAN_LINES = 1_000


def recent(kube: Kube, target: LogTarget, tail: int) -> Chunk:
    """The last ``tail`` lines (one more is read, for their ranks; see :func:`_ranked`)."""
    scan = tail + 1
    while True:
        lines, whole = _ranked(kube, target, scan)
        if len(lines) >= tail or whole or scan >= MAX_SCAN_LINES:
            return Chunk(lines[-tail:], start=whole and len(lines) <= tail)
        scan = min(MAX_SCAN_LINES, scan * 4)


def older(kube: Kube, target: LogTarget, cursor: Cursor, limit: int) -> Chunk:
    """The ``limit`` lines before ``cursor``: tails of 4x the length until they reach that
    far back or the start of the log (``start`` then), at most ``MAX_SCAN_LINES``."""
    scan = max(FIRST_SCAN_LINES, 2 * limit)
    while True:
        lines, whole = _ranked(kube, target, scan)
        found = before(lines, cursor, limit + 1)
        if len(found) > limit or whole or scan >= MAX_SCAN_LINES:
            return Chunk(found[-limit:], start=whole and len(found) <= limit)
        scan = min(MAX_SCAN_LINES, scan * 4)


def _ranked(kube: Kube, target: LogTarget, scan: int) -> tuple[list[LogLine], bool]:
    """The last ``scan`` lines that have their true cursors, and whether they are the whole log.

    Lines with one stamp are ranked from the first of them (``~1``, ``~2``, ...). A tail that
    begins inside such a run cannot know how many came before: its first run's ranks would
    differ from those a longer read gives the same lines, and a cursor taken from one would
    find the wrong place in the other ("load older" skipped lines). So a tail that is not
    the whole log drops the lines that share its first line's stamp.
    """
    lines = number_text(_read(kube, target, scan))
    if len(lines) < scan:
        return lines, True
    first = lines[0].cursor.ns
    ranked = next((i for i, line in enumerate(lines) if line.cursor.ns != first), len(lines))
    return lines[ranked:], False


def _read(kube: Kube, target: LogTarget, tail: int) -> str:
    return kube.logs(
        target.namespace, target.pod, container=target.container, tail=tail,
        previous=target.previous, timestamps=True,
    )  # fmt: skip
