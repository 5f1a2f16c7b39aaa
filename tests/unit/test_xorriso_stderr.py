"""xorriso's stderr is drained to the end, even when the progress display fails."""

from __future__ import annotations

import io
from collections import deque

from isobuild.iso.xorriso import drain_stderr

PACIFIER = "xorriso : UPDATE : Writing:       3168s   {:.1f}%   fifo 100%  buf  50%\n"


def test_every_line_is_read_and_progress_follows_the_pacifier() -> None:
    stream = io.BytesIO("".join(PACIFIER.format(p) for p in (10, 55.5, 100)).encode())
    seen: list[float] = []
    tail: deque[str] = deque(maxlen=30)
    drain_stderr(stream, tail, seen.append)
    assert seen == [10.0, 55.5, 100.0]
    assert tail[-1] == PACIFIER.format(100).rstrip()
    assert stream.closed


def test_a_failing_progress_display_stops_showing_but_the_stream_is_drained() -> None:
    # More than a pipe holds (64 KiB): if reading stopped, xorriso would block on write.
    lines = [PACIFIER.format(i / 10) for i in range(2000)]
    stream = io.BytesIO("".join(lines).encode())
    calls: list[float] = []

    def broken_terminal(percent: float) -> None:
        calls.append(percent)
        raise OSError(5, "Input/output error")

    tail: deque[str] = deque(maxlen=30)
    drain_stderr(stream, tail, broken_terminal)
    assert calls == [0.0]  # shown once, then no more attempts
    assert tail[-1] == lines[-1].rstrip()
    assert stream.closed
