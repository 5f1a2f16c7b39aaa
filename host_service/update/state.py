"""An update run: its steps, its target, pure transitions (no I/O), and its history entry.

Like the bootstrap, the persisted run is a cache of progress: every step probes reality
first, so a run resumed after a crash at any point ends where an uninterrupted one would.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from host_service.errors import InternalError

DETAIL_LIMIT = 40
OUTPUT_LIMIT = 8000


class UpdateStep(enum.StrEnum):
    RESOLVE = "resolve"
    VALIDATE = "validate"
    RENDER = "render"
    COMMIT = "commit"
    APPLY = "apply"
    SOURCE = "source"
    RECONCILE = "reconcile"


UPDATE_STEPS: tuple[UpdateStep, ...] = tuple(UpdateStep)

TITLES: Mapping[UpdateStep, str] = {
    UpdateStep.RESOLVE: "Fetch the release manifest",
    UpdateStep.VALIDATE: "Validate every digest",
    UpdateStep.RENDER: "Render values",
    UpdateStep.COMMIT: "Record the selection",
    UpdateStep.APPLY: "Patch values and selection",
    UpdateStep.SOURCE: "Move the Flux source",
    UpdateStep.RECONCILE: "Reconcile",
}


class RunPhase(enum.StrEnum):
    RUNNING = "running"
    BLOCKED = "blocked"
    SUCCEEDED = "succeeded"
    SUPERSEDED = "superseded"  # blocked, then the operator chose another release


class TransitionError(InternalError):
    """A transition the run's state does not allow (a bug or a racing request)."""


@dataclass(frozen=True, kw_only=True)
class Selection:
    """A release as the appliance names it: what was asked for and what it resolved to."""

    ref: str
    version: str
    manifest_digest: str
    config_digest: str

    def to_json(self) -> dict[str, str]:
        return {
            "ref": self.ref,
            "version": self.version,
            "manifest_digest": self.manifest_digest,
            "config_digest": self.config_digest,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Selection:
        return cls(
            ref=str(data["ref"]),
            version=str(data["version"]),
            manifest_digest=str(data["manifest_digest"]),
            config_digest=str(data["config_digest"]),
        )


@dataclass(frozen=True, kw_only=True)
class StepRecord:
    step: UpdateStep
    status: str = "pending"  # pending | running | done | blocked
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    message: str = ""
    already_done: bool = False
    details: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step.value,
            "status": self.status,
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
            step=UpdateStep(data["step"]),
            status=str(data["status"]),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            attempts=int(data.get("attempts", 0)),
            message=str(data.get("message", "")),
            already_done=bool(data.get("already_done", False)),
            details=tuple(str(d) for d in data.get("details", ())),
        )


@dataclass(frozen=True, kw_only=True)
class Blocker:
    """The bootstrap's blocker shape: what failed, likely cause, next step, evidence."""

    step: UpdateStep
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
            step=UpdateStep(data["step"]),
            message=str(data["message"]),
            cause=str(data["cause"]),
            next_step=str(data["next_step"]),
            output=str(data.get("output", "")),
            at=float(data.get("at", 0.0)),
        )


@dataclass(frozen=True, kw_only=True)
class UpdateRun:
    id: str
    kind: str  # update (follow the channel) | pin (a version or digest) | channel (switch)
    target: Selection
    previous: Selection
    requested_by: str
    requested_at: float
    force: bool = False
    phase: RunPhase = RunPhase.RUNNING
    steps: tuple[StepRecord, ...] = field(
        default_factory=lambda: tuple(StepRecord(step=s) for s in UPDATE_STEPS)
    )
    blocker: Blocker | None = None
    finished_at: float | None = None
    updated_at: float = 0.0
    changes: tuple[str, ...] = ()  # the values ConfigMaps the render found changed

    @property
    def token(self) -> str:
        """The value of this run's reconcile requests to Flux (the same on every resume)."""
        return f"update-{self.id}"

    @property
    def current(self) -> UpdateStep | None:
        for record in self.steps:
            if record.status != "done":
                return record.step
        return None

    def record(self, step: UpdateStep) -> StepRecord:
        return self.steps[UPDATE_STEPS.index(step)]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "id": self.id,
            "kind": self.kind,
            "target": self.target.to_json(),
            "previous": self.previous.to_json(),
            "requested_by": self.requested_by,
            "requested_at": self.requested_at,
            "force": self.force,
            "phase": self.phase.value,
            "steps": [r.to_json() for r in self.steps],
            "blocker": self.blocker.to_json() if self.blocker else None,
            "finished_at": self.finished_at,
            "updated_at": self.updated_at,
            "changes": list(self.changes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UpdateRun:
        records = {UpdateStep(r["step"]): StepRecord.from_json(r) for r in data["steps"]}
        return cls(
            id=str(data["id"]),
            kind=str(data["kind"]),
            target=Selection.from_json(data["target"]),
            previous=Selection.from_json(data["previous"]),
            requested_by=str(data["requested_by"]),
            requested_at=float(data["requested_at"]),
            force=bool(data.get("force", False)),
            phase=RunPhase(data["phase"]),
            steps=tuple(records.get(s, StepRecord(step=s)) for s in UPDATE_STEPS),
            blocker=Blocker.from_json(data["blocker"]) if data.get("blocker") else None,
            finished_at=data.get("finished_at"),
            updated_at=float(data.get("updated_at", 0.0)),
            changes=tuple(str(c) for c in data.get("changes", ())),
        )

    def history_entry(self) -> dict[str, Any]:
        """What the history keeps of this run (when, who, from -> to, digests, outcome)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at,
            "finished_at": self.finished_at,
            "from": self.previous.to_json(),
            "to": self.target.to_json(),
            "force": self.force,
            "outcome": self.phase.value,
            "blocked_at": self.blocker.step.value if self.blocker else None,
            "message": self.blocker.message if self.blocker else "",
        }


# --- transitions ------------------------------------------------------------------------


def _with(run: UpdateRun, record: StepRecord, now: float) -> UpdateRun:
    steps = tuple(record if r.step is record.step else r for r in run.steps)
    return replace(run, steps=steps, updated_at=now)


def begin(run: UpdateRun, step: UpdateStep, now: float) -> UpdateRun:
    if run.phase is not RunPhase.RUNNING or run.current is not step:
        raise TransitionError(f"cannot start {step.value} in run {run.id} ({run.phase.value})")
    old = run.record(step)
    record = replace(
        old,
        status="running",
        started_at=now,
        finished_at=None,
        attempts=old.attempts + 1,
        message="starting",
        already_done=False,
        details=(),
    )
    return _with(run, record, now)


def report(
    run: UpdateRun, step: UpdateStep, message: str, now: float, *, detail: str | None = None
) -> UpdateRun:
    record = run.record(step)
    if record.status != "running":
        raise TransitionError(f"{step.value} is not running")
    details = record.details
    if detail is not None and detail not in details:
        details = (*details, detail)[-DETAIL_LIMIT:]
    return _with(run, replace(record, message=message, details=details), now)


def finish(run: UpdateRun, step: UpdateStep, now: float, *, already_done: bool) -> UpdateRun:
    record = run.record(step)
    if record.status != "running":
        raise TransitionError(f"{step.value} is not running")
    record = replace(
        record,
        status="done",
        finished_at=now,
        message="already done" if already_done else "done",
        already_done=already_done,
    )
    run = _with(run, record, now)
    if run.current is None:
        return replace(run, phase=RunPhase.SUCCEEDED, finished_at=now)
    return run


def block(run: UpdateRun, blocker: Blocker, now: float) -> UpdateRun:
    record = run.record(blocker.step)
    if record.status != "running":
        raise TransitionError(f"{blocker.step.value} is not running")
    blocker = replace(blocker, output=blocker.output[-OUTPUT_LIMIT:], at=now)
    record = replace(record, status="blocked", finished_at=now, message=blocker.message)
    run = _with(run, record, now)
    return replace(run, phase=RunPhase.BLOCKED, blocker=blocker, finished_at=now)


def retry(run: UpdateRun, now: float) -> UpdateRun:
    if run.phase is not RunPhase.BLOCKED or run.blocker is None:
        raise TransitionError(f"nothing to retry: update {run.id} is {run.phase.value}")
    step = run.blocker.step
    record = replace(run.record(step), status="pending", message="retry requested")
    run = _with(run, record, now)
    return replace(run, phase=RunPhase.RUNNING, blocker=None, finished_at=None)


def interrupted(run: UpdateRun, now: float) -> UpdateRun:
    """The process died (or stopped) mid-step: the step runs again, probing first."""
    if run.phase is not RunPhase.RUNNING:
        return run
    steps = tuple(
        replace(r, status="pending", message="interrupted; resuming")
        if r.status == "running"
        else r
        for r in run.steps
    )
    return replace(run, steps=steps, updated_at=now)


def supersede(run: UpdateRun, now: float) -> UpdateRun:
    """A blocked run the operator replaced with another selection (it stays in the history)."""
    if run.phase is not RunPhase.BLOCKED:
        raise TransitionError(f"update {run.id} is {run.phase.value}, not blocked")
    return replace(run, phase=RunPhase.SUPERSEDED, updated_at=now)


def with_changes(run: UpdateRun, changes: tuple[str, ...], now: float) -> UpdateRun:
    return replace(run, changes=changes, updated_at=now)
