"""Crash-safe file writes: temp file in the same directory, fsync, ``os.replace``."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def replacing(path: Path, *, mode: int = 0o600) -> Iterator[IO[bytes]]:
    """A file to write that replaces ``path`` when the block ends without an error.

    A crash or an exception leaves either the old file or the new one, never a part, and
    no temp file. The temp file gets ``mode`` before any byte is written, so a secret is
    never readable by others even for an instant. An ``OSError`` of the write itself (a
    full or read-only disk) names ``path``, not the temp file or nothing at all.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from exc
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename in (None, tmp_name):
            raise _naming(exc, path) from exc
        raise
    _fsync_dir(path.parent)


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error (same errno, same subclass) about ``path``."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def write_bytes(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data``; a crash leaves either the old or the new file."""
    with replacing(path, mode=mode) as out:
        out.write(data)


def write_text(path: Path, text: str, *, mode: int = 0o600) -> None:
    write_bytes(path, text.encode("utf-8"), mode=mode)


def write_json(path: Path, document: Any, *, mode: int = 0o600) -> None:
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    write_bytes(path, text.encode("utf-8"), mode=mode)


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
