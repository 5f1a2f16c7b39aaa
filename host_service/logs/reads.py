"""Chunks of a log read through the ``Kube`` seam: the recent tail and older lines."""

from __future__ import annotations

from host_service.kube import Kube
from host_service.logs.lines import Cursor, number_text
from host_service.logs.target import LogTarget
from host_service.logs.window import Chunk, before

# An older chunk is found by reading a longer tail each time (the API has no "before"):
# at most this many lines are read for one chunk.
MAX_SCAN_LINES = 100_000
FIRST_SCAN_LINES = 1_000


def recent(kube: Kube, target: LogTarget, tail: int) -> Chunk:
    """The last ``tail`` lines."""
    lines = number_text(_read(kube, target, tail))
    return Chunk(lines, start=len(lines) < tail)


def older(kube: Kube, target: LogTarget, cursor: Cursor, limit: int) -> Chunk:
    """The ``limit`` lines before ``cursor``: tails of 4x the length until they reach that
    far back or the start of the log (``start`` then), at most ``MAX_SCAN_LINES``."""
    scan = max(FIRST_SCAN_LINES, 2 * limit)
    while True:
        lines = number_text(_read(kube, target, scan))
        whole = len(lines) < scan
        found = before(lines, cursor, limit + 1)
        if len(found) > limit or whole or scan >= MAX_SCAN_LINES:
            return Chunk(found[-limit:], start=whole and len(found) <= limit)
        scan = min(MAX_SCAN_LINES, scan * 4)


def _read(kube: Kube, target: LogTarget, tail: int) -> str:
    return kube.logs(
        target.namespace, target.pod, container=target.container, tail=tail,
        previous=target.previous, timestamps=True,
    )  # fmt: skip
