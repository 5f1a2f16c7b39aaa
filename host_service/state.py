"""The bootstrap state machine: steps, records and pure transitions (no I/O here).

The persisted state is a cache of progress, not the truth: every step probes reality before
it acts, so resuming from any state (or from none) converges on the same end state.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from host_service.errors import InternalError

HISTORY_LIMIT = 50
DETAIL_LIMIT = 40
OUTPUT_LIMIT = 8000  # characters of output kept in a blocker (the tail)


class Step(enum.StrEnum):
    PREFLIGHT = "preflight"
    K3S = "k3s"
    STORAGE = "storage"
    FLUX = "flux"
    RELEASE = "release"
    VALUES = "values"
    APPLY = "apply"
    SOURCE = "source"
    RECONCILE = "reconcile"


STEPS: tuple[Step, ...] = tuple(Step)

TITLES: Mapping[Step, str] = {
    Step.PREFLIGHT: "Preflight checks",
    Step.K3S: "Install k3s",
    Step.STORAGE: "Verify storage",
    Step.FLUX: "Install Flux",
    Step.RELEASE: "Resolve release",
    Step.VALUES: "Render values",
    Step.APPLY: "Apply configuration",
    Step.SOURCE: "Point Flux at the release",
    Step.RECONCILE: "Wait for the release",
}


class StepStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    BLOCKED = "blocked"


class Phase(enum.StrEnum):
    AWAITING_SETUP = "awaiting-setup"
    RUNNING = "running"
    BLOCKED = "blocked"
    RECONCILED = "reconciled"


class TransitionError(InternalError):
    """A transition that the current state does not allow (a bug or a racing request)."""


@dataclass(frozen=True, kw_only=True)
class Blocker:
    """Why a step stopped, and what the operator should do about it."""

    step: Step
    message: str
    cause: str
    next_step: str
    output: str = ""
    at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step.value,
            "message": self.message,
            "cause": self.cause,
            "next_step": self.next_step,
            "output": self.output,
            "at": self.at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Blocker:
        return cls(
            step=Step(data["step"]),
            message=str(data["message"]),
            cause=str(data["cause"]),
            next_step=str(data["next_step"]),
            output=str(data.get("output", "")),
            at=float(data.get("at", 0.0)),
        )


@dataclass(frozen=True, kw_only=True)
class Owner:
    """The process running the bootstrap: a dead owner's run is never reported as running."""

    pid: int
    generation: int
    started_at: float  # the process's start time, so a reused pid is not mistaken for it
    boot_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "generation": self.generation,
            "started_at": self.started_at,
            "boot_id": self.boot_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Owner:
        return cls(
            pid=int(data["pid"]),
            generation=int(data["generation"]),
            started_at=float(data["started_at"]),
            boot_id=str(data["boot_id"]),
        )


@dataclass(frozen=True, kw_only=True)
class StepRecord:
    step: Step
    status: StepStatus = StepStatus.PENDING
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    message: str = ""
    # True when the probe found the work already done and nothing was changed.
    already_done: bool = False
    details: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step.value,
            "status": self.status.value,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "attempts": self.attempts,
            "message": self.message,
            "already_done": self.already_done,
            "details": list(self.details),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepRecord:
        return cls(
            step=Step(data["step"]),
            status=StepStatus(data["status"]),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            attempts=int(data.get("attempts", 0)),
            message=str(data.get("message", "")),
            already_done=bool(data.get("already_done", False)),
            details=tuple(str(d) for d in data.get("details", ())),
        )


@dataclass(frozen=True, kw_only=True)
class BootstrapState:
    phase: Phase = Phase.AWAITING_SETUP
    steps: tuple[StepRecord, ...] = field(
        default_factory=lambda: tuple(StepRecord(step=s) for s in STEPS)
    )
    blocker: Blocker | None = None
    run: int = 0
    generation: int = 0
    owner: Owner | None = None
    updated_at: float = 0.0
    history: tuple[str, ...] = ()

    def record(self, step: Step) -> StepRecord:
        return self.steps[STEPS.index(step)]

    @property
    def current(self) -> Step | None:
        """The step a run is at (running or blocked), else the next one to run."""
        for record in self.steps:
            if record.status is not StepStatus.DONE:
                return record.step
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "phase": self.phase.value,
            "steps": [r.to_json() for r in self.steps],
            "blocker": self.blocker.to_json() if self.blocker else None,
            "run": self.run,
            "generation": self.generation,
            "owner": self.owner.to_json() if self.owner else None,
            "updated_at": self.updated_at,
            "history": list(self.history),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BootstrapState:
        records = {Step(r["step"]): StepRecord.from_json(r) for r in data["steps"]}
        return cls(
            phase=Phase(data["phase"]),
            steps=tuple(records.get(s, StepRecord(step=s)) for s in STEPS),
            blocker=Blocker.from_json(data["blocker"]) if data.get("blocker") else None,
            run=int(data.get("run", 0)),
            generation=int(data.get("generation", 0)),
            owner=Owner.from_json(data["owner"]) if data.get("owner") else None,
            updated_at=float(data.get("updated_at", 0.0)),
            history=tuple(str(h) for h in data.get("history", ())),
        )


# --- transitions ------------------------------------------------------------------------


def contradictions(state: BootstrapState) -> list[str]:
    """What in ``state`` no sequence of transitions can produce (a hand-edited or damaged
    file that still fits the schema). Such a state can wedge the appliance: "running" with
    every step done runs nothing, and refuses both setup and Retry."""
    found = []
    statuses = [record.status for record in state.steps]
    if statuses.count(StepStatus.RUNNING) > 1:
        found.append("more than one step is running")
    if state.phase is Phase.RUNNING and state.current is None:
        found.append("the phase is running but every step is done")
    if state.phase is Phase.RECONCILED and state.current is not None:
        found.append(f"the phase is reconciled but step {state.current.value} is not done")
    if state.phase is Phase.BLOCKED:
        if state.blocker is None:
            found.append("the phase is blocked but there is no blocker")
        elif state.record(state.blocker.step).status is not StepStatus.BLOCKED:
            found.append(f"the blocker names step {state.blocker.step.value}, which is not blocked")
    elif state.blocker is not None:
        found.append(f"a blocker is kept while the phase is {state.phase.value}")
    return found


def _with_step(state: BootstrapState, record: StepRecord, now: float) -> BootstrapState:
    steps = tuple(record if r.step is record.step else r for r in state.steps)
    return replace(state, steps=steps, updated_at=now)


def _log(state: BootstrapState, now: float, text: str) -> tuple[str, ...]:
    return (*state.history, f"{now:.3f} {text}")[-HISTORY_LIMIT:]


def start_run(state: BootstrapState, now: float) -> BootstrapState:
    """A new run from the first step (after setup was submitted). Done steps re-probe."""
    if state.phase is Phase.RUNNING:
        raise TransitionError("a bootstrap run is already in progress")
    return replace(
        state,
        phase=Phase.RUNNING,
        steps=tuple(StepRecord(step=s) for s in STEPS),
        blocker=None,
        run=state.run + 1,
        updated_at=now,
        history=_log(state, now, f"run {state.run + 1} started"),
    )


def claim(
    state: BootstrapState, *, pid: int, started_at: float, boot_id: str, now: float
) -> BootstrapState:
    """Record this process as the one that drives the state from now on (a new generation).

    The worker writes only while the stored generation is its own, so a superseded owner
    can never overwrite a newer one's progress.
    """
    generation = state.generation + 1
    owner = Owner(pid=pid, generation=generation, started_at=started_at, boot_id=boot_id)
    return replace(state, owner=owner, generation=generation, updated_at=now)


def begin_step(state: BootstrapState, step: Step, now: float) -> BootstrapState:
    if state.phase is not Phase.RUNNING:
        raise TransitionError(f"cannot start {step.value}: phase is {state.phase.value}")
    if state.current is not step:
        current = state.current.value if state.current else "none"
        raise TransitionError(f"cannot start {step.value}: the next step is {current}")
    old = state.record(step)
    record = replace(
        old,
        status=StepStatus.RUNNING,
        started_at=now,
        finished_at=None,
        attempts=old.attempts + 1,
        message="starting",
        already_done=False,
        details=(),
    )
    return _with_step(state, record, now)


def report(
    state: BootstrapState, step: Step, message: str, now: float, *, detail: str | None = None
) -> BootstrapState:
    record = state.record(step)
    if record.status is not StepStatus.RUNNING:
        raise TransitionError(f"{step.value} is not running")
    details = record.details
    if detail is not None and detail not in details:
        details = (*details, detail)[-DETAIL_LIMIT:]
    return _with_step(state, replace(record, message=message, details=details), now)


def finish_step(
    state: BootstrapState, step: Step, now: float, *, already_done: bool
) -> BootstrapState:
    record = state.record(step)
    if record.status is not StepStatus.RUNNING:
        raise TransitionError(f"{step.value} is not running")
    message = "already done" if already_done else "done"
    record = replace(
        record,
        status=StepStatus.DONE,
        finished_at=now,
        message=message,
        already_done=already_done,
    )
    state = _with_step(state, record, now)
    if state.current is None:
        return replace(
            state, phase=Phase.RECONCILED, history=_log(state, now, f"run {state.run} reconciled")
        )
    return state


def block(state: BootstrapState, blocker: Blocker, now: float) -> BootstrapState:
    record = state.record(blocker.step)
    if record.status is not StepStatus.RUNNING:
        raise TransitionError(f"{blocker.step.value} is not running")
    blocker = replace(blocker, output=blocker.output[-OUTPUT_LIMIT:], at=now)
    record = replace(record, status=StepStatus.BLOCKED, finished_at=now, message=blocker.message)
    state = _with_step(state, record, now)
    return replace(
        state,
        phase=Phase.BLOCKED,
        blocker=blocker,
        history=_log(state, now, f"{blocker.step.value} blocked: {blocker.message}"),
    )


def retry(state: BootstrapState, now: float) -> BootstrapState:
    """Continue a blocked run from the blocked step (an explicit operator action)."""
    if state.phase is not Phase.BLOCKED or state.blocker is None:
        raise TransitionError("nothing to retry: the bootstrap is not blocked")
    step = state.blocker.step
    record = replace(state.record(step), status=StepStatus.PENDING, message="retry requested")
    state = _with_step(state, record, now)
    return replace(
        state,
        phase=Phase.RUNNING,
        blocker=None,
        history=_log(state, now, f"retry of {step.value}"),
    )


def interrupted(state: BootstrapState, now: float) -> BootstrapState:
    """The owner of a running step died (crash, SIGKILL, reboot): make the step re-runnable.

    Nothing is rolled back; the step probes reality when it runs again.
    """
    if state.phase is not Phase.RUNNING:
        return state
    steps = tuple(
        replace(r, status=StepStatus.PENDING, message="interrupted; resuming")
        if r.status is StepStatus.RUNNING
        else r
        for r in state.steps
    )
    step = state.current.value if state.current else "?"
    return replace(
        state,
        steps=steps,
        owner=None,
        updated_at=now,
        history=_log(state, now, f"run {state.run} interrupted at {step}; resuming"),
    )


def suspend(state: BootstrapState, step: Step, now: float) -> BootstrapState:
    """The service is stopping in the middle of ``step``: leave it to resume on the next start.

    The phase stays ``running`` and the owner is cleared, so the next start (whose owner
    check finds nobody driving the run) continues at this step, which probes first.
    """
    record = state.record(step)
    if state.phase is not Phase.RUNNING or record.status is not StepStatus.RUNNING:
        return state
    record = replace(
        record, status=StepStatus.PENDING, message="stopped with the service; resumes on start"
    )
    state = _with_step(state, record, now)
    return replace(
        state,
        owner=None,
        history=_log(state, now, f"run {state.run} stopped at {step.value}; resumes on start"),
    )


def abandon(state: BootstrapState, now: float, reason: str) -> BootstrapState:
    """Back to waiting for setup (the inputs a run needs are gone)."""
    steps = tuple(
        replace(r, status=StepStatus.PENDING) if r.status is StepStatus.RUNNING else r
        for r in state.steps
    )
    return replace(
        state,
        phase=Phase.AWAITING_SETUP,
        steps=steps,
        owner=None,
        updated_at=now,
        history=_log(state, now, f"run {state.run} abandoned: {reason}"),
    )


class Resume(enum.StrEnum):
    """What a starting service does with the state it finds on disk."""

    WAIT_FOR_SETUP = "wait-for-setup"
    CONTINUE = "continue"  # a run was in progress and its owner is gone
    STAY_BLOCKED = "stay-blocked"
    FINISHED = "finished"
    OWNED_ELSEWHERE = "owned-elsewhere"  # another live process drives it
    ABANDON = "abandon"  # a run was in progress but its setup inputs are gone


def resume_decision(state: BootstrapState, *, owner_alive: bool, has_intent: bool) -> Resume:
    if state.phase is Phase.RUNNING:
        if owner_alive:
            return Resume.OWNED_ELSEWHERE
        return Resume.CONTINUE if has_intent else Resume.ABANDON
    if state.phase is Phase.BLOCKED:
        return Resume.STAY_BLOCKED
    if state.phase is Phase.RECONCILED:
        return Resume.FINISHED
    return Resume.WAIT_FOR_SETUP
