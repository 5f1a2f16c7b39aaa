"""Big one-pass outputs written past the page cache (O_DIRECT), falling back where it can't.

A 3 GB image written once is not read again soon; through the page cache every page of it
must first be allocated (and, in a VM, faulted in from the host), which cost 4-5 CPU-s for
2.6 GiB on the development VM under load against 0.16 CPU-s written direct (measured,
docs/building.md). Direct I/O moves the bytes from our buffers to the device and leaves
them durable. It needs aligned offsets, lengths and buffers (``overlap`` buffers are
``mmap`` pages); what is not aligned, an image's last bytes, goes through the page cache.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from typing import IO

# Offsets and lengths must be multiples of the logical block size of the device below the
# file; 4096 covers 512-byte and 4Kn disks alike.
FILE_ALIGN = 4096


def round_up(n: int, align: int) -> int:
    """``n`` rounded up to a whole number of ``align``-byte blocks."""
    return -(-n // align) * align


def set_direct(fd: int, on: bool) -> bool:
    """Turn O_DIRECT on or off; False when the filesystem refuses it (tmpfs before 6.6)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT if on else flags & ~os.O_DIRECT)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return False
        raise
    return True


class WriteStopped(OSError):
    """A write the system refused after ``done`` of its bytes went in (``errno`` says why)."""

    def __init__(self, code: int, reason: str, *, done: int) -> None:
        super().__init__(code, reason)
        self.done = done


class DirectWriter:
    """Writes at offsets (from ``base``) into a descriptor, direct where alignment allows."""

    def __init__(
        self, fd: int, *, align: int = FILE_ALIGN, direct: bool = True, base: int = 0
    ) -> None:
        self.fd = fd
        self.align = align
        self.base = base
        self.direct = direct and set_direct(fd, True)

    def write(self, data: memoryview, offset: int) -> None:
        """All of ``data`` at ``offset``; :class:`WriteStopped` (an OSError with how many of
        its bytes went in before) as the system reports a failure."""
        offset += self.base
        buffered = self.direct and (len(data) % self.align != 0 or offset % self.align != 0)
        if buffered:
            set_direct(self.fd, False)
        done = 0
        try:
            while done < len(data):
                # Released on the way out, also when the write fails: a view left alive
                # keeps the caller from closing the mapping under ``data`` (BufferError).
                with data[done:] as rest:
                    done += os.pwrite(self.fd, rest, offset + done)
        except OSError as exc:
            raise WriteStopped(exc.errno or errno.EIO, exc.strerror or str(exc), done=done) from exc
        finally:
            if buffered:
                set_direct(self.fd, True)


def writer_for(out: IO[bytes]) -> DirectWriter | None:
    """A direct writer on ``out``'s descriptor from its position, for a regular file."""
    try:
        fd = out.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        return None
    out.flush()  # nothing the file object holds may land after our writes
    return DirectWriter(fd, base=out.tell())
