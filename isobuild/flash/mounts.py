"""What is mounted and what is swap, from /proc (pure parsers), and unmounting."""

from __future__ import annotations

import re
from dataclasses import dataclass

from isobuild.run import Runner, run

# Mount points whose disk is the running system: never overwritten, --unmount or not.
SYSTEM_MOUNTS = ("/", "/boot", "/boot/efi", "/usr", "/var")
_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, kw_only=True)
class Mount:
    devno: str  # "major:minor" of the filesystem's device (0:N for btrfs, tmpfs, ...)
    point: str
    fstype: str
    source: str  # "/dev/sdb1", "tmpfs", ...

    @property
    def system(self) -> bool:
        return self.point in SYSTEM_MOUNTS


def _unescape(field: str) -> str:
    """mountinfo and /proc/swaps write space, tab, newline and backslash as octal escapes."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """``/proc/self/mountinfo`` (proc(5)): one :class:`Mount` per line, in mount order."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        dash = fields.index("-", 6)
        if len(fields) < dash + 3:
            continue
        mounts.append(
            Mount(
                devno=fields[2],
                point=_unescape(fields[4]),
                fstype=fields[dash + 1],
                source=_unescape(fields[dash + 2]),
            )
        )
    return mounts


def parse_swaps(text: str) -> list[str]:
    """The swap areas in ``/proc/swaps``: device paths (``/dev/dm-1``) or swap files."""
    areas = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if fields:
            areas.append(_unescape(fields[0]))
    return areas


def unmount(points: list[str], *, runner: Runner = run) -> None:
    """Unmount each point, deepest first (a mount inside another goes before it)."""
    for point in sorted(points, key=lambda p: p.count("/"), reverse=True):
        runner(["umount", point])
