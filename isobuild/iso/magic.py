"""Whether a file or a device holds an ISO 9660 image: its first volume descriptor's "CD001".

Checked before work that would otherwise fail late: `flash` before it hashes and writes,
`boot-test` before six guests boot a blank or half-written stick to their timeouts.
"""

from __future__ import annotations

import os

MAGIC = b"CD001"
OFFSET = 16 * 2048 + 1  # past the 32 KiB system area: the primary volume descriptor's "CD001"
NOT_ISO = f"not an ISO 9660 image (no CD001 volume descriptor at byte {OFFSET})"


def has_magic(fd: int) -> bool:
    """``fd`` reads "CD001" where an ISO 9660 image has it; OSError as the system reports it."""
    return os.pread(fd, len(MAGIC), OFFSET) == MAGIC
