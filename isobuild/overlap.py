"""I/O overlapped with work: the caller fills buffers, one thread consumes them in order.

The consumer (hashing, writing a device) runs while the caller reads the next chunk:
hashlib and os.pwrite release the GIL, so on two cores both sides run at once. Buffers are
``mmap`` pages, allocated once and reused: page-aligned as O_DIRECT needs, and no fresh
memory to fault in for every chunk (which costs as much as the copy in a VM).

The queues take locks: a caller on the main thread runs inside ``interrupt.deferred()``
and calls its checkpoint between chunks, never between ``take`` and ``give``.
"""

from __future__ import annotations

import mmap
import queue
import threading
from collections.abc import Callable
from types import TracebackType

CHUNK = 8 << 20
DEPTH = 4

Consume = Callable[[memoryview, int], None]


class Stage:
    """One consumer thread; ``take`` a free buffer, fill it, ``give`` it with its length.

    ``consume(view, offset)`` sees every given buffer in order. Its first error is raised
    in the caller by the next ``take`` or by ``finish``; later buffers are not consumed.
    Leaving the ``with`` block on an exception stops after the chunk in hand.
    """

    def __init__(
        self, consume: Consume, *, name: str, chunk: int = CHUNK, depth: int = DEPTH
    ) -> None:
        self.chunk = chunk
        self.consumed = 0  # bytes consumed so far (progress)
        self._consume = consume
        self._free: queue.Queue[mmap.mmap] = queue.Queue()
        for _ in range(depth):
            self._free.put(mmap.mmap(-1, chunk))
        self._full: queue.Queue[tuple[mmap.mmap, int, int] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._full.get()) is not None:
            buffer, length, offset = item
            if self._error is None and not self._cancelled:
                try:
                    self._consume(memoryview(buffer)[:length], offset)
                    self.consumed += length
                except BaseException as exc:  # raised in the caller's thread
                    self._error = exc
            self._free.put(buffer)

    def take(self) -> mmap.mmap:
        """A free buffer (waits while the consumer is behind)."""
        buffer = self._free.get()
        if self._error is not None:
            self._free.put(buffer)
            raise self._error
        return buffer

    def give(self, buffer: mmap.mmap, length: int, offset: int = 0) -> None:
        self._full.put((buffer, length, offset))

    def finish(self) -> None:
        """Wait until every given buffer is consumed; raise the consumer's error."""
        self._stop()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop after the buffer being consumed; the rest are dropped."""
        self._cancelled = True
        self._stop()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._full.put(None)
            self._thread.join()

    def __enter__(self) -> Stage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.finish()
