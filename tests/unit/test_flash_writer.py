"""The flash writer and read-back on real image files (O_DIRECT where the filesystem has it)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from isobuild import interrupt
from isobuild.errors import DeviceRefused
from isobuild.flash import writer
from isobuild.flash.writer import CHUNK

# Not a multiple of 4096: the end goes through the page cache, the rest direct.
SIZE = 2 * CHUNK + 3 * 2048 + 1000


@pytest.fixture
def iso(tmp_path: Path) -> Path:
    path = tmp_path / "a.iso"
    path.write_bytes(os.urandom(SIZE))
    return path


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
    found = writer.read_back(image, iso, SIZE, 4096, read.append)
    assert (found.difference, found.ends_at, found.timing.bytes) == (None, None, SIZE)
    assert read[-1] == SIZE


@pytest.mark.parametrize("where", [0, CHUNK - 1, CHUNK, 2 * CHUNK + 4096 + 17, SIZE - 1])
def test_read_back_names_the_first_byte_that_differs(iso: Path, tmp_path: Path, where: int) -> None:
    data = bytearray(iso.read_bytes())
    data[where] ^= 0x01
    data[SIZE - 1] ^= 0x80 if where != SIZE - 1 else 0  # a later difference is not the first
    image = tmp_path / "stick.img"
    image.write_bytes(data)
    found = writer.read_back(image, iso, SIZE, 4096, lambda n: None)
    assert (found.difference, found.ends_at) == (where, None)


def test_a_target_shorter_than_the_iso_says_where_it_ends(iso: Path, tmp_path: Path) -> None:
    short = tmp_path / "short.img"
    short.write_bytes(iso.read_bytes()[: SIZE - 1])
    found = writer.read_back(short, iso, SIZE, 4096, lambda n: None)
    assert (found.difference, found.ends_at) == (None, SIZE - 1)


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


def test_a_target_that_cannot_be_opened_is_refused(iso: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "stick.img"
    with (
        pytest.raises(DeviceRefused, match="cannot open it for writing"),
        writer.open_target(missing, block=False, align=4096, size=0),
    ):
        pass
