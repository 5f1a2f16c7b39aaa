"""The image onto the device with large aligned direct I/O, and back off it for verifying.

The write sends the ISO's mapped pages to the device with direct I/O, one 16 MiB request
after another (dd's usual 4M is a quarter of that), with no copy. The read-back reads the
device directly, two 16 MiB requests in flight (isobuild.flash.read_ahead), and checks
each 4 MiB chunk against the digest taken of the ISO's chunk when its sha256 was checked
(isobuild.flash.chunk_digests). Ctrl-C is checked between requests.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from isobuild import interrupt, no_room
from isobuild.direct_io import DirectWriter, WriteStopped, round_up
from isobuild.errors import DeviceRefused, EnvironmentProblem, FlashError
from isobuild.flash import compare, read_ahead
from isobuild.flash.chunk_digests import ChunkDigests
from isobuild.flash.read_ahead import ReadAhead

CHUNK = 16 << 20  # per write request; a Ctrl-C waits for one
WIPE_TAIL = 1 << 20  # an old backup GPT lives in a disk's last sectors
Progress = Callable[[int], None]


@dataclass(frozen=True, kw_only=True)
class Device:
    """An open target and the writer that knows what O_DIRECT needs of it."""

    path: Path
    out: DirectWriter
    size: int  # bytes; for an image file its size when opened
    is_block: bool


@dataclass(frozen=True, kw_only=True)
class Timing:
    bytes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


def _open(path: Path, flags: int) -> tuple[int, bool]:
    """Open with O_DIRECT when the filesystem allows it, else through the page cache."""
    try:
        return os.open(path, flags | os.O_DIRECT | os.O_CLOEXEC), True
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    return os.open(path, flags | os.O_CLOEXEC), False


@contextlib.contextmanager
def open_target(path: Path, *, block: bool, align: int, size: int) -> Iterator[Device]:
    """The target opened for writing; a block device exclusively.

    O_EXCL on a block device makes the kernel refuse it while anything has it mounted or
    claimed, and keeps mounts (an automounter) away until it is closed: the checks made
    before cannot go stale in between.
    """
    flags = os.O_WRONLY | (os.O_EXCL if block else 0)
    try:
        fd, direct = _open(path, flags)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise DeviceRefused(
                f"{path}: is busy: the kernel refused exclusive access (mounted or in use)",
                hint="unmount it, or pass --unmount",
            ) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise DeviceRefused(f"{path}: permission denied", hint="run as root (sudo)") from None
        if exc.errno == errno.EROFS:
            raise DeviceRefused(f"{path}: is read-only") from None
        raise DeviceRefused(f"{path}: cannot open it for writing ({exc.strerror})") from None
    try:
        yield Device(
            path=path,
            out=DirectWriter(fd, align=align, direct=direct),
            size=size if block else os.fstat(fd).st_size,
            is_block=block,
        )
    finally:
        os.close(fd)


def io_error(device: Device, what: str, exc: OSError) -> EnvironmentProblem | FlashError:
    """The error for a write or flush of ``device`` the system refused with ``exc``."""
    message = f"{device.path}: {what}: {exc.strerror}"
    if not device.is_block and exc.errno in no_room.NO_ROOM:
        # The image exists already: no inode is needed, so ENOSPC means no blocks.
        way_out = "put the image on another filesystem"
        return EnvironmentProblem(message, hint=no_room.hint(exc.errno, way_out, no_inodes=False))
    return FlashError(message, hint="the stick may be failing or was pulled out: try another one")


def _pwrite(device: Device, data: memoryview, offset: int) -> None:
    try:
        device.out.write(data, offset)
    except OSError as exc:  # named at the byte it stopped at: where a failing stick gave out
        done = exc.done if isinstance(exc, WriteStopped) else 0
        raise io_error(device, f"write failed at byte {offset + done}", exc) from None


def _fsync(device: Device) -> None:
    try:
        os.fsync(device.out.fd)
    except OSError as exc:  # a filesystem may report a full disk only when flushing (NFS)
        raise io_error(device, "flushing the writes failed", exc) from None


def _pieces(start: int, end: int) -> Iterator[tuple[int, int]]:
    for offset in range(start, end, CHUNK):
        yield offset, min(CHUNK, end - offset)


def _copy(
    source: memoryview, device: Device, start: int, end: int, progress: Progress, base: int
) -> None:
    """ISO bytes [start, end) to the same offsets of the device, straight from its pages."""
    with interrupt.deferred() as checkpoint:
        for offset, length in _pieces(start, end):
            # Released even when the write fails: the ISO's mapping cannot be closed while
            # a view of it is alive, which would replace the write error with a BufferError.
            with source[offset : offset + length] as piece:
                _pwrite(device, piece, offset)
            progress(base + offset + length - start)
            checkpoint()


def _zero(device: Device, offset: int, length: int) -> None:
    zeros = mmap.mmap(-1, round_up(length, device.out.align))  # page-aligned for O_DIRECT
    _pwrite(device, memoryview(zeros)[:length], offset)


def write_image(iso: Path, size: int, device: Device, progress: Progress) -> Timing:
    """Write the ISO so that a stick is either complete or carries no boot signature.

    The first chunk (MBR, GPT, ISO volume descriptors) is zeroed first and written last,
    after everything else is flushed; a block device's last MiB (an old backup GPT that
    tools would offer to "restore") is zeroed too. An interrupted write leaves a stick that
    nothing mistakes for a bootable or partitioned one.
    """
    started = time.monotonic()
    head = min(CHUNK, size)
    with _mapped(iso, size) as source:
        _zero(device, 0, head)
        tail = device.size - WIPE_TAIL
        if device.is_block and tail >= round_up(size, device.out.align):
            _zero(device, tail, WIPE_TAIL)
        _fsync(device)
        _copy(source, device, head, size, progress, base=0)
        _fsync(device)
        _copy(source, device, 0, head, progress, base=size - head)
        _fsync(device)
    return Timing(bytes=size, seconds=time.monotonic() - started)


@contextlib.contextmanager
def _mapped(iso: Path, size: int) -> Iterator[memoryview]:
    """The ISO's pages, mapped: a direct write sends them to the device without a copy.

    One thread, no read into a buffer and no hand-over between threads: under a loaded
    machine every hand-over waited for a core (measured: 8 MiB chunks through a reader
    thread reached 36 % of dd at load 30; mapped, the write beat dd).
    """
    fd = os.open(iso, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mapping:
            if mapping.size() < size:
                raise FlashError(f"{iso}: shorter than {size} bytes: it changed since")
            mapping.madvise(mmap.MADV_SEQUENTIAL)
            view = memoryview(mapping)
            try:
                yield view
            finally:
                view.release()
    finally:
        os.close(fd)


@dataclass(frozen=True, kw_only=True)
class ReadBack:
    """What reading the target back found, against the ISO's bytes."""

    timing: Timing
    direct: bool  # the page cache was bypassed
    difference: int | None = None  # offset of the first byte that differs from the ISO
    ends_at: int | None = None  # the target ended before the ISO's last byte


def read_back(
    path: Path, iso: Path, digests: ChunkDigests, align: int, progress: Progress
) -> ReadBack:
    """The target's first ``digests.size`` bytes, read from the medium, checked chunk by chunk.

    The target is read straight from the medium (O_DIRECT; on filesystems without it the
    cached pages are dropped first, which a tmpfs cannot do) with two 4 MiB requests in
    flight (isobuild.flash.read_ahead), and each chunk is checked against its digest as it
    arrives, in order; the first chunk that does not match ends the read, and the ISO's
    bytes there name the first byte that differs. The digests were taken from the bytes
    whose sha256 the caller checked, so a target whose chunks all match has that sha256.
    """
    started = time.monotonic()
    size = digests.size
    fd, direct = _open(path, os.O_RDONLY)
    try:
        if not direct:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        request = round_up(read_ahead.REQUEST, digests.chunk)
        with (
            interrupt.deferred() as checkpoint,
            contextlib.closing(
                ReadAhead(fd, path, size, align=align, direct=direct, request=request)
            ) as reads,
        ):
            for offset, data in reads:
                where = _check(iso, digests, offset, data, progress)
                if where is not None:
                    return ReadBack(timing=_since(started, where), direct=direct,
                                    difference=where)  # fmt: skip
                if len(data) < min(request, size - offset):  # shorter than the ISO
                    ends = offset + len(data)
                    return ReadBack(timing=_since(started, ends), direct=direct,
                                    ends_at=ends)  # fmt: skip
                checkpoint()
    finally:
        os.close(fd)
    return ReadBack(timing=_since(started, size), direct=direct)


def _check(
    iso: Path, digests: ChunkDigests, offset: int, data: memoryview, progress: Progress
) -> int | None:
    """Each chunk of ``data``, read at ``offset``, against its digest, in order.

    The first byte that differs from the ISO, or None. A last chunk cut short by the end of
    the target, with what it has right, is no difference: the caller says where it ends.
    """
    for start in range(0, len(data), digests.chunk):
        here = offset + start
        with data[start : start + digests.chunk] as piece:
            got = len(piece)
            if not digests.matches(here, piece):
                where = _first_difference(iso, piece, here)
                if where is not None or got == min(digests.chunk, digests.size - here):
                    return here + (where or 0)
        progress(here + got)
    return None


def _first_difference(iso: Path, data: memoryview, offset: int) -> int | None:
    """Where ``data``, read at ``offset``, first differs from the ISO's bytes there.

    None if it does not: the target ended early with what it had right, or the ISO itself
    changed since its digests were taken (which the caller's check of the file then says).
    """
    try:
        with iso.open("rb") as handle:
            expected = os.pread(handle.fileno(), len(data), offset)
    except OSError:
        return None  # gone or unreadable: the caller says it changed
    if len(expected) < len(data):
        return len(expected)  # the ISO shrank; the caller says it changed
    return compare.first_difference(bytes(data), expected)


def _since(started: float, done: int) -> Timing:
    return Timing(bytes=done, seconds=time.monotonic() - started)
