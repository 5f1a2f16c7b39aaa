"""Release versions in order: ``1.4.2`` < ``1.5.0-rc1`` < ``1.5.0`` (semantic versioning)."""

from __future__ import annotations

import re

_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)(?:[-~]([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?")

Key = tuple[tuple[int, int, int], int, tuple[tuple[int, int | str], ...]]


def key(version: str) -> Key | None:
    """A sort key, or None for a version this appliance cannot order."""
    match = _VERSION.fullmatch(version.strip())
    if match is None:
        return None
    core = (int(match[1]), int(match[2]), int(match[3]))
    pre = match[4]
    if pre is None:
        return core, 1, ()  # a release sorts after all of its pre-releases
    parts: list[tuple[int, int | str]] = []
    for part in pre.split("."):
        parts.append((0, int(part)) if part.isdigit() else (1, part))
    return core, 0, tuple(parts)


def compare(a: str, b: str) -> int | None:
    """-1, 0 or 1 as ``a`` is older, the same or newer than ``b``; None when unorderable."""
    ka, kb = key(a), key(b)
    if ka is None or kb is None:
        return None
    return (ka > kb) - (ka < kb)
