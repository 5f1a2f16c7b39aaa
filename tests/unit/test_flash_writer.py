"""The flash writer and read-back on real image files (O_DIRECT where the filesystem has it)."""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import threading
from pathlib import Path

import pytest

from isobuild import interrupt
from isobuild.digest import sha256_file
from isobuild.errors import DeviceRefused, EnvironmentProblem, FlashError
from isobuild.flash import chunk_digests, writer
from isobuild.flash.chunk_digests import ChunkDigests, Digester
from isobuild.flash.read_ahead import REQUEST
from isobuild.flash.writer import CHUNK
from tests.fixtures.file_size_limit import file_size_limit

PIECE = chunk_digests.CHUNK  # what the read-back reads and checks at a time

# Not a multiple of 4096: the end goes through the page cache, the rest direct.
SIZE = 2 * CHUNK + 3 * 2048 + 1000


@pytest.fixture
def iso(tmp_path: Path) -> Path:
    path = tmp_path / "a.iso"
    path.write_bytes(os.urandom(SIZE))
    return path


def _digests(iso: Path) -> ChunkDigests:
    chunks = Digester()
    sha256_file(iso, also=chunks)
    return chunks.result()


def test_an_image_file_gets_the_iso_and_reads_back_to_its_digest(iso: Path, tmp_path: Path) -> None:
    image = tmp_path / "stick.img"
    old = os.urandom(SIZE + CHUNK)
    image.write_bytes(old)
    seen: list[int] = []
    with writer.open_target(image, block=False, align=4096, size=0) as device:
        timing = writer.write_image(iso, SIZE, device, seen.append)
    data = image.read_bytes()
    assert data[:SIZE] == iso.read_bytes()
    assert data[SIZE:] == old[SIZE:]  # an image file keeps the rest (no tail wipe)
    assert timing.bytes == SIZE
    assert seen == sorted(seen)
    assert seen[-1] == SIZE
    read: list[int] = []
    found = writer.read_back(image, iso, _digests(iso), 4096, read.append)
    assert (found.difference, found.ends_at, found.timing.bytes) == (None, None, SIZE)
    assert read == [min(o + PIECE, SIZE) for o in range(0, SIZE, PIECE)]


@pytest.mark.parametrize(
    "where", [0, PIECE - 1, PIECE, CHUNK - 1, CHUNK, 2 * CHUNK + 4096 + 17, SIZE - 1]
)
def test_read_back_names_the_first_byte_that_differs(iso: Path, tmp_path: Path, where: int) -> None:
    data = bytearray(iso.read_bytes())
    data[where] ^= 0x01
    data[SIZE - 1] ^= 0x80 if where != SIZE - 1 else 0  # a later difference is not the first
    image = tmp_path / "stick.img"
    image.write_bytes(data)
    found = writer.read_back(image, iso, _digests(iso), 4096, lambda n: None)
    assert (found.difference, found.ends_at) == (where, None)


@pytest.mark.parametrize("length", [SIZE - 1, CHUNK + 5, PIECE, REQUEST, 2 * REQUEST])
def test_a_target_shorter_than_the_iso_says_where_it_ends(
    iso: Path, tmp_path: Path, length: int
) -> None:
    short = tmp_path / "short.img"
    short.write_bytes(iso.read_bytes()[:length])
    found = writer.read_back(short, iso, _digests(iso), 4096, lambda n: None)
    assert (found.difference, found.ends_at) == (None, length)


def test_a_short_target_that_differs_before_its_end_names_the_byte(
    iso: Path, tmp_path: Path
) -> None:
    data = bytearray(iso.read_bytes()[: CHUNK + 5])
    data[CHUNK + 2] ^= 0x01
    short = tmp_path / "short.img"
    short.write_bytes(data)
    found = writer.read_back(short, iso, _digests(iso), 4096, lambda n: None)
    assert (found.difference, found.ends_at) == (CHUNK + 2, None)


def test_the_target_is_checked_against_the_bytes_hashed_not_the_iso_as_it_is_now(
    iso: Path, tmp_path: Path
) -> None:
    digests = _digests(iso)
    changed = bytearray(iso.read_bytes())
    changed[PIECE + 100] ^= 0x01
    iso.write_bytes(changed)  # the ISO edited after its check, and written so
    image = tmp_path / "stick.img"
    image.write_bytes(changed)
    found = writer.read_back(image, iso, digests, 4096, lambda n: None)
    # Its bytes no longer tell where: the chunk that does not match is named.
    assert (found.difference, found.ends_at) == (PIECE, None)


def _interrupt_at(done: int) -> None:
    if done >= CHUNK:
        signal.raise_signal(signal.SIGINT)


def test_an_interrupted_write_leaves_the_head_zeroed(iso: Path, tmp_path: Path) -> None:
    image = tmp_path / "stick.img"
    image.write_bytes(os.urandom(SIZE))
    with (
        interrupt.handled(),
        pytest.raises(interrupt.Interrupted),
        writer.open_target(image, block=False, align=4096, size=0) as device,
    ):
        writer.write_image(iso, SIZE, device, _interrupt_at)
    data = image.read_bytes()
    assert data[:CHUNK] == bytes(CHUNK)  # no signature: nothing mistakes it for an ISO
    assert data[CHUNK : 2 * CHUNK] == iso.read_bytes()[CHUNK : 2 * CHUNK]


def test_an_image_whose_write_fails_midway_is_a_clear_error(iso: Path, tmp_path: Path) -> None:
    image = tmp_path / "stick.img"
    image.write_bytes(os.urandom(SIZE))
    with (
        pytest.raises(EnvironmentProblem) as caught,
        writer.open_target(image, block=False, align=4096, size=0) as device,
        file_size_limit(CHUNK + 8192),  # the zeroed head fits, the next chunk only in part
    ):
        writer.write_image(iso, SIZE, device, lambda _done: None)
    # Not a BufferError from closing the ISO's mapping under a view the failed write held.
    # The byte the write stopped at, not the start of the 16 MiB request it was part of.
    assert caught.value.message == (f"{image}: write failed at byte {CHUNK + 8192}: File too large")
    assert caught.value.hint is not None
    assert "a file this large (FAT32 stops at 4 GiB), or `ulimit -f`" in caught.value.hint
    assert caught.value.hint.endswith("put the image on another filesystem")
    data = image.read_bytes()
    assert data[:CHUNK] == bytes(CHUNK)  # no signature: nothing mistakes it for an ISO
    assert data[CHUNK : CHUNK + 8192] == iso.read_bytes()[CHUNK : CHUNK + 8192]


@pytest.mark.parametrize(
    ("block", "code", "raised", "hint"),
    [
        (True, errno.ENOSPC, FlashError, "the stick may be failing"),  # a loop on a full disk
        (True, errno.EIO, FlashError, "the stick may be failing"),
        (False, errno.ENOSPC, EnvironmentProblem, "its filesystem is full (`df -h`)"),
        (False, errno.EDQUOT, EnvironmentProblem, "your disk quota there is used up"),
        (False, errno.EFBIG, EnvironmentProblem, "its filesystem cannot hold a file this large"),
        (False, errno.EIO, FlashError, "the stick may be failing"),
    ],
)
def test_a_refused_write_or_flush_is_the_stick_failing_or_an_image_without_room(
    tmp_path: Path, block: bool, code: int, raised: type[Exception], hint: str
) -> None:
    image = tmp_path / "stick.img"
    image.touch()
    with writer.open_target(image, block=False, align=4096, size=0) as opened:
        device = dataclasses.replace(opened, is_block=block)
        error = writer.io_error(
            device, "flushing the writes failed", OSError(code, os.strerror(code))
        )
    assert type(error) is raised
    assert error.message == f"{image}: flushing the writes failed: {os.strerror(code)}"
    assert error.hint is not None
    assert error.hint.startswith(hint)


def test_an_interrupted_read_back_stops_its_readers(iso: Path, tmp_path: Path) -> None:
    image = tmp_path / "stick.img"
    image.write_bytes(iso.read_bytes())
    with interrupt.handled(), pytest.raises(interrupt.Interrupted):
        writer.read_back(image, iso, _digests(iso), 4096, _interrupt_at)
    assert [t for t in threading.enumerate() if t.name.startswith("read-ahead-")] == []


def test_a_target_that_cannot_be_opened_is_refused(iso: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "stick.img"
    with (
        pytest.raises(DeviceRefused, match="cannot open it for writing"),
        writer.open_target(missing, block=False, align=4096, size=0),
    ):
        pass


def test_a_mismatch_with_the_iso_gone_names_the_chunk(iso: Path, tmp_path: Path) -> None:
    digests = _digests(iso)
    data = bytearray(iso.read_bytes())
    data[2 * PIECE + 7] ^= 0x01
    image = tmp_path / "stick.img"
    image.write_bytes(data)
    iso.unlink()  # the caller's check of the file says it changed; this names the chunk
    found = writer.read_back(image, iso, digests, 4096, lambda n: None)
    assert (found.difference, found.ends_at) == (2 * PIECE, None)
