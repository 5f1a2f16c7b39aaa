"""The artifact cache: content-addressed files that were verified before they got in.

Layout under ``<cache dir>/artifacts`` (``isobuild.cache_dir``: ``$XDG_CACHE_HOME/isobuild``
unless ``--cache-dir`` says otherwise):
``sha256/<hex>`` verified artifacts, ``partial/<hex>.part`` downloads in progress (kept
between runs so an interrupted download resumes), ``built/<key>`` the sha256 of an artifact
isobuild built itself from pinned inputs (the Flux controller image archive).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
from collections.abc import Iterator
from pathlib import Path

from host_service import atomic
from isobuild.digest import sha256_file
from isobuild.errors import EnvironmentProblem, VerificationError

log = logging.getLogger(__name__)

_HEX = re.compile(r"[0-9a-f]{64}")


def _check_hex(sha256: str) -> str:
    if not _HEX.fullmatch(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


class ArtifactCache:
    """Verified artifacts by sha256; nothing enters without matching its digest."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def under(cls, cache_dir: Path) -> ArtifactCache:
        """The artifact cache inside isobuild's cache directory (``--cache-dir``)."""
        return cls(cache_dir / "artifacts")

    def _ensure(self, directory: Path) -> Path:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentProblem(
                f"{directory}: cannot create the artifact cache: {exc.strerror}",
                hint="pass --cache-dir with a writable directory",
            ) from exc
        return directory

    def path_for(self, sha256: str) -> Path:
        return self.root / "sha256" / _check_hex(sha256)

    def digest_of(self, path: Path) -> str:
        """The sha256 of an entry this cache handed out: entries are named by their
        verified digest, so callers need not hash them again."""
        if path.parent != self.root / "sha256":
            raise ValueError(f"not an entry of the artifact cache {self.root}: {path}")
        return _check_hex(path.name)

    def partial_path(self, sha256: str) -> Path:
        return self._ensure(self.root / "partial") / f"{_check_hex(sha256)}.part"

    def lookup(self, sha256: str) -> Path | None:
        """The cached file with this digest, re-verified; a corrupted entry is dropped."""
        path = self.path_for(sha256)
        if not path.is_file():
            return None
        actual = sha256_file(path)
        if actual != sha256:
            log.warning("%s: cached file is corrupted (sha256 %s); removing it", path, actual)
            path.unlink(missing_ok=True)
            return None
        return path

    def admit(self, candidate: Path, sha256: str, *, label: str) -> Path:
        """Move ``candidate`` into the cache if its bytes hash to ``sha256``.

        On a mismatch the candidate is deleted and VerificationError names both digests;
        nothing is cached. ``label`` says what the file is, for that message.
        """
        actual = sha256_file(candidate)
        if actual != sha256:
            candidate.unlink(missing_ok=True)
            raise VerificationError(
                f"{label}: sha256 mismatch: expected {sha256} (pinned), got {actual}; "
                "the file was discarded and nothing was cached",
                hint="the source served different bytes than the lock file pins: check the "
                "mirror or proxy, or whether the release was replaced upstream",
            )
        destination = self.path_for(sha256)
        self._ensure(destination.parent)
        candidate.chmod(0o644)
        candidate.replace(destination)
        return destination

    def remember(self, key: str, sha256: str) -> None:
        """Record that the artifact built from inputs ``key`` has digest ``sha256``."""
        record = self._ensure(self.root / "built") / _check_hex(key)
        atomic.write_text(record, _check_hex(sha256) + "\n", mode=0o644)

    def recall(self, key: str) -> Path | None:
        """The cached artifact built from inputs ``key``, re-verified, if there is one."""
        record = self.root / "built" / _check_hex(key)
        try:
            sha256 = record.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        if not _HEX.fullmatch(sha256):
            record.unlink(missing_ok=True)
            return None
        return self.lookup(sha256)

    @contextlib.contextmanager
    def locked(self, sha256: str) -> Iterator[None]:
        """Hold an exclusive lock on one digest so two builds don't write one partial file."""
        lock_path = self._ensure(self.root / "partial") / f"{_check_hex(sha256)}.lock"
        with lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
