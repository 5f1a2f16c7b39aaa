"""The thread that drives an update run, step by step, outside the request path.

The same discipline as the bootstrap's worker: begin (persisted), probe, run, finish or
block (persisted); a stop ends the step's program and leaves the step to resume; a failure
is a blocker and stays one until the operator retries or selects another release. There is
no automatic rollback, ever.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Mapping

from host_service import command
from host_service.command import CommandError
from host_service.errors import ServiceError
from host_service.intent import IntentStore
from host_service.runtime import Runtime
from host_service.settings import Settings
from host_service.steps.context import Cancelled, StepContext, StepFailed
from host_service.update import state as us
from host_service.update.state import Blocker, RunPhase, UpdateStep
from host_service.update.steps import (
    IMPLEMENTATIONS,
    UpdateContext,
    UpdateImplementation,
    target_intent,
)
from host_service.update.store import CandidateCache, UpdateKeeper
from host_service.worker import CHILD_GRACE, redactor

log = logging.getLogger(__name__)


class UpdateRunner:
    def __init__(
        self,
        *,
        settings: Settings,
        runtime: Runtime,
        keeper: UpdateKeeper,
        intents: IntentStore,
        cache: CandidateCache,
        clock: Callable[[], float],
        implementations: Mapping[UpdateStep, UpdateImplementation] | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.keeper = keeper
        self.intents = intents
        self.cache = cache
        self.clock = clock
        self.implementations = dict(implementations or IMPLEMENTATIONS)
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.children = command.Children()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="update-runner", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self._wake.set()
        ended = self.children.stop(CHILD_GRACE)
        if ended:
            log.info("stopping: ended %d running program(s) of the update step", ended)
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        with command.tracking(self.children):
            while not self.stopping.is_set():
                self._wake.wait()
                self._wake.clear()
                if self.stopping.is_set():
                    return
                try:
                    self._drive()
                except Cancelled:
                    return
                except Exception:  # the runner must outlive any bug in one run
                    log.exception("update runner failed")

    def _drive(self) -> None:
        while not self.stopping.is_set():
            run = self.keeper.run
            if run is None or run.phase is not RunPhase.RUNNING or run.current is None:
                return
            self._run_step(run.current)

    def _context(self, step: UpdateStep, run: us.UpdateRun) -> UpdateContext:
        intent = self.intents.load()
        if intent is None:
            raise StepFailed(
                "the setup inputs are gone",
                cause="setup-inputs.json was deleted (reset-data?)",
                next_step="submit setup again; this update cannot continue",
            )
        intent = target_intent(intent, run)
        redact = redactor(intent)

        def reporter(message: str, detail: str | None) -> None:
            text, extra = redact(message), redact(detail) if detail else None
            self.keeper.update(lambda r: us.report(r, step, text, self.clock(), detail=extra))

        ctx = StepContext(
            settings=self.settings,
            intent=intent,
            kube=self.runtime.kube,
            systemd=self.runtime.systemd,
            k3s=self.runtime.k3s,
            host=self.runtime.host,
            registry=self.runtime.registry(self.settings, intent),
            reporter=reporter,
            stopping=self.stopping,
        )

        def set_changes(changes: tuple[str, ...]) -> None:
            self.keeper.update(lambda r: us.with_changes(r, changes, self.clock()))

        return UpdateContext(ctx, run, self.cache, self.intents, set_changes)

    def _run_step(self, step: UpdateStep) -> None:
        run = self.keeper.update(lambda r: us.begin(r, step, self.clock()))
        log.info("update %s: step %s started", run.id, step.value)
        try:
            intent = self.intents.load()
        except ServiceError:  # unreadable inputs: the step's context fails on them, a blocker
            intent = None
        # Only the proxy is redacted, and the run's release choice does not change it.
        redact = redactor(intent) if intent else (lambda text: text)
        implementation = self.implementations[step]
        try:
            u = self._context(step, run)
            u.ctx.report("checking whether this is already done")
            if implementation.probe(u):
                self.keeper.update(lambda r: us.finish(r, step, self.clock(), already_done=True))
                return
            implementation.run(u)
        except Cancelled:
            self._suspend(step)
            return
        except Exception as exc:
            if self.stopping.is_set():
                self._suspend(step)
                return
            blocker = _blocker(step, exc, redact)
        else:
            done = self.keeper.update(
                lambda r: us.finish(r, step, self.clock(), already_done=False)
            )
            log.info("update %s: step %s done (%s)", done.id, step.value, done.phase.value)
            return
        self.keeper.update(lambda r: us.block(r, blocker, self.clock()))
        log.warning("update %s blocked at %s: %s", run.id, step.value, blocker.message)

    def _suspend(self, step: UpdateStep) -> None:
        log.info("update step %s: stopped with the service; it resumes on the next start", step)
        self.keeper.update(lambda r: us.interrupted(r, self.clock()))


def _blocker(step: UpdateStep, exc: Exception, redact: Callable[[str], str]) -> Blocker:
    bundle = "download a support bundle (button below) for support"
    if isinstance(exc, StepFailed):
        return Blocker(
            step=step,
            message=redact(exc.message),
            cause=redact(exc.cause),
            next_step=redact(exc.next_step) + f"; {bundle}",
            output=redact(exc.output),
        )
    if isinstance(exc, CommandError | ServiceError):
        return Blocker(
            step=step,
            message=redact(f"{step.value} failed: {exc}"),
            cause="an unexpected error from a tool or the registry",
            next_step=f"read the output, then retry; if it persists, {bundle}",
            output=redact(exc.output if isinstance(exc, CommandError) else ""),
        )
    log.exception("update step %s crashed", step.value)
    return Blocker(
        step=step,
        message=redact(f"{step.value} failed with an internal error: {exc!r}"),
        cause="a bug in the host service",
        next_step=f"retry; if it persists, {bundle} and report it",
        output=redact(traceback.format_exc()),
    )
