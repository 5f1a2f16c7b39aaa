"""A device read in order with two requests in flight, for the flash read-back.

dd reads with one request at a time: the medium idles while each answer travels back and
the next request goes out. Here ``depth`` threads each own one buffer and read every
``depth``-th request, so the next request is already in flight while one is checked; the
caller gets the pieces in order. Against `dd bs=4M iflag=direct` on the project's VMs
(docs/building.md), two 4 MiB requests in flight read at 96-113 % of dd's throughput by
the median in every run measured (runs R, T and W), where one 4 MiB request at a time (the
read-back before run R) read at 86-98 %. Larger requests won on one VM (run R: 16 MiB,
132 %) and lost on another (run W: 16 MiB, 77-91 %, its host slower with 32 MiB in
flight), so each request is dd's size. By the single fastest read, dd is usually ahead.
The threads only wait in ``preadv``, which drops the GIL.
"""

from __future__ import annotations

import mmap
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

from isobuild.direct_io import round_up
from isobuild.errors import FlashError

REQUEST = 4 << 20  # bytes per read request, as dd's (run W)
DEPTH = 2  # requests in flight: more gained nothing measurable (run R)

_Result = tuple[int, int] | BaseException  # (offset, bytes read), or what the read raised


def _pread_full(fd: int, path: Path, view: memoryview, offset: int) -> int:
    """Fill ``view`` from ``offset``; fewer bytes only where the target ends."""
    done = 0
    try:
        while done < len(view):
            got = os.preadv(fd, [view[done:]], offset + done)
            if got == 0:
                break
            done += got
    except OSError as exc:
        raise FlashError(
            f"{path}: read failed at byte {offset + done}: {exc.strerror}",
            hint="the disk or stick may be failing",
        ) from None
    return done


class _Reader:
    """One thread, one buffer: reads requests ``first``, ``first + depth``, ... in turn."""

    def __init__(self, ahead: ReadAhead, first: int) -> None:
        self.buffer = mmap.mmap(-1, round_up(ahead.request, ahead.align))  # page-aligned
        self.results: queue.SimpleQueue[_Result] = queue.SimpleQueue()
        self.free: queue.SimpleQueue[bool] = queue.SimpleQueue()  # False: stop
        self.thread = threading.Thread(
            target=self._run, args=(ahead, first), name=f"read-ahead-{first}", daemon=True
        )

    def _run(self, ahead: ReadAhead, first: int) -> None:
        with memoryview(self.buffer) as view:
            for index in range(first, ahead.requests, ahead.depth):
                if index >= ahead.depth and not self.free.get():
                    return
                offset = index * ahead.request
                length = min(ahead.request, ahead.size - offset)
                want = round_up(length, ahead.align) if ahead.direct else length
                try:
                    got = _pread_full(ahead.fd, ahead.path, view[:want], offset)
                except BaseException as exc:  # handed to the caller's thread
                    self.results.put(exc)
                    return
                self.results.put((offset, min(got, length)))
                if got < length:  # the target ends here: nothing more to read
                    return


class ReadAhead:
    """``(offset, data)`` over the target's first ``size`` bytes, in order.

    ``data`` is a view of a reader's buffer, valid until the next step of the iteration;
    it is shorter than the request only where the target ends, and the iteration ends
    with it. A read error is raised in the caller's thread. The readers start at once;
    use it as ``with contextlib.closing(ReadAhead(...))``, and close ``fd`` only after
    ``close``.
    """

    def __init__(
        self,
        fd: int,
        path: Path,
        size: int,
        *,
        align: int,
        direct: bool,
        request: int = REQUEST,
        depth: int = DEPTH,
    ) -> None:
        if request % align:
            raise ValueError(f"a request of {request} bytes is not a multiple of {align}")
        self.fd, self.path, self.size = fd, path, size
        self.align, self.direct, self.request, self.depth = align, direct, request, depth
        self.requests = -(-size // request)
        self._readers = [_Reader(self, first) for first in range(depth)]
        for reader in self._readers:
            reader.thread.start()

    def __iter__(self) -> Iterator[tuple[int, memoryview]]:
        for index in range(self.requests):
            reader = self._readers[index % self.depth]
            result = reader.results.get()
            if isinstance(result, BaseException):
                raise result
            offset, got = result
            with memoryview(reader.buffer)[:got] as data:
                yield offset, data
            reader.free.put(True)
            if got < min(self.request, self.size - offset):
                return

    def close(self) -> None:
        """Stop the readers, after the request each may have in flight."""
        for reader in self._readers:
            reader.free.put(False)
        for reader in self._readers:
            reader.thread.join()
