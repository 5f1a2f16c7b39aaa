"""The first difference of two byte strings: equal, the first difference, lengths."""

from __future__ import annotations

import os

import pytest

from isobuild.flash.compare import BLOCK, first_difference

SIZE = 5 * BLOCK + 123
DATA = os.urandom(SIZE)


def _flipped(*where: int) -> bytes:
    data = bytearray(DATA)
    for offset in where:
        data[offset] ^= 0xFF
    return bytes(data)


def test_equal_byte_strings_have_no_difference() -> None:
    assert first_difference(DATA, bytes(DATA)) is None
    assert first_difference(b"", b"") is None
    assert first_difference(DATA[7 : BLOCK + 9], DATA[7 : BLOCK + 9]) is None


@pytest.mark.parametrize("where", [0, 1, BLOCK - 1, BLOCK, 3 * BLOCK + 77, SIZE - 1])
def test_the_first_differing_byte_is_found(where: int) -> None:
    # Later differences (the next byte but one, the last byte) do not hide the first.
    other = _flipped(where, *(o for o in (where + 2, SIZE - 1) if o > where and o < SIZE))
    assert first_difference(DATA, other) == where
    assert first_difference(other, DATA) == where


def test_a_difference_outside_the_compared_range_is_not_seen() -> None:
    other = _flipped(BLOCK)
    assert first_difference(DATA[:BLOCK], other[:BLOCK]) is None
    assert first_difference(DATA[BLOCK:], other[BLOCK:]) == 0


def test_byte_strings_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="byte strings of 10 and 11 bytes"):
        first_difference(DATA[:10], DATA[:11])
