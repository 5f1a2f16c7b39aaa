"""Update state on disk (``<state>/update/``): the current run, the history, the last channel
check and the release manifests seen by checks and previews. Every write is atomic.

The history is rewritten whole (temp file, fsync, rename) after every change, and the run is
written before its history entry: a crash between the two leaves a run whose entry is put
back on the next start (``UpdateKeeper.load``), so no selection is ever lost.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host_service import atomic
from host_service.errors import InternalError
from host_service.intent import DIGEST
from host_service.release import Release, ReleaseError, canonical_json, parse_release
from host_service.settings import Paths
from host_service.update.state import UpdateRun

log = logging.getLogger(__name__)

HISTORY_LIMIT = 500


@dataclass(frozen=True)
class UpdatePaths:
    directory: Path

    @classmethod
    def of(cls, paths: Paths) -> UpdatePaths:
        return cls(paths.state / "update")

    @property
    def run(self) -> Path:
        return self.directory / "run.json"

    @property
    def history(self) -> Path:
        return self.directory / "history.json"

    @property
    def check(self) -> Path:
        return self.directory / "check.json"

    @property
    def manifests(self) -> Path:
        return self.directory / "manifests"

    def manifest(self, digest: str) -> Path:
        # The digest names a file: anything else (a path, a NUL byte) never reaches the disk.
        if not DIGEST.fullmatch(digest):
            raise InternalError(
                f"{digest!r} is not a manifest digest (sha256:<64 hex>): refused as a file "
                f"name in {self.manifests}"
            )
        return self.manifests / f"{digest.removeprefix('sha256:')}.json"


def json_type(value: object) -> str:
    """A JSON value's type in words, for a message about a file that holds the wrong one."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    names = {dict: "an object", list: "a list", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def read_document(
    path: Path,
    expected: type[dict[str, Any]] | type[list[Any]],
    *,
    directory: Path,
    problem: Callable[[Any], str | None] = lambda data: None,
) -> Any:
    """The JSON ``expected`` (an object or a list) in ``path``, or None when it is missing.

    A file that cannot be read or parsed, that holds another type, or whose content
    ``problem`` finds fault with, is renamed aside (``<name>.corrupt-<time>``) with a warning
    naming it, and reads as None -- but only in ``directory``, this store's own: nothing
    elsewhere is ever renamed (the service runs as root).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        why = f"unreadable ({exc})"
    else:
        if not isinstance(data, expected):
            kind = "object" if expected is dict else "list"
            why = f"expected a JSON {kind}, got {json_type(data)}"
        else:
            found = problem(data)
            if found is None:
                return data
            why = found
    if not _inside(path, directory):
        log.warning("%s: %s; left in place: it is not in %s", path, why, directory)
        return None
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    log.warning("%s: %s; kept as %s", path, why, aside.name)
    path.replace(aside)
    return None


def read_selection(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``release-selection.json`` (what the bootstrap recorded as reconciled) and, when it
    cannot be used, why, naming the file. It is the bootstrap's: a damaged one is left for
    its reconcile step to rewrite, and reads as nothing recorded."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, f"{path}: unreadable ({exc}); ignored"
    if not isinstance(data, dict):
        return None, f"{path}: expected a JSON object, got {json_type(data)}; ignored"
    return data, None


def _inside(path: Path, directory: Path) -> bool:
    try:
        return path.parent.resolve() == directory.resolve()
    except (OSError, ValueError, RuntimeError):  # a NUL byte; a symlink loop (3.11: RuntimeError)
        return False


@dataclass(frozen=True)
class Candidate:
    """A release manifest seen by a check or a preview, with the digests that pin it and the
    refs (channel, version, digest) it was fetched as: an update may only be started under
    one of those, so the choice recorded at commit is one the operator saw resolve to it."""

    manifest_digest: str
    config_digest: str
    release: Release
    refs: tuple[str, ...] = ()


class CandidateCache:
    def __init__(self, paths: UpdatePaths) -> None:
        self.paths = paths
        self._lock = threading.Lock()  # a check and a preview may save the same manifest

    def save(self, candidate: Candidate) -> None:
        """Keep ``candidate``; the refs it was seen as before are kept too."""
        with self._lock:
            known = self.load(candidate.manifest_digest)
            refs = dict.fromkeys((*(known.refs if known else ()), *candidate.refs))
            document = {
                "manifest_digest": candidate.manifest_digest,
                "config_digest": candidate.config_digest,
                "refs": list(refs),
                "release": json.loads(canonical_json(candidate.release.document)),
            }
            path = self.paths.manifest(candidate.manifest_digest)
            atomic.write_json(path, document, mode=0o600)

    def load(self, digest: str) -> Candidate | None:
        path = self.paths.manifest(digest)
        data = read_document(path, dict, directory=self.paths.manifests)
        if data is None or data.get("manifest_digest") != digest:
            return None
        config_digest = data.get("config_digest", "")
        refs = data.get("refs", [])  # none in a file from before refs were kept
        if not isinstance(config_digest, str) or not (
            config_digest == "" or DIGEST.fullmatch(config_digest)
        ):
            return None
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            return None
        if not isinstance(data.get("release"), dict):
            return None
        try:
            release = parse_release(data["release"], source=str(path))
        except ReleaseError:
            return None
        return Candidate(digest, config_digest, release, tuple(refs))


class History:
    """Every selection ever made, oldest first (bounded to the last ``HISTORY_LIMIT``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def entries(self) -> list[dict[str, Any]]:
        data = read_document(self.path, list, directory=self.path.parent)
        return [e for e in data if _is_entry(e)] if data is not None else []

    def upsert(self, entry: dict[str, Any]) -> None:
        with self._lock:
            entries = self.entries()
            for i, old in enumerate(entries):
                if old.get("id") == entry["id"]:
                    entries[i] = entry
                    break
            else:
                entries.append(entry)
            atomic.write_json(self.path, entries[-HISTORY_LIMIT:], mode=0o600)


def _is_entry(entry: object) -> bool:
    """An entry the views can show: an object whose ``from`` and ``to`` are objects (or null)."""
    return isinstance(entry, dict) and all(
        isinstance(entry.get(side), dict | None) for side in ("from", "to")
    )


Transition = Callable[[UpdateRun], UpdateRun]


class UpdateKeeper:
    """The current run: changes are persisted (run, then its history entry) before anyone
    sees them; waiters (long-poll) wake on every change."""

    def __init__(self, paths: UpdatePaths) -> None:
        self.paths = paths
        self.history = History(paths.history)
        self._run: UpdateRun | None = None
        self._version = 0
        self._changed = threading.Condition()

    def load(self) -> UpdateRun | None:
        data = read_document(self.paths.run, dict, directory=self.paths.directory)
        run = None
        if data is not None:
            try:
                run = UpdateRun.from_json(data)
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                log.warning("%s: not a run (%s); ignored", self.paths.run, exc)
        with self._changed:
            self._run = run
            self._version += 1
        if run is not None:
            self.history.upsert(run.history_entry())  # put back an entry a crash lost
        return run

    @property
    def run(self) -> UpdateRun | None:
        with self._changed:
            return self._run

    def snapshot(self) -> tuple[int, UpdateRun | None]:
        with self._changed:
            return self._version, self._run

    def replace(self, run: UpdateRun) -> None:
        """A new run (the old one is finished or superseded and already in the history)."""
        with self._changed:
            self._write(run)

    def update(self, transition: Transition) -> UpdateRun:
        with self._changed:
            if self._run is None:
                raise RuntimeError("no update run")
            new = transition(self._run)
            if new is not self._run:
                self._write(new)
            return new

    def _write(self, run: UpdateRun) -> None:
        atomic.write_json(self.paths.run, run.to_json(), mode=0o600)
        old = self._run
        self._run = run
        if old is None or old.history_entry() != run.history_entry():
            self.history.upsert(run.history_entry())
        self._version += 1
        self._changed.notify_all()

    def touch(self) -> None:
        """Wake waiters (a check finished: the view changed without a run change)."""
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    def wait_for_change(self, version: int, timeout: float) -> tuple[int, UpdateRun | None]:
        with self._changed:
            self._changed.wait_for(lambda: self._version != version, timeout=timeout)
            return self._version, self._run
