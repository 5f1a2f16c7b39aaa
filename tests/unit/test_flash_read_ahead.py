"""The read-back's reader: requests in flight on their own threads, pieces handed out in order."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from isobuild.errors import FlashError
from isobuild.flash.read_ahead import ReadAhead

BLOCK = 4096
REQUEST = 4 * BLOCK


@pytest.fixture
def fd_of(tmp_path: Path) -> Iterator[tuple[Path, bytes, int]]:
    """A target of 3 requests and a bit, opened for reading (through the page cache)."""
    data = os.urandom(3 * REQUEST + 1000)
    path = tmp_path / "stick.img"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        yield path, data, fd
    finally:
        os.close(fd)


def _readers_alive() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("read-ahead-")]


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_the_pieces_come_in_order_and_are_the_targets_bytes(
    fd_of: tuple[Path, bytes, int], depth: int
) -> None:
    path, data, fd = fd_of
    seen: list[tuple[int, bytes]] = []
    with closing(ReadAhead(fd, path, len(data), align=BLOCK, direct=False, request=REQUEST,
                           depth=depth)) as reads:  # fmt: skip
        for offset, piece in reads:
            seen.append((offset, bytes(piece)))
    assert [offset for offset, _ in seen] == [0, REQUEST, 2 * REQUEST, 3 * REQUEST]
    assert [len(piece) for _, piece in seen] == [REQUEST, REQUEST, REQUEST, 1000]
    assert b"".join(piece for _, piece in seen) == data
    assert _readers_alive() == []


def test_only_the_first_size_bytes_are_read(fd_of: tuple[Path, bytes, int]) -> None:
    path, data, fd = fd_of
    with closing(ReadAhead(fd, path, REQUEST + 10, align=BLOCK, direct=False,
                           request=REQUEST)) as reads:  # fmt: skip
        pieces = [bytes(piece) for _, piece in reads]
    assert pieces == [data[:REQUEST], data[REQUEST : REQUEST + 10]]


@pytest.mark.parametrize(
    ("ends", "last"), [(2 * REQUEST, (2 * REQUEST, 0)), (REQUEST + 7, (REQUEST, 7))]
)
def test_a_target_shorter_than_size_ends_the_iteration_where_it_ends(
    tmp_path: Path, ends: int, last: tuple[int, int]
) -> None:
    path = tmp_path / "short.img"
    path.write_bytes(os.urandom(ends))
    fd = os.open(path, os.O_RDONLY)
    try:
        with closing(ReadAhead(fd, path, 4 * REQUEST, align=BLOCK, direct=False,
                               request=REQUEST)) as reads:  # fmt: skip
            seen = [(offset, len(piece)) for offset, piece in reads]
    finally:
        os.close(fd)
    assert seen[-1] == last  # and nothing after it
    assert sum(length for _, length in seen) == ends
    assert _readers_alive() == []


def test_a_read_error_is_raised_in_the_callers_thread(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY)  # a directory: preadv fails with EISDIR
    try:
        with (
            pytest.raises(FlashError, match=rf"{tmp_path}: read failed at byte 0: Is a directory"),
            closing(ReadAhead(fd, tmp_path, 2 * REQUEST, align=BLOCK, direct=False,
                              request=REQUEST)) as reads,
        ):  # fmt: skip
            list(reads)
    finally:
        os.close(fd)
    assert _readers_alive() == []


def test_leaving_early_stops_the_readers(fd_of: tuple[Path, bytes, int]) -> None:
    path, data, fd = fd_of
    with closing(ReadAhead(fd, path, len(data), align=BLOCK, direct=False,
                           request=REQUEST)) as reads:  # fmt: skip
        for offset, _piece in reads:
            assert offset == 0
            break
    assert _readers_alive() == []


def test_nothing_to_read_yields_nothing(fd_of: tuple[Path, bytes, int]) -> None:
    path, _data, fd = fd_of
    with closing(ReadAhead(fd, path, 0, align=BLOCK, direct=False, request=REQUEST)) as reads:
        assert list(reads) == []
    assert _readers_alive() == []


def test_a_request_that_is_not_whole_blocks_is_refused(fd_of: tuple[Path, bytes, int]) -> None:
    path, data, fd = fd_of
    with pytest.raises(ValueError, match="not a multiple of 4096"):
        ReadAhead(fd, path, len(data), align=BLOCK, direct=False, request=REQUEST + 512)
    assert _readers_alive() == []
