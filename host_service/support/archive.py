"""The bundle file: one size-bounded ``.tar.gz`` whose ``manifest.json`` accounts for every
file (how it was collected, what was cut, what failed), written through the redactor only.

The bound is kept on the uncompressed tar stream (headers and block padding included), so
the compressed file can never exceed it: deflate grows incompressible input by a few bytes
per 64 KiB block at most, which ``MARGIN`` covers.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from host_service.support.redact import Redactor

BLOCK = tarfile.BLOCKSIZE
# End-of-archive blocks, padding to tarfile's record size, gzip header and trailer, and
# deflate's stored-block overhead (5 bytes per 64 KiB) on the bound itself.
MARGIN = tarfile.RECORDSIZE + 2 * BLOCK + 1024
MANIFEST = "manifest.json"


def header_cost(name: str) -> int:
    """Tar header bytes for a member called ``name`` (a long name adds a pax header)."""
    return BLOCK if len(name.encode()) <= 99 else 4 * BLOCK


def data_cost(size: int) -> int:
    """Bytes ``size`` bytes of content take in the tar stream (padded to blocks)."""
    return -(-size // BLOCK) * BLOCK


@dataclass(frozen=True)
class Item:
    """What a collector produced for one path: data, or why there is none."""

    path: str
    how: str
    data: bytes | None = None
    error: str | None = None  # collection failed
    skipped: str | None = None  # not attempted, and why
    limit: int | None = None
    keep: str = "tail"
    note: str | None = None


@dataclass
class Entry:
    """One line of the manifest."""

    path: str
    how: str
    status: str  # collected | truncated | failed | skipped
    bytes: int = 0
    sha256: str | None = None
    error: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "how": self.how, "status": self.status}
        if self.status in ("collected", "truncated"):
            out["bytes"] = self.bytes
            out["sha256"] = self.sha256
        if self.error is not None:
            out["error"] = self.error
        if self.note is not None:
            out["note"] = self.note
        return out


@dataclass
class BundleWriter:
    """Writes members into ``out`` (a binary file) until the size bound is reached.

    Every member goes through ``redactor``; a member too large for what is left of the
    bound is cut (its tail kept, for logs and journals) or left out, and the manifest says
    so. ``close`` writes the manifest last, from a reserve kept for it.
    """

    out: IO[bytes]
    redactor: Redactor
    max_bytes: int
    prefix: str
    mtime: float
    manifest_reserve: int = 256 * 1024
    entries: list[Entry] = field(default_factory=list)
    cut: list[str] = field(default_factory=list)
    used: int = 0
    _gzip: gzip.GzipFile | None = None
    _tar: tarfile.TarFile | None = None

    def __post_init__(self) -> None:
        # Deflate's worst case on the bound: 5 bytes per 64 KiB stored block.
        self.budget = self.max_bytes - MARGIN - self.max_bytes // 8192 - self.manifest_reserve
        if self.budget <= 0:
            raise ValueError(f"a bundle bound of {self.max_bytes} bytes leaves no room")
        self._gzip = gzip.GzipFile(fileobj=self.out, mode="wb", mtime=int(self.mtime))
        # Closed in close(): the writer is the context the members are added in.
        self._tar = tarfile.open(  # noqa: SIM115
            fileobj=self._gzip, mode="w", format=tarfile.PAX_FORMAT
        )

    @property
    def left(self) -> int:
        return self.budget - self.used

    def _member(self, path: str, data: bytes) -> None:
        assert self._tar is not None
        info = tarfile.TarInfo(f"{self.prefix}/{path}")
        info.size = len(data)
        info.mode = 0o600
        info.mtime = int(self.mtime)
        info.uname = info.gname = "root"
        self._tar.addfile(info, io.BytesIO(data))

    def add(
        self,
        path: str,
        data: bytes | str,
        *,
        how: str,
        limit: int | None = None,
        keep: str = "tail",
        note: str | None = None,
    ) -> Entry:
        """Add one file (redacted); ``limit`` caps it, keeping its ``tail`` or ``head``."""
        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        redacted = self.redactor.data(raw)
        original = len(redacted)
        header = header_cost(f"{self.prefix}/{path}")
        room = (self.left - header) // BLOCK * BLOCK
        cap = min(limit if limit is not None else original, max(0, room))
        if room < 0 or (cap <= 0 and original > 0):
            entry = Entry(path, how, "skipped", note="left out: the bundle's size bound is reached")
            self.cut.append(f"{path}: left out ({original} bytes) to stay within the size bound")
            self.entries.append(entry)
            return entry
        status = "collected"
        if original > cap:
            redacted = _cut(redacted, cap, keep)
            status = "truncated"
            why = "its own limit" if limit is not None and limit < self.left else "the size bound"
            self.cut.append(
                f"{path}: {original} bytes cut to the {keep} {len(redacted)} bytes ({why})"
            )
        self._member(path, redacted)
        self.used += header + data_cost(len(redacted))
        entry = Entry(
            path,
            how,
            status,
            bytes=len(redacted),
            sha256=hashlib.sha256(redacted).hexdigest(),
            note=note
            if status == "collected"
            else f"cut from {original} bytes, the {keep} kept" + (f"; {note}" if note else ""),
        )
        self.entries.append(entry)
        return entry

    def add_json(self, path: str, document: Any, *, how: str, note: str | None = None) -> Entry:
        text = json.dumps(document, indent=1, sort_keys=True, default=str) + "\n"
        return self.add(path, text, how=how, keep="head", note=note)

    def put(self, item: Item) -> Entry:
        if item.data is not None:
            return self.add(
                item.path, item.data, how=item.how, limit=item.limit, keep=item.keep, note=item.note
            )
        if item.error is not None:
            return self.failed(item.path, how=item.how, error=item.error)
        return self.skipped(item.path, how=item.how, why=item.skipped or "not collected")

    def failed(self, path: str, *, how: str, error: str) -> Entry:
        entry = Entry(path, how, "failed", error=self.redactor.text(error))
        self.entries.append(entry)
        return entry

    def skipped(self, path: str, *, how: str, why: str) -> Entry:
        entry = Entry(path, how, "skipped", note=self.redactor.text(why))
        self.entries.append(entry)
        return entry

    def close(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Write ``manifest`` (plus the file list and what was cut) last and finish the file."""
        assert self._tar is not None
        assert self._gzip is not None
        document = {
            **manifest,
            "files": [e.to_json() for e in self.entries],
            "failed": [e.path for e in self.entries if e.status == "failed"],
            "cut": list(self.cut),
        }
        data = self.redactor.data(
            (json.dumps(document, indent=1, sort_keys=True, default=str) + "\n").encode()
        )
        if len(data) > self.manifest_reserve + self.left:
            # Never happens with sane limits; the manifest still goes in, shortened.
            document["files"] = document["files"][:100]
            document["cut"].append("manifest: the file list was shortened to 100 entries")
            data = self.redactor.data(json.dumps(document, indent=1, default=str).encode())
        self._member(MANIFEST, data)
        self._tar.close()
        self._gzip.close()
        return document


def _cut(data: bytes, cap: int, keep: str) -> bytes:
    """At most ``cap`` bytes of ``data``, from the end (``tail``) or the start, on a line
    boundary when there is one nearby."""
    if keep == "head":
        part = data[:cap]
        newline = part.rfind(b"\n")
        return part[: newline + 1] if newline > cap // 2 else part
    part = data[len(data) - cap :]
    newline = part.find(b"\n")
    return part[newline + 1 :] if 0 <= newline < cap // 2 else part
