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
        return self.manifests / f"{digest.removeprefix('sha256:')}.json"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        log.warning("%s: unreadable (%s); kept as %s", path, exc, aside.name)
        path.replace(aside)
        return None


@dataclass(frozen=True)
class Candidate:
    """A release manifest seen by a check or a preview, with the digests that pin it."""

    manifest_digest: str
    config_digest: str
    release: Release


class CandidateCache:
    def __init__(self, paths: UpdatePaths) -> None:
        self.paths = paths

    def save(self, candidate: Candidate) -> None:
        document = {
            "manifest_digest": candidate.manifest_digest,
            "config_digest": candidate.config_digest,
            "release": json.loads(canonical_json(candidate.release.document)),
        }
        atomic.write_json(self.paths.manifest(candidate.manifest_digest), document, mode=0o600)

    def load(self, digest: str) -> Candidate | None:
        path = self.paths.manifest(digest)
        data = _read_json(path)
        if not isinstance(data, dict) or data.get("manifest_digest") != digest:
            return None
        try:
            release = parse_release(data["release"], source=str(path))
        except (ReleaseError, KeyError):
            return None
        return Candidate(digest, str(data.get("config_digest", "")), release)


class History:
    """Every selection ever made, oldest first (bounded to the last ``HISTORY_LIMIT``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def entries(self) -> list[dict[str, Any]]:
        data = _read_json(self.path)
        return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []

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
        data = _read_json(self.paths.run)
        run = None
        if isinstance(data, dict):
            try:
                run = UpdateRun.from_json(data)
            except (KeyError, ValueError, TypeError) as exc:
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
