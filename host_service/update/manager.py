"""Updates as the service offers them: the channel check (scheduled and on demand), the preview
with its diff, starting, retrying and resuming a run, the history. What the HTTP layer calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from host_service import atomic
from host_service.errors import InvalidInput
from host_service.intent import CHANNEL, DIGEST, VERSION, InputErrors, IntentStore, SetupIntent
from host_service.operate.overview import STEP_HEALTH, STEP_WORDS
from host_service.release import Release
from host_service.runtime import Runtime
from host_service.settings import Settings
from host_service.state import Phase
from host_service.steps import resolved
from host_service.steps.context import StepContext, StepFailed
from host_service.update import state as us
from host_service.update.diff import release_diff
from host_service.update.runner import UpdateRunner
from host_service.update.state import TITLES, RunPhase, Selection, UpdateRun, UpdateStep
from host_service.update.steps import UpdateImplementation
from host_service.update.store import (
    Candidate,
    CandidateCache,
    UpdateKeeper,
    UpdatePaths,
    json_type,
    read_document,
    read_selection,
)
from host_service.update.versions import compare
from host_service.worker import redactor

log = logging.getLogger(__name__)

CHECK_INTERVAL = 6 * 3600.0
FIRST_CHECK = 60.0
HISTORY_SHOWN = 20


class UpdateConflict(InvalidInput):
    """The request does not fit the state (HTTP 409); the message says why and what to do."""


REF_EXPECTED = "expected a channel (stable), a version (1.4.2) or a digest (sha256:<64 hex>)"
DIGEST_EXPECTED = "expected sha256:<64 hex>, the manifest digest the check or preview showed"


def ref_problem(ref: object) -> str | None:
    """What is wrong with ``ref`` as the release an update selects, or None. It becomes the
    channel or the pinned release in the setup inputs, so it passes setup's own rules."""
    if isinstance(ref, str) and (
        CHANNEL.fullmatch(ref) or VERSION.fullmatch(ref) or DIGEST.fullmatch(ref)
    ):
        return None
    return REF_EXPECTED


def digest_problem(digest: object) -> str | None:
    """What is wrong with ``digest`` as a release manifest digest, or None."""
    return None if isinstance(digest, str) and DIGEST.fullmatch(digest) else DIGEST_EXPECTED


def _require_valid(ref: str, manifest_digest: str | None = None) -> None:
    """The manager's own check (the HTTP layer checks first, answering 400 per field)."""
    problems = {"ref": ref_problem(ref)}
    if manifest_digest is not None:
        problems["manifest_digest"] = digest_problem(manifest_digest)
    errors = {field: problem for field, problem in problems.items() if problem}
    if errors:
        raise InputErrors(errors)


class UpdateManager:
    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        *,
        intents: IntentStore,
        bootstrap_phase: Callable[[], Phase],
        clock: Callable[[], float] = time.time,
        implementations: Mapping[UpdateStep, UpdateImplementation] | None = None,
        check_interval: float = CHECK_INTERVAL,
        first_check: float = FIRST_CHECK,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.intents = intents
        self.bootstrap_phase = bootstrap_phase
        self.clock = clock
        self.paths = UpdatePaths.of(settings.paths)
        self.keeper = UpdateKeeper(self.paths)
        self.cache = CandidateCache(self.paths)
        self.runner = UpdateRunner(
            settings=settings,
            runtime=runtime,
            keeper=self.keeper,
            intents=intents,
            cache=self.cache,
            clock=clock,
            implementations=implementations,
        )
        self.check_interval = check_interval
        self.first_check = first_check
        self._lock = threading.Lock()  # one start/retry/check decision at a time
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None
        self._selection_problem: str | None = None  # the last one logged

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self.paths.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        run = self.keeper.load()
        if run is not None and run.phase is RunPhase.RUNNING:
            log.info("resuming update %s at %s", run.id, run.current)
            self.keeper.update(lambda r: us.interrupted(r, self.clock()))
        self._adopt_install()
        self.runner.start()
        if run is not None and run.phase is RunPhase.RUNNING:
            self.runner.kick()
        self._scheduler = threading.Thread(target=self._schedule, name="update-check", daemon=True)
        self._scheduler.start()

    def stop(self) -> None:
        self._stop.set()
        self.runner.stop()

    def running(self) -> bool:
        run = self.keeper.run
        return run is not None and run.phase is RunPhase.RUNNING

    def history(self) -> list[dict[str, Any]]:
        """Every selection, oldest first (the bootstrap's own opens it)."""
        self._adopt_install()
        return self.keeper.history.entries()

    def _adopt_install(self) -> None:
        """The first selection (the bootstrap's) opens the history."""
        if any(e.get("kind") == "install" for e in self.keeper.history.entries()):
            return
        recorded, problem = read_selection(self.settings.paths.selection_file)
        if problem != self._selection_problem and problem is not None:
            log.warning("%s", problem)  # once, not on every view of the update page
        self._selection_problem = problem
        if recorded is None:
            return
        self.keeper.history.upsert(
            {
                "id": "install",
                "kind": "install",
                "requested_by": "setup",
                "requested_at": recorded.get("reconciled_at"),
                "finished_at": recorded.get("reconciled_at"),
                "from": None,
                "to": {
                    "ref": recorded.get("ref"),
                    "version": recorded.get("version"),
                    "manifest_digest": recorded.get("manifest_digest"),
                    "config_digest": recorded.get("config_digest_pinned"),
                },
                "force": False,
                "outcome": "succeeded",
                "blocked_at": None,
                "message": "",
            }
        )

    def check_due(self) -> bool:
        """Whether the scheduled check runs now: only on an installed, idle appliance."""
        return self.bootstrap_phase() is Phase.RECONCILED and not self.running()

    def _schedule(self) -> None:
        delay = self.first_check
        while not self._stop.wait(delay):
            delay = self.check_interval
            if not self.check_due():
                continue
            try:
                self.check(requested_by="schedule")
            except UpdateConflict:
                continue
            except Exception:  # the schedule must outlive any one failed check
                log.exception("scheduled update check failed")

    # -- what runs now -------------------------------------------------------------------

    def _context(self, intent: SetupIntent) -> StepContext:
        return StepContext(
            settings=self.settings,
            intent=intent,
            kube=self.runtime.kube,
            systemd=self.runtime.systemd,
            k3s=self.runtime.k3s,
            host=self.runtime.host,
            registry=self.runtime.registry(self.settings, intent),
            reporter=lambda message, detail: None,
        )

    def _intent(self) -> SetupIntent:
        intent = self.intents.load()
        if intent is None:
            raise UpdateConflict("the appliance is not set up yet: submit setup first")
        return intent

    def current(self) -> tuple[Selection, Release] | None:
        """The selected release (the last one committed), from the recorded resolution."""
        intent = self.intents.load()
        if intent is None:
            return None
        found = resolved.load(self._context(intent))
        if found is None:
            return None
        resolution, release = found
        selection = Selection(
            ref=resolution.ref,
            version=resolution.version,
            manifest_digest=resolution.manifest_digest,
            config_digest=release.config.digest,
        )
        return selection, release

    def followed_channel(self) -> str:
        intent = self.intents.load()
        if intent is not None and intent.channel:
            return intent.channel
        current = self.current()
        if current is not None:
            return current[1].channel
        return self.settings.registry.default_channel

    # -- check and preview ---------------------------------------------------------------

    def _fetch(self, intent: SetupIntent, ref: str) -> Candidate:
        ctx = self._context(intent)
        fetched = resolved.fetch(ctx, ref)
        candidate = Candidate(
            fetched.manifest_digest, fetched.config_digest, fetched.release, refs=(ref,)
        )
        self.cache.save(candidate)
        return candidate

    def check(self, *, requested_by: str) -> dict[str, Any]:
        """Resolve the followed channel now; the result is kept and shown until the next."""
        intent = self._intent()
        channel = self.followed_channel()
        current = self.current()
        result: dict[str, Any] = {
            "checked_at": self.clock(),
            "requested_by": requested_by,
            "channel": channel,
            "running": current[0].to_json() if current else None,
            "latest": None,
            "available": False,
            "relation": None,
            "error": None,
        }
        try:
            candidate = self._fetch(intent, channel)
        except StepFailed as exc:
            result["error"] = redactor(intent)(f"{exc.message} ({exc.cause})")
        else:
            result["latest"] = {
                "ref": channel,
                "version": candidate.release.version,
                "manifest_digest": candidate.manifest_digest,
                "config_digest": candidate.config_digest,
            }
            relation = _relation(current[0] if current else None, candidate)
            result["relation"] = relation
            result["available"] = relation in ("newer", "republished")
        atomic.write_json(self.paths.check, result, mode=0o600)
        self.keeper.touch()
        log.info("update check (%s): %s", requested_by, result["relation"] or result["error"])
        return result

    def last_check(self) -> dict[str, Any] | None:
        check: dict[str, Any] | None = read_document(
            self.paths.check, dict, directory=self.paths.directory, problem=_check_problem
        )
        return check

    def kind_of(self, ref: str) -> str:
        if VERSION.fullmatch(ref) or DIGEST.fullmatch(ref):
            return "pin"
        intent = self.intents.load()
        return "update" if intent is not None and intent.channel == ref else "channel"

    def preview(self, ref: str) -> dict[str, Any]:
        """What selecting ``ref`` (channel, version or digest) would change, side by side."""
        _require_valid(ref)
        intent = self._intent()
        try:
            candidate = self._fetch(intent, ref)
        except StepFailed as exc:
            raise UpdateConflict(redactor(intent)(f"{exc.message}: {exc.next_step}")) from exc
        return self._describe(intent, ref, candidate)

    def _describe(self, intent: SetupIntent, ref: str, candidate: Candidate) -> dict[str, Any]:
        current = self.current()
        selection, running = current if current else (None, None)
        relation = _relation(selection, candidate)
        return {
            "ref": ref,
            "kind": self.kind_of(ref),
            "target": {
                "ref": ref,
                "version": candidate.release.version,
                "manifest_digest": candidate.manifest_digest,
                "config_digest": candidate.config_digest,
            },
            "running": selection.to_json() if selection else None,
            "relation": relation,
            "downgrade": relation == "older",
            "diff": release_diff(
                running,
                candidate.release,
                running_digest=selection.manifest_digest if selection else None,
                candidate_digest=candidate.manifest_digest,
                intent=intent,
                workloads=self.settings.namespaces.workloads,
            ),
        }

    def describe_cached(self, ref: str, digest: str) -> dict[str, Any] | None:
        """The preview of a candidate a check or preview already fetched as ``ref`` (no
        registry call); None when it did not."""
        _require_valid(ref, digest)
        candidate = self.cache.load(digest)
        intent = self.intents.load()
        if candidate is None or ref not in candidate.refs or intent is None:
            return None
        return self._describe(intent, ref, candidate)

    # -- runs ----------------------------------------------------------------------------

    def start_update(
        self, *, ref: str, manifest_digest: str, force: bool, requested_by: str
    ) -> UpdateRun:
        """Start a run to the release ``manifest_digest`` as a check or preview of ``ref``
        showed it."""
        _require_valid(ref, manifest_digest)
        with self._lock:
            phase = self.bootstrap_phase()
            if phase is not Phase.RECONCILED:
                raise UpdateConflict(
                    f"the bootstrap is {phase.value}: an update needs an installed release; "
                    "finish setup first (status page)"
                )
            run = self.keeper.run
            if run is not None and run.phase is RunPhase.RUNNING:
                raise UpdateConflict(f"update {run.id} is running; wait for it to finish")
            candidate = self.cache.load(manifest_digest)
            if candidate is None:
                raise UpdateConflict(
                    f"release {manifest_digest} was not checked or previewed on this appliance; "
                    "check for updates or preview it first"
                )
            if ref not in candidate.refs:
                # The ref is what commit records as the operator's choice: it must be one the
                # registry answered with this manifest, not any name sent along with it.
                seen = ", ".join(repr(r) for r in candidate.refs)
                raise UpdateConflict(
                    f"release {manifest_digest} was not checked or previewed as {ref!r} on "
                    f"this appliance{f' (only as {seen})' if seen else ''}; preview {ref} "
                    "and start the update from that preview"
                )
            current = self.current()
            if current is None:
                raise UpdateConflict("no release is recorded as selected; run repair-release")
            selection = current[0]
            if selection.manifest_digest == manifest_digest and selection.ref == ref:
                raise UpdateConflict(f"release {selection.version} ({ref}) is already selected")
            order = compare(candidate.release.version, selection.version)
            if order is not None and order < 0 and not force:
                raise UpdateConflict(
                    f"release {candidate.release.version} is older than the running "
                    f"{selection.version}: a downgrade is refused unless forced, because the "
                    "running release may already have migrated data the older one cannot "
                    "read; confirm the downgrade (force) to do it anyway"
                )
            now = self.clock()
            if run is not None and run.phase is RunPhase.BLOCKED:
                self.keeper.update(lambda r: us.supersede(r, now))
            new = UpdateRun(
                id=f"u{len(self.history()) + 1}-{int(now)}",
                kind=self.kind_of(ref),
                target=Selection(
                    ref=ref,
                    version=candidate.release.version,
                    manifest_digest=manifest_digest,
                    config_digest=candidate.release.config.digest,
                ),
                previous=selection,
                requested_by=requested_by,
                requested_at=now,
                force=force,
                updated_at=now,
            )
            self.keeper.replace(new)
            log.info(
                "update %s started by %s: %s -> %s",
                new.id,
                requested_by,
                selection.version,
                new.target.version,
            )
        self.runner.kick()
        return new

    def retry(self) -> UpdateRun:
        with self._lock:
            run = self.keeper.run
            if run is None or run.phase is not RunPhase.BLOCKED:
                state = run.phase.value if run else "none"
                raise UpdateConflict(f"nothing to retry: the last update is {state}")
            new = self.keeper.update(lambda r: us.retry(r, self.clock()))
        self.runner.kick()
        return new

    # -- views ---------------------------------------------------------------------------

    def view(self, version: int, run: UpdateRun | None) -> dict[str, Any]:
        current = self.current()
        history = self.history()
        return {
            "version": version,
            "selected": current[0].to_json() if current else None,
            "followed_channel": self.followed_channel(),
            "check": self.last_check(),
            "run": run_view(run, self.runner.alive) if run else None,
            "history": [history_view(e) for e in reversed(history)][:HISTORY_SHOWN],
            "bootstrap_phase": self.bootstrap_phase().value,
        }


PHASE_WORDS: Mapping[RunPhase, str] = {
    RunPhase.RUNNING: "In progress",
    RunPhase.BLOCKED: "Stopped",
    RunPhase.SUCCEEDED: "Done",
    RunPhase.SUPERSEDED: "Replaced by a later update",
}
PHASE_HEALTH: Mapping[RunPhase, str] = {
    RunPhase.RUNNING: "progress",
    RunPhase.BLOCKED: "bad",
    RunPhase.SUCCEEDED: "ok",
    RunPhase.SUPERSEDED: "waiting",
}


def history_view(entry: dict[str, Any]) -> dict[str, Any]:
    """A history entry with its outcome and blocked step in words (the raw ones stay)."""
    try:
        outcome = PHASE_WORDS[RunPhase(str(entry.get("outcome")))]
    except ValueError:  # none, or an outcome from a newer service
        outcome = str(entry.get("outcome") or "")
    blocked_at = entry.get("blocked_at")
    try:
        step = TITLES[UpdateStep(blocked_at)] if blocked_at else None
    except ValueError:
        step = str(blocked_at)
    return {**entry, "outcome_text": outcome, "blocked_at_title": step}


def run_view(run: UpdateRun, runner_alive: bool) -> dict[str, Any]:
    data = run.to_json()
    data["running"] = run.phase is RunPhase.RUNNING and runner_alive
    data["current_step"] = run.current.value if run.current else None
    data["phase_text"] = PHASE_WORDS[run.phase]
    data["health"] = PHASE_HEALTH[run.phase]
    if run.blocker is not None:
        data["blocker"]["title"] = TITLES[run.blocker.step]
    for record in data["steps"]:
        record["title"] = TITLES[UpdateStep(record["step"])]
        # The same words and icons as the setup steps on the status page.
        record["status_text"] = STEP_WORDS.get(record["status"], record["status"])
        record["health"] = STEP_HEALTH.get(record["status"], "unknown")
    return data


def _check_problem(check: dict[str, Any]) -> str | None:
    """What in a stored check the views could not show (they read ``latest``'s fields)."""
    latest = check.get("latest")
    if isinstance(latest, dict | None):
        return None
    return f"latest: expected a JSON object or null, got {json_type(latest)}"


def _relation(selection: Selection | None, candidate: Candidate) -> str:
    """newer | same | older | republished (same version, another digest) | unknown."""
    if selection is None:
        return "unknown"
    if selection.manifest_digest == candidate.manifest_digest:
        return "same"
    order = compare(candidate.release.version, selection.version)
    if order is None:
        return "unknown"
    return {1: "newer", 0: "republished", -1: "older"}[order]
