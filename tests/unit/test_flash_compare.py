"""memcmp-speed comparison of two buffers: equal, the first difference, lengths."""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator

import pytest

from isobuild.flash.compare import BLOCK, first_difference

SIZE = 5 * BLOCK + 123


@pytest.fixture
def buffers() -> Iterator[tuple[memoryview, memoryview]]:
    data = os.urandom(SIZE)
    a, b = mmap.mmap(-1, SIZE), mmap.mmap(-1, SIZE)
    a.write(data)
    b.write(data)
    left, right = memoryview(a), memoryview(b)
    yield left, right
    left.release()
    right.release()
    a.close()  # raises if a comparison left an export behind
    b.close()


def test_equal_buffers_have_no_difference(buffers: tuple[memoryview, memoryview]) -> None:
    a, b = buffers
    assert first_difference(a, b) is None
    assert first_difference(a[:0], b[:0]) is None
    assert first_difference(a[7 : BLOCK + 9], b[7 : BLOCK + 9]) is None


@pytest.mark.parametrize("where", [0, 1, BLOCK - 1, BLOCK, 3 * BLOCK + 77, SIZE - 1])
def test_the_first_differing_byte_is_found(
    buffers: tuple[memoryview, memoryview], where: int
) -> None:
    a, b = buffers
    b[where] ^= 0xFF
    if where + 2 < SIZE:
        b[where + 2] ^= 0x01  # a second difference after it does not hide the first
    b[SIZE - 1] ^= 0x10 if where < SIZE - 3 else 0
    assert first_difference(a, b) == where
    assert first_difference(b, a) == where


def test_a_difference_outside_the_compared_range_is_not_seen(
    buffers: tuple[memoryview, memoryview],
) -> None:
    a, b = buffers
    b[BLOCK] ^= 0xFF
    assert first_difference(a[:BLOCK], b[:BLOCK]) is None
    assert first_difference(a[BLOCK:], b[BLOCK:]) == 0


def test_buffers_of_different_lengths_are_refused(buffers: tuple[memoryview, memoryview]) -> None:
    a, b = buffers
    with pytest.raises(ValueError, match="buffers of 10 and 11 bytes"):
        first_difference(a[:10], b[:11])
