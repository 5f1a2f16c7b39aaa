"""The service: state on disk, the worker, the token and sessions; what the HTTP layer calls."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from host_service import console, lock, owner, setup_token
from host_service import state as sm
from host_service.errors import InvalidInput
from host_service.intent import IntentStore, SetupIntent
from host_service.logs.hub import LogHub
from host_service.operate.monitor import Monitor
from host_service.resolution import read_resolution
from host_service.runtime import Runtime
from host_service.sessions import Lockout, SessionKeeper
from host_service.settings import Settings
from host_service.state import TITLES, BootstrapState, Phase, Resume, Step
from host_service.steps import StepImplementation
from host_service.store import STATE_DISK_HINT, StateKeeper, StateWriteFailed, load_state
from host_service.support.service import SupportBundles
from host_service.update.manager import UpdateManager
from host_service.update.state import UpdateStep
from host_service.update.steps import UpdateImplementation
from host_service.worker import Worker

log = logging.getLogger(__name__)


class Conflict(InvalidInput):
    """The request does not fit the current state (HTTP 409); the message says why."""


class Service:
    def __init__(
        self,
        settings: Settings,
        runtime: Runtime,
        *,
        clock: Callable[[], float] = time.time,
        lockout: Lockout | None = None,
        implementations: Mapping[Step, StepImplementation] | None = None,
        update_steps: Mapping[UpdateStep, UpdateImplementation] | None = None,
    ) -> None:
        self.settings = settings
        self.implementations = implementations
        self.runtime = runtime
        self.clock = clock
        self.intents = IntentStore(settings.paths.intent_file, sets_aside=True)
        self.sessions = SessionKeeper(
            settings.paths.session_key_file, revoked_file=settings.paths.revoked_sessions_file
        )
        self.lockout = lockout or Lockout()
        self.support = SupportBundles(settings, runtime, clock=clock)
        self.updates = UpdateManager(
            settings,
            runtime,
            intents=self.intents,
            bootstrap_phase=lambda: self.state_keeper.state.phase,
            clock=clock,
            implementations=update_steps,
        )
        self.monitor = Monitor(settings, runtime, clock=clock)
        self.logs = LogHub(runtime.kube)
        self.keeper: StateKeeper | None = None
        self.worker: Worker | None = None
        self.resume: Resume | None = None
        self._lock_handle: IO[str] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        paths = self.settings.paths
        paths.state.mkdir(parents=True, exist_ok=True, mode=0o700)
        paths.state.chmod(0o700)
        self._take_lock()
        self.token()  # made now, or replaced when damaged (the console is shown below)
        loaded = load_state(paths.state_file)
        alive = loaded.owner is not None and owner.is_alive(loaded.owner)
        intent = self.intents.load()  # damaged inputs are moved aside, and asked for again
        self.resume = sm.resume_decision(loaded, owner_alive=alive, has_intent=intent is not None)
        now = self.clock()
        if self.resume is Resume.OWNED_ELSEWHERE:
            # The state lock is ours, so the recorded owner cannot be driving it any more.
            log.warning(
                "state names live pid %s as owner without holding the lock; taking over",
                loaded.owner.pid if loaded.owner else "?",
            )
            self.resume = Resume.CONTINUE
        if self.resume is Resume.CONTINUE:
            loaded = sm.interrupted(loaded, now)
        elif self.resume is Resume.ABANDON:
            loaded = sm.abandon(loaded, now, "setup inputs missing")
        pid, started, boot = owner.this_process()
        claimed = sm.claim(loaded, pid=pid, started_at=started, boot_id=boot, now=now)
        self.keeper = StateKeeper(paths.state_file, claimed)
        self.keeper.persist()  # the claim is on disk before any request is answered
        self.worker = Worker(
            settings=self.settings,
            runtime=self.runtime,
            keeper=self.keeper,
            intents=self.intents,
            clock=self.clock,
            implementations=self.implementations,
        )
        self.worker.start(claimed.generation)
        self.updates.start()
        self.monitor.start(self.keeper)
        if claimed.phase is Phase.RUNNING:
            log.info("resuming the bootstrap at %s", claimed.current)
            self.worker.kick()
        self.refresh_console()

    def stop_bootstrap(self) -> None:
        """End the running step (bootstrap or update) and its program; the run resumes on the
        next start."""
        if self.worker is not None:
            self.worker.stop()
        self.updates.stop()

    def stop(self) -> None:
        self.logs.close()
        self.stop_bootstrap()
        self.monitor.stop()
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def _take_lock(self) -> None:
        self._lock_handle = lock.hold(self.settings.paths.lock_file)

    # -- operator actions --------------------------------------------------------------

    @property
    def state_keeper(self) -> StateKeeper:
        if self.keeper is None:
            raise RuntimeError("service not started")
        return self.keeper

    def _worker(self) -> Worker:
        if self.worker is None:
            raise RuntimeError("service not started")
        return self.worker

    def submit_setup(self, intent: SetupIntent) -> BootstrapState:
        """Store the operator's inputs and start a run from the first step."""
        keeper = self.state_keeper
        with_lock: list[BootstrapState] = []

        def transition(current: BootstrapState) -> BootstrapState:
            if current.phase is Phase.RUNNING:
                raise Conflict(
                    "the bootstrap is running; wait for it to finish or stop at a blocker"
                )
            if self.updates.running():
                raise Conflict("an update is running; wait for it to finish or stop at a blocker")
            # Saved inside the state lock: the worker never sees a run without its inputs.
            try:
                self.intents.save(intent)
            except OSError as exc:
                path = self.settings.paths.intent_file
                raise StateWriteFailed(
                    f"cannot write {path}: {exc.strerror or exc}", hint=STATE_DISK_HINT
                ) from exc
            new = sm.start_run(current, self.clock())
            with_lock.append(new)
            return new

        keeper.update(transition)
        self._worker().kick()
        return with_lock[0]

    def retry(self) -> BootstrapState:
        def transition(current: BootstrapState) -> BootstrapState:
            if current.phase is not Phase.BLOCKED:
                raise Conflict(f"nothing to retry: the bootstrap is {current.phase.value}")
            return sm.retry(current, self.clock())

        new = self.state_keeper.update(transition)
        self._worker().kick()
        return new

    def token(self) -> str:
        return setup_token.load_or_create(self.settings.paths.token_file, replaced=self._show)

    def refresh_console(self) -> None:
        self._show(self.token())

    def _show(self, token: str) -> None:
        try:
            console.show(self.settings, addresses=self.runtime.host.addresses(), token=token)
        except OSError as exc:
            log.warning("console banner not updated: %s", exc)

    # -- views -------------------------------------------------------------------------

    def running(self, state: BootstrapState) -> bool:
        """True only while a live worker of this process drives a run."""
        return self._running(state, owner_alive=_owner_alive(state))

    def _running(self, state: BootstrapState, *, owner_alive: bool) -> bool:
        worker = self.worker
        return (
            state.phase is Phase.RUNNING
            and worker is not None
            and worker.alive
            and state.owner is not None
            and state.owner.generation == worker.generation
            and owner_alive
        )

    def status(self) -> dict[str, Any]:
        version, state = self.state_keeper.snapshot()
        return self.status_view(version, state)

    def status_view(self, version: int, state: BootstrapState) -> dict[str, Any]:
        intent = self.intents.load()
        now = self.clock()
        owner_alive = _owner_alive(state)  # /proc reads: once per view
        steps = []
        for record in state.steps:
            end = record.finished_at or (now if record.started_at else None)
            steps.append(
                {
                    "name": record.step.value,
                    "title": TITLES[record.step],
                    "status": record.status.value,
                    "started_at": record.started_at,
                    "finished_at": record.finished_at,
                    "seconds": round(end - record.started_at, 1)
                    if end is not None and record.started_at is not None
                    else None,
                    "attempts": record.attempts,
                    "message": record.message,
                    "already_done": record.already_done,
                    "details": list(record.details),
                }
            )
        return {
            "version": version,
            "phase": state.phase.value,
            "running": self._running(state, owner_alive=owner_alive),
            "current_step": state.current.value if state.current else None,
            "steps": steps,
            "blocker": state.blocker.to_json() if state.blocker else None,
            "run": state.run,
            "owner": {**state.owner.to_json(), "alive": owner_alive} if state.owner else None,
            "setup": intent.public() if intent else None,
            "release": self._release_summary(),
            "update": self._update_summary(),
            "app_url": intent.app_url if intent and state.phase is Phase.RECONCILED else None,
            "updated_at": state.updated_at,
            "state_write_error": self.state_keeper.write_error,
            "build": dict(self.settings.build),
            "standin": self.settings.standin,
        }

    def _update_summary(self) -> dict[str, Any]:
        """The update side in brief (details: ``GET /api/update``)."""
        check = self.updates.last_check() or {}
        run = self.updates.keeper.run
        return {
            "available": bool(check.get("available")),
            "latest": (check.get("latest") or {}).get("version"),
            "run": {"id": run.id, "phase": run.phase.value} if run else None,
        }

    def _release_summary(self) -> dict[str, Any] | None:
        resolution = read_resolution(self.settings.paths)
        if resolution is None:
            return None
        return {
            "ref": resolution.ref,
            "version": resolution.version,
            "manifest_digest": resolution.manifest_digest,
            "repository": resolution.repository,
        }


def _owner_alive(state: BootstrapState) -> bool:
    return state.owner is not None and owner.is_alive(state.owner)
