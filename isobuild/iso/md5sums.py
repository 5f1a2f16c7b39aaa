"""md5sum.txt, the list casper-md5check verifies at boot: parse, update, render (pure)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

# xorriso rewrites these while writing (boot catalog; boot-info-table and GRUB boot info
# patched into eltorito.img), so no md5 computed before writing can match: leave them out.
EXCLUDED = frozenset({"/boot.catalog", "/boot/grub/i386-pc/eltorito.img"})
MD5SUM_PATH = "/md5sum.txt"
CHUNK = 1 << 20


class Md5SumsFormatError(ValueError):
    """A line of md5sum.txt is not ``<32 hex>  ./path``."""


def _iso_path(listed: str) -> str:
    path = listed[1:] if listed.startswith("./") else listed.lstrip("/")
    return "/" + path.lstrip("/")


def parse(text: str) -> dict[str, str]:
    """ISO path (``/casper/vmlinuz``) → md5, in the file's order."""
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, listed = line.partition("  ")
        if not sep or len(digest) != 32 or any(c not in "0123456789abcdef" for c in digest):
            raise Md5SumsFormatError(f"line {number}: expected '<md5>  ./path', got {line!r}")
        entries[_iso_path(listed)] = digest
    return entries


def render(entries: Mapping[str, str]) -> str:
    """The md5sum.txt text for ``entries`` in their given order (``md5  ./path``)."""
    return "".join(f"{digest}  .{path}\n" for path, digest in entries.items())


def update(text: str, changed: Mapping[str, str], removed: Iterable[str] = ()) -> str:
    """``text`` with ``changed`` entries replaced in place and new ones appended sorted.

    Excluded files (boot catalog, eltorito.img) and md5sum.txt itself never have an entry:
    one the base lists is dropped, since xorriso patches those files again while writing.
    """
    entries = parse(text)
    for path in (*removed, *EXCLUDED, MD5SUM_PATH):
        entries.pop(path, None)
    fresh = {}
    for path, digest in sorted(changed.items()):
        if path in EXCLUDED or path == MD5SUM_PATH:
            continue
        if path in entries:
            entries[path] = digest
        else:
            fresh[path] = digest
    return render({**entries, **fresh})


def md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
