"""SHA-256 of large files, and a cache of the base ISO's digest keyed by path, size and mtime."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mmap
import os
import threading
from collections.abc import Callable
from pathlib import Path

from host_service import atomic
from isobuild import interrupt

log = logging.getLogger(__name__)

CHUNK = 1 << 20
HASH_STEP = 32 << 20  # progress and Ctrl-C between steps; hashlib drops the GIL within one
CACHE_FILE = "base-iso-digests.json"


def sha256_file(
    path: Path,
    progress: Callable[[int], None] | None = None,
    also: Callable[[memoryview], None] | None = None,
) -> str:
    """One pass over ``path``'s mapped pages: no copy into a buffer and no thread.

    ``also`` gets the same pages, HASH_STEP bytes at a time in order, right after SHA-256
    read them (the flash digests the ISO's chunks there: isobuild.flash.chunk_digests).

    Measured on the 2.6 GiB base at load 23-30: 1.9 CPU-s mapped against 2.1-2.4 read into
    a buffer, and a reader thread handing buffers to a hashing thread was slower still
    (every hand-over waits for a core). A file cut short while it is hashed ends the process
    with SIGBUS; the inputs hashed here (base ISO, verified cache entries) are not edited.
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size:
            with (
                mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ) as mapping,
                interrupt.deferred() as checkpoint,
            ):
                mapping.madvise(mmap.MADV_SEQUENTIAL)
                view = memoryview(mapping)
                try:
                    for offset in range(0, size, HASH_STEP):
                        with view[offset : offset + HASH_STEP] as piece:
                            digest.update(piece)
                            if also is not None:
                                also(piece)
                        if progress is not None:
                            progress(min(offset + HASH_STEP, size))
                        checkpoint()
                finally:
                    view.release()
    if progress is not None and not size:
        progress(0)
    return digest.hexdigest()


def sha256_and_md5(path: Path) -> tuple[str, str, int]:
    """Both digests and the size in one read (files added to the ISO need all three)."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


def _key(path: Path) -> str:
    info = path.stat()
    return f"{path.resolve()}|{info.st_size}|{info.st_mtime_ns}"


class DigestCache:
    """sha256 of big inputs, remembered under the cache dir while path+size+mtime hold."""

    def __init__(self, cache_dir: Path) -> None:
        self.file = cache_dir / CACHE_FILE

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, path: Path) -> str | None:
        return self._load().get(_key(path))

    def put(self, path: Path, sha256: str) -> None:
        try:
            data = self._load()
            data[_key(path)] = sha256
            atomic.write_text(self.file, json.dumps(data, indent=1, sort_keys=True), mode=0o644)
        except OSError as exc:  # a cache that cannot be written only costs time
            log.warning("could not update the digest cache %s: %s", self.file, exc)

    def digest(self, path: Path) -> str:
        cached = self.get(path)
        if cached is not None:
            return cached
        value = sha256_file(path)
        self.put(path, value)
        return value


class BackgroundDigest:
    """The base ISO's sha256 computed on a thread while xorriso reads the same pages."""

    def __init__(self, cache: DigestCache, path: Path) -> None:
        # Started before anything checked ``path`` (the CLI starts it first): a base that is
        # missing or unreadable is the thread's error, for result(), never the constructor's.
        self._result: str | None = None
        with contextlib.suppress(OSError):
            self._result = cache.get(path)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if self._result is None:
            self._thread = threading.Thread(target=self._run, args=(cache, path), daemon=True)
            self._thread.start()

    def _run(self, cache: DigestCache, path: Path) -> None:
        try:
            self._result = cache.digest(path)
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def result(self) -> str:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result
