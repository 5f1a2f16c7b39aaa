"""Where two buffers of the same length first differ, at memory speed.

The read-back compares the stick with the ISO's own bytes (checked against its sha256 just
before writing) instead of hashing what it reads: SHA-256 runs at about 1.7 GB/s on a core
here, below what a fast target reads back, while libc's ``memcmp`` runs at 10 GB/s. Python
has no memcmp for two buffers of which neither is a ``bytes`` or ``bytearray`` (comparing
memoryviews goes item by item, 0.07 GB/s), so it is called through ctypes; ctypes needs
writable buffers, hence the ISO is mapped copy-on-write (nothing is ever written to it).
"""

from __future__ import annotations

import ctypes

# The symbols the interpreter already has loaded, libc's among them (dlopen(NULL)):
# ctypes.util.find_library("c") would run `ldconfig -p` on every import of this module.
_memcmp = ctypes.CDLL(None).memcmp
_memcmp.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
_memcmp.restype = ctypes.c_int

BLOCK = 4096  # a difference is narrowed down block by block, then byte by byte


def first_difference(a: memoryview, b: memoryview) -> int | None:
    """The offset of the first byte where ``a`` and ``b`` differ, or None if they are equal.

    Both must be writable, contiguous and of the same length.
    """
    if len(a) != len(b):
        raise ValueError(f"buffers of {len(a)} and {len(b)} bytes")
    if not a or _equal(a, b):
        return None
    start = next(
        o for o in range(0, len(a), BLOCK) if not _equal(a[o : o + BLOCK], b[o : o + BLOCK])
    )
    end = min(start + BLOCK, len(a))
    return next(o for o in range(start, end) if a[o] != b[o])


def _equal(a: memoryview, b: memoryview) -> bool:
    left = (ctypes.c_char * len(a)).from_buffer(a)
    right = (ctypes.c_char * len(b)).from_buffer(b)
    try:
        return int(_memcmp(ctypes.addressof(left), ctypes.addressof(right), len(a))) == 0
    finally:
        del left, right  # the buffers' exports end here: their mappings may be closed
