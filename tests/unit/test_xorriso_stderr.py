"""xorriso's stderr is drained to the end, even when the progress display fails, and its
messages are kept for an error without the progress lines."""

from __future__ import annotations

import io
from collections import deque

from isobuild.iso.xorriso import drain_stderr

PACIFIER = "xorriso : UPDATE : Writing:       3168s   {:.1f}%   fifo 100%  buf  50%\n"
SORRY = "xorriso : SORRY : Cannot determine attributes of source file '/s/k3s'\n"
FAILURE = "libburn : FAILURE : Failed to write to stdio drive\n"


def test_every_line_is_read_and_progress_follows_the_pacifier() -> None:
    text = "".join(PACIFIER.format(p) for p in (10, 55.5, 100)) + FAILURE
    stream = io.BytesIO(text.encode())
    seen: list[float] = []
    tail: deque[str] = deque(maxlen=30)
    drain_stderr(stream, tail, seen.append)
    assert seen == [10.0, 55.5, 100.0]
    assert list(tail) == [FAILURE.rstrip()]
    assert stream.closed


def test_progress_lines_do_not_push_the_messages_out_of_the_tail() -> None:
    # xorriso reports ten times a second (isobuild asks it to): a long write's progress
    # lines would otherwise leave only themselves in what an error shows.
    text = SORRY + "".join(PACIFIER.format(i / 10) for i in range(1000)) + FAILURE
    tail: deque[str] = deque(maxlen=30)
    drain_stderr(io.BytesIO(text.encode()), tail, lambda _percent: None)
    assert list(tail) == [SORRY.rstrip(), FAILURE.rstrip()]


def test_a_failing_progress_display_stops_showing_but_the_stream_is_drained() -> None:
    # More than a pipe holds (64 KiB): if reading stopped, xorriso would block on write.
    lines = [PACIFIER.format(i / 10) for i in range(2000)] + [FAILURE]
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
