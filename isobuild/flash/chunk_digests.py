"""The ISO as per-chunk xxh3-128 digests, taken in the same pass that checks its sha256.

The read-back checks the stick chunk by chunk against these rather than against the ISO's
own pages. xxh3-128 hashes a chunk that is still in the CPU's cache at about 60 GiB/s
(SHA-256: 1.7 GiB/s), so the read-back checks each chunk as it arrives, in the buffer it
was read into: no second 2.6 GiB stream through memory, and the reads are not held up
(docs/building.md, runs O to R).

The digests are taken from the very bytes whose sha256 was just checked, so a stick whose
chunks all match holds the ISO's sha256 unless xxh3-128 collides. The failures a stick
has (stale, zeroed, shifted or wrapped-around blocks) do not make it collide. xxh3 is not
a cryptographic hash, but a stick whose firmware was built to fool it could just as well
serve other bytes to the machine that boots from it, which no read-back can see.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import xxhash

CHUNK = 4 << 20  # the bytes one digest covers, one read-back request


@dataclass(frozen=True, kw_only=True)
class ChunkDigests:
    """Digests of ``[0, chunk)``, ``[chunk, 2 * chunk)``, ... of an image of ``size`` bytes."""

    chunk: int
    size: int
    digests: tuple[bytes, ...]

    def matches(self, offset: int, data: memoryview) -> bool:
        """Whether ``data``, read at ``offset``, is the image's chunk there, whole."""
        if offset % self.chunk or offset >= self.size:
            raise ValueError(f"offset {offset} does not start a chunk of {self.size} bytes")
        if len(data) != min(self.chunk, self.size - offset):
            return False
        return xxhash.xxh3_128_digest(data) == self.digests[offset // self.chunk]


@dataclass(kw_only=True)
class Digester:
    """Takes consecutive pieces of an image and digests each of its chunks.

    Every piece but the last must be a whole number of chunks long, as ``sha256_file``'s
    steps are (isobuild.digest.HASH_STEP).
    """

    chunk: int = CHUNK
    _digests: list[bytes] = field(default_factory=list, init=False)
    _size: int = field(default=0, init=False)

    def __call__(self, piece: memoryview) -> None:
        if self._size % self.chunk:
            raise ValueError(f"a piece after one that ended inside a chunk (at byte {self._size})")
        for start in range(0, len(piece), self.chunk):
            self._digests.append(xxhash.xxh3_128_digest(piece[start : start + self.chunk]))
        self._size += len(piece)

    def result(self) -> ChunkDigests:
        return ChunkDigests(chunk=self.chunk, size=self._size, digests=tuple(self._digests))
