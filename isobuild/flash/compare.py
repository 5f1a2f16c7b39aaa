"""Where two byte strings of the same length first differ.

Only a failed read-back needs this, for one chunk (isobuild.flash.writer): equality of
``bytes`` runs at memcmp's speed, so the difference is narrowed down block by block, then
byte by byte.
"""

from __future__ import annotations

BLOCK = 4096


def first_difference(a: bytes, b: bytes) -> int | None:
    """The offset of the first byte where ``a`` and ``b`` differ, or None if they are equal."""
    if len(a) != len(b):
        raise ValueError(f"byte strings of {len(a)} and {len(b)} bytes")
    if a == b:
        return None
    start = next(o for o in range(0, len(a), BLOCK) if a[o : o + BLOCK] != b[o : o + BLOCK])
    return next(o for o in range(start, min(start + BLOCK, len(a))) if a[o] != b[o])
