"""isobuild.direct_io on real files: direct where aligned, the page cache for the rest."""

from __future__ import annotations

import errno
import fcntl
import io
import mmap
import os
from pathlib import Path

import pytest

from isobuild.direct_io import FILE_ALIGN, DirectWriter, WriteStopped, round_up, writer_for
from tests.fixtures.file_size_limit import file_size_limit


def _aligned(data: bytes) -> memoryview:
    buffer = mmap.mmap(-1, max(len(data), 1))  # page-aligned, as O_DIRECT needs
    buffer[: len(data)] = data
    return memoryview(buffer)[: len(data)]


def test_aligned_and_unaligned_writes_land_where_they_belong(tmp_path: Path) -> None:
    path = tmp_path / "out.iso"
    body, tail = os.urandom(4 * FILE_ALIGN), os.urandom(FILE_ALIGN // 2 + 7)
    with path.open("wb") as out:
        writer = writer_for(out)
        assert writer is not None
        writer.write(_aligned(body), 0)
        writer.write(_aligned(tail), len(body))  # unaligned length: through the page cache
        if writer.direct:  # the descriptor is direct again for what follows
            assert fcntl.fcntl(writer.fd, fcntl.F_GETFL) & os.O_DIRECT
    assert path.read_bytes() == body + tail


def test_writes_start_at_the_files_position(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    with path.open("wb") as out:
        out.write(b"H" * FILE_ALIGN)  # still in the file object's buffer: flushed first
        writer = writer_for(out)
        assert writer is not None
        writer.write(_aligned(b"B" * FILE_ALIGN), 0)
    assert path.read_bytes() == b"H" * FILE_ALIGN + b"B" * FILE_ALIGN


def test_not_a_regular_file_gets_no_direct_writer() -> None:
    assert writer_for(io.BytesIO()) is None


def test_a_writer_that_may_not_go_direct_writes_through_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "plain.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        writer = DirectWriter(fd, direct=False)
        writer.write(memoryview(b"abc"), 5)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"\0" * 5 + b"abc"


def test_a_write_cut_short_then_refused_lets_go_of_the_callers_memory(tmp_path: Path) -> None:
    path = tmp_path / "limited.bin"
    memory = mmap.mmap(-1, 4 * FILE_ALIGN)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with (
            memoryview(memory) as view,
            pytest.raises(OSError, match="File too large") as caught,
            file_size_limit(2 * FILE_ALIGN),  # half written, then EFBIG
        ):
            DirectWriter(fd, direct=False).write(view, 0)
    finally:
        os.close(fd)
    assert caught.value.errno == errno.EFBIG
    assert isinstance(caught.value, WriteStopped)
    assert caught.value.done == 2 * FILE_ALIGN  # what went in before the refusal
    assert path.stat().st_size == 2 * FILE_ALIGN
    # The error's traceback still holds the writer's frame: a view of the memory left alive
    # there would make closing it a BufferError, hiding the write error from the caller.
    memory.close()


@pytest.mark.parametrize(
    ("n", "rounded"),
    [(0, 0), (1, FILE_ALIGN), (FILE_ALIGN, FILE_ALIGN), (FILE_ALIGN + 1, 2 * FILE_ALIGN)],
)
def test_round_up_goes_to_the_next_whole_block(n: int, rounded: int) -> None:
    assert round_up(n, FILE_ALIGN) == rounded
