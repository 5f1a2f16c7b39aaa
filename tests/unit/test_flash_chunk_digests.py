"""The ISO's chunk digests, taken in the pass that checks its sha256."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import xxhash

from isobuild.digest import HASH_STEP, sha256_file
from isobuild.flash.chunk_digests import CHUNK, ChunkDigests, Digester

SMALL = 1024  # a chunk size for pieces made by hand


def test_the_sha256_pass_hands_every_byte_on_in_order(tmp_path: Path) -> None:
    data = os.urandom(HASH_STEP + CHUNK + 5)
    iso = tmp_path / "a.iso"
    iso.write_bytes(data)
    pieces: list[bytes] = []
    assert sha256_file(iso, also=lambda piece: pieces.append(bytes(piece))) == (
        hashlib.sha256(data).hexdigest()
    )
    assert [len(p) for p in pieces] == [HASH_STEP, CHUNK + 5]
    assert b"".join(pieces) == data


def test_each_chunk_gets_the_xxh3_128_digest_of_its_bytes(tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK + 2049)  # the last chunk is short
    iso = tmp_path / "a.iso"
    iso.write_bytes(data)
    chunks = Digester()
    sha256_file(iso, also=chunks)
    digests = chunks.result()
    assert (digests.chunk, digests.size) == (CHUNK, len(data))
    assert digests.digests == tuple(
        xxhash.xxh3_128_digest(data[o : o + CHUNK]) for o in range(0, len(data), CHUNK)
    )


def _digests(data: bytes) -> ChunkDigests:
    chunks = Digester(chunk=SMALL)
    chunks(memoryview(data))
    return chunks.result()


def test_a_chunk_matches_only_with_its_own_bytes_whole() -> None:
    data = os.urandom(3 * SMALL + 10)
    digests = _digests(data)
    for offset in range(0, len(data), SMALL):
        assert digests.matches(offset, memoryview(data[offset : offset + SMALL]))
    changed = bytearray(data[SMALL : 2 * SMALL])
    changed[100] ^= 0x01
    assert not digests.matches(SMALL, memoryview(changed))
    assert not digests.matches(0, memoryview(data[SMALL : 2 * SMALL]))  # another chunk's
    assert not digests.matches(3 * SMALL, memoryview(data[3 * SMALL : -1]))  # cut short
    assert not digests.matches(3 * SMALL, memoryview(data[3 * SMALL :] + b"\0"))


@pytest.mark.parametrize("offset", [1, SMALL + 5, 4 * SMALL])
def test_an_offset_that_starts_no_chunk_is_refused(offset: int) -> None:
    digests = _digests(os.urandom(3 * SMALL + 10))
    with pytest.raises(ValueError, match=f"offset {offset} does not start a chunk"):
        digests.matches(offset, memoryview(b"x"))


def test_pieces_must_be_whole_chunks_until_the_last() -> None:
    chunks = Digester(chunk=SMALL)
    chunks(memoryview(os.urandom(2 * SMALL)))
    chunks(memoryview(os.urandom(SMALL + 1)))
    with pytest.raises(ValueError, match=f"ended inside a chunk \\(at byte {3 * SMALL + 1}\\)"):
        chunks(memoryview(os.urandom(SMALL)))
    assert chunks.result().size == 3 * SMALL + 1


def test_the_offset_where_the_image_ends_starts_no_chunk() -> None:
    digests = _digests(os.urandom(3 * SMALL))  # whole chunks: 3 * SMALL is a chunk boundary
    with pytest.raises(ValueError, match=f"offset {3 * SMALL} does not start a chunk of"):
        digests.matches(3 * SMALL, memoryview(b""))
