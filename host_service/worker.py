"""The one worker thread that drives the bootstrap, step by step, outside the request path."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping
from urllib.parse import unquote, urlsplit

from host_service import command
from host_service import state as sm
from host_service.command import CommandFailed
from host_service.intent import IntentStore, SetupIntent
from host_service.runtime import Runtime
from host_service.settings import Settings
from host_service.state import Phase, Step
from host_service.steps import IMPLEMENTATIONS, StepImplementation
from host_service.steps.blockers import to_blocker
from host_service.steps.context import Cancelled, StepContext
from host_service.store import StateKeeper, StateWriteFailed

log = logging.getLogger(__name__)

# A stop SIGTERMs the program a step runs, then SIGKILLs it after this many seconds.
CHILD_GRACE = 3.0
# A program killed by SIGTERM/SIGINT before this process saw its own stop signal (a signal
# to the whole process group): how long to wait for the stop before calling it a failure.
SIGNAL_GRACE = 2.0
# A failed state write is retried after 0.25 s, doubling up to this many seconds.
WRITE_RETRY_MAX = 10.0


class Superseded(Exception):
    """Another owner (a newer generation) took over the state; this worker must stop."""


def redactor(intent: SetupIntent) -> Callable[[str], str]:
    """Remove the operator's secrets (the proxy URL with its password) from any text."""
    secrets: list[str] = []
    if intent.proxy:
        secrets.append(intent.proxy)
        parts = urlsplit(intent.proxy)
        if parts.password:
            secrets += [parts.password, unquote(parts.password)]
    secrets = sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True)

    def redact(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "<redacted>")
        return text

    return redact


class Worker:
    def __init__(
        self,
        *,
        settings: Settings,
        runtime: Runtime,
        keeper: StateKeeper,
        intents: IntentStore,
        clock: Callable[[], float],
        implementations: Mapping[Step, StepImplementation] | None = None,
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.keeper = keeper
        self.intents = intents
        self.clock = clock
        self.implementations = dict(implementations or IMPLEMENTATIONS)
        self.generation = 0
        self.stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = threading.Event()
        self.children = command.Children()  # the programs the running step has started

    # -- control (from the service / request threads) ---------------------------------

    def start(self, generation: int) -> None:
        self.generation = generation
        self._thread = threading.Thread(target=self._loop, name="bootstrap-worker", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """Look at the state again (a run was started or retried)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the run where it is: it resumes at its step on the next start.

        The program the step runs (kubectl, systemctl, ...) is ended too, SIGTERM then
        SIGKILL after ``CHILD_GRACE``, so none outlives the service or races its successor.
        """
        self.stopping.set()
        self._wake.set()
        ended = self.children.stop(CHILD_GRACE)
        if ended:
            log.info("stopping: ended %d running program(s) of the current step", ended)
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    # -- the loop ----------------------------------------------------------------------

    def _loop(self) -> None:
        with command.tracking(self.children):
            while not self.stopping.is_set():
                self._wake.wait()
                self._wake.clear()
                if self.stopping.is_set():
                    return
                try:
                    self._busy.set()
                    self._drive()
                except Superseded:
                    log.warning("a newer owner took over the bootstrap; this worker stops")
                    return
                except Cancelled:
                    return
                except Exception:  # the worker must outlive any bug in one run
                    log.exception("bootstrap worker failed")
                finally:
                    self._busy.clear()

    def _update(self, transition: Callable[[sm.BootstrapState], sm.BootstrapState]) -> None:
        """Apply and persist ``transition``; a failed write is retried until it succeeds.

        A full or read-only disk must neither lose the run nor leave it looking "running"
        with nobody driving it: the worker waits here (0.25 s, doubling up to
        ``WRITE_RETRY_MAX``) and the status shows why, until the write succeeds. A stop
        while waiting raises ``Cancelled``; the state on disk then still resumes.
        """

        def guarded(current: sm.BootstrapState) -> sm.BootstrapState:
            if current.generation != self.generation:
                raise Superseded()
            return transition(current)

        delay = 0.25
        failures = 0
        while True:
            try:
                self.keeper.update(guarded)
            except StateWriteFailed as exc:
                failures += 1
                log.error("%s; the bootstrap waits and retries in %g s", exc, delay)
                if self.stopping.wait(delay):
                    raise Cancelled() from exc
                delay = min(delay * 2, WRITE_RETRY_MAX)
                continue
            if failures:
                log.info("the bootstrap state was written after %d failed attempts", failures)
            return

    def _drive(self) -> None:
        while not self.stopping.is_set():
            current = self.keeper.state
            if current.phase is not Phase.RUNNING:
                return
            step = current.current
            if step is None:  # all done; finish_step already moved the phase
                return
            intent = self.intents.load()  # damaged ones are set aside: None
            if intent is None:
                self._update(lambda s: sm.abandon(s, self.clock(), "setup inputs missing"))
                return
            self._run_step(step, intent)

    def _run_step(self, step: Step, intent: SetupIntent) -> None:
        redact = redactor(intent)
        self._update(lambda s: sm.begin_step(s, step, self.clock()))
        log.info("step %s: started", step.value)

        def reporter(message: str, detail: str | None) -> None:
            self._update(
                lambda s: sm.report(
                    s,
                    step,
                    redact(message),
                    self.clock(),
                    detail=redact(detail) if detail else None,
                )
            )

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
        implementation = self.implementations[step]
        try:
            ctx.report("checking whether this is already done")
            if implementation.probe(ctx):
                self._update(lambda s: sm.finish_step(s, step, self.clock(), already_done=True))
                log.info("step %s: already done", step.value)
                return
            implementation.run(ctx)
        except Cancelled:
            self._suspend(step)
            return
        except Exception as exc:
            if self._stopped_during(exc):
                self._suspend(step)
                return
            blocker = to_blocker(step, exc, redact, state_dir=self.settings.paths.state)
        else:
            self._update(lambda s: sm.finish_step(s, step, self.clock(), already_done=False))
            log.info("step %s: done", step.value)
            return
        self._update(lambda s: sm.block(s, blocker, self.clock()))
        log.warning("step %s blocked: %s", step.value, blocker.message)

    def _stopped_during(self, exc: BaseException) -> bool:
        """Whether a step's failure is the service stopping (a cancellation, not a blocker).

        A stop ends the step's program, so the step fails while ``stopping`` is set. A signal
        to the whole process group (a terminal's Ctrl-C, ``systemctl kill``, a unit without
        ``KillMode=mixed``) can kill the program before this process handles its own
        signal: a program that died of SIGTERM/SIGINT gets ``SIGNAL_GRACE`` seconds for the
        stop to show up.
        """
        if self.stopping.is_set():
            return True
        return _killed_by_stop_signal(exc) and self.stopping.wait(SIGNAL_GRACE)

    def _suspend(self, step: Step) -> None:
        log.info("step %s: stopped with the service; it resumes on the next start", step.value)
        try:
            self._update(lambda s: sm.suspend(s, step, self.clock()))
        except Cancelled:
            # Not written (a full disk): the state on disk says "running", which resumes too.
            log.warning("the stop of step %s was not recorded; it resumes anyway", step.value)


def _killed_by_stop_signal(exc: BaseException) -> bool:
    """A program killed by SIGTERM or SIGINT anywhere in the exception's chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, CommandFailed) and current.returncode in (
            -signal.SIGTERM,
            -signal.SIGINT,
        ):
            return True
        current = current.__cause__ or current.__context__
    return False
