"""The bootstrap state machine: transitions, persistence, and resuming from every state."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from host_service import state as sm
from host_service.state import (
    STEPS,
    Blocker,
    BootstrapState,
    Owner,
    Phase,
    Resume,
    Step,
    StepRecord,
    StepStatus,
    TransitionError,
)
from host_service.store import StateKeeper, load_state, save_state


def blocker(step: Step, output: str = "tail") -> Blocker:
    return Blocker(step=step, message="m", cause="c", next_step="n", output=output)


def run_until(step: Step) -> BootstrapState:
    """A run whose steps before ``step`` are done and ``step`` is running."""
    state = sm.start_run(BootstrapState(), 1.0)
    for s in STEPS:
        state = sm.begin_step(state, s, 2.0)
        if s is step:
            return state
        state = sm.finish_step(state, s, 3.0, already_done=False)
    raise AssertionError(step)


def test_steps_are_the_documented_order() -> None:
    assert [s.value for s in STEPS] == [
        "preflight", "k3s", "storage", "flux", "release", "values", "apply", "source",
        "reconcile",
    ]  # fmt: skip


def test_a_run_walks_every_step_to_reconciled() -> None:
    state = sm.start_run(BootstrapState(), 10.0)
    assert state.phase is Phase.RUNNING
    assert state.run == 1
    for step in STEPS:
        assert state.current is step
        state = sm.begin_step(state, step, 11.0)
        state = sm.report(state, step, "working", 11.5, detail="did a thing")
        assert state.record(step).details == ("did a thing",)
        state = sm.finish_step(state, step, 12.0, already_done=step is Step.PREFLIGHT)
    assert state.phase is Phase.RECONCILED
    assert state.current is None
    assert state.record(Step.PREFLIGHT).already_done
    assert all(r.status is StepStatus.DONE and r.attempts == 1 for r in state.steps)


def test_steps_cannot_be_skipped_or_started_twice() -> None:
    state = sm.start_run(BootstrapState(), 1.0)
    with pytest.raises(TransitionError, match="the next step is preflight"):
        sm.begin_step(state, Step.K3S, 1.0)
    state = sm.begin_step(state, Step.PREFLIGHT, 1.0)
    with pytest.raises(TransitionError):
        sm.start_run(state, 1.0)
    with pytest.raises(TransitionError):
        sm.report(state, Step.K3S, "x", 1.0)
    with pytest.raises(TransitionError):
        sm.begin_step(BootstrapState(), Step.PREFLIGHT, 1.0)


def test_block_then_retry_continues_at_the_blocked_step() -> None:
    state = run_until(Step.STORAGE)
    state = sm.block(state, blocker(Step.STORAGE, "x" * 20000), 5.0)
    assert state.phase is Phase.BLOCKED
    assert state.blocker is not None
    assert len(state.blocker.output) == sm.OUTPUT_LIMIT
    assert state.record(Step.STORAGE).status is StepStatus.BLOCKED
    with pytest.raises(TransitionError):
        sm.begin_step(state, Step.STORAGE, 6.0)
    state = sm.retry(state, 6.0)
    assert state.phase is Phase.RUNNING
    assert state.blocker is None
    assert state.current is Step.STORAGE
    assert state.record(Step.K3S).status is StepStatus.DONE  # nothing rolled back
    state = sm.begin_step(state, Step.STORAGE, 7.0)
    assert state.record(Step.STORAGE).attempts == 2
    with pytest.raises(TransitionError, match="not blocked"):
        sm.retry(state, 8.0)


def test_a_new_run_re_probes_every_step() -> None:
    state = run_until(Step.APPLY)
    state = sm.block(state, blocker(Step.APPLY), 5.0)
    state = sm.start_run(state, 6.0)
    assert state.run == 2
    assert state.current is Step.PREFLIGHT
    assert all(r.status is StepStatus.PENDING for r in state.steps)


def test_interrupted_makes_the_running_step_pending_again() -> None:
    state = run_until(Step.FLUX)
    state = sm.claim(state, pid=99, started_at=1.0, boot_id="b", now=4.0)
    state = sm.interrupted(state, 5.0)
    assert state.phase is Phase.RUNNING
    assert state.owner is None
    assert state.record(Step.FLUX).status is StepStatus.PENDING
    assert state.current is Step.FLUX
    assert "interrupted at flux" in state.history[-1]


def test_claim_counts_generations() -> None:
    state = sm.claim(BootstrapState(), pid=1, started_at=1.0, boot_id="b", now=1.0)
    state = sm.claim(state, pid=2, started_at=2.0, boot_id="b", now=2.0)
    assert state.generation == 2
    assert state.owner is not None
    assert state.owner.generation == 2


def persisted_states() -> list[tuple[str, BootstrapState]]:
    """Every state a crash can leave on disk: each step running or blocked, and the rest."""
    cases: list[tuple[str, BootstrapState]] = [
        ("fresh", BootstrapState()),
        ("started", sm.start_run(BootstrapState(), 1.0)),
    ]
    for step in STEPS:
        running = run_until(step)
        cases.append((f"{step.value}-running", running))
        cases.append((f"{step.value}-reported", sm.report(running, step, "half", 2.5)))
        cases.append((f"{step.value}-blocked", sm.block(running, blocker(step), 3.0)))
        if step is not STEPS[-1]:
            cases.append(
                (f"{step.value}-done", sm.finish_step(running, step, 3.0, already_done=False))
            )
    done = run_until(Step.RECONCILE)
    cases.append(("reconciled", sm.finish_step(done, Step.RECONCILE, 4.0, already_done=False)))
    return cases


@pytest.mark.parametrize(
    ("name", "saved"), persisted_states(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_resume_from_every_persisted_state(
    name: str, saved: BootstrapState, tmp_path: Path
) -> None:
    path = tmp_path / "state.json"
    save_state(path, sm.claim(saved, pid=1, started_at=1.0, boot_id="dead", now=3.0))
    loaded = load_state(path)
    assert_same_fields(loaded, sm.claim(saved, pid=1, started_at=1.0, boot_id="dead", now=3.0))

    decision = sm.resume_decision(loaded, owner_alive=False, has_intent=True)
    expected = {
        Phase.AWAITING_SETUP: Resume.WAIT_FOR_SETUP,
        Phase.RUNNING: Resume.CONTINUE,
        Phase.BLOCKED: Resume.STAY_BLOCKED,
        Phase.RECONCILED: Resume.FINISHED,
    }[saved.phase]
    assert decision is expected
    if decision is Resume.CONTINUE:
        resumed = sm.interrupted(loaded, 5.0)
        # The step that was running (or next) runs again; everything done stays done.
        assert resumed.current is saved.current
        assert all(r.status is not StepStatus.RUNNING for r in resumed.steps)
        done = [r.step for r in saved.steps if r.status is StepStatus.DONE]
        assert [r.step for r in resumed.steps if r.status is StepStatus.DONE] == done
        assert sm.begin_step(resumed, resumed.current, 6.0).phase is Phase.RUNNING  # type: ignore[arg-type]
    if saved.phase is Phase.RUNNING:
        assert sm.resume_decision(loaded, owner_alive=True, has_intent=True) is (
            Resume.OWNED_ELSEWHERE
        )
        assert sm.resume_decision(loaded, owner_alive=False, has_intent=False) is Resume.ABANDON
        abandoned = sm.abandon(loaded, 5.0, "inputs gone")
        assert abandoned.phase is Phase.AWAITING_SETUP


def assert_same_fields(actual: Any, expected: Any, where: str = "state") -> None:
    """Field by field (not through ``to_json``, which a lost field would leave equal on both
    sides), naming the first field that differs."""
    if dataclasses.is_dataclass(expected) and not isinstance(expected, type):
        assert type(actual) is type(expected), f"{where}: {type(actual).__name__}"
        for f in dataclasses.fields(expected):
            assert_same_fields(
                getattr(actual, f.name), getattr(expected, f.name), f"{where}.{f.name}"
            )
    elif isinstance(expected, tuple):
        assert isinstance(actual, tuple), f"{where}: {actual!r}"
        assert len(actual) == len(expected), f"{where}: {len(actual)} items, not {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_same_fields(a, e, f"{where}[{i}]")
    else:
        assert actual == expected, f"{where}: {actual!r}, expected {expected!r}"
        assert type(actual) is type(expected), f"{where}: {type(actual).__name__}"


def _defaults(cls: Any) -> dict[str, Any]:
    found = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            found[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            found[f.name] = f.default_factory()
    return found


# Every field of every record holds a value other than its default, so a field the file
# loses (or never writes) comes back different.
BLOCKER = Blocker(
    step=Step.VALUES, message="values not written", cause="disk full",
    next_step="free space, then retry", output="ENOSPC writing values.yaml", at=12.5,
)  # fmt: skip
OWNER = Owner(pid=4242, generation=3, started_at=11.25, boot_id="boot-7")
VALUES_RECORD = StepRecord(
    step=Step.VALUES, status=StepStatus.BLOCKED, started_at=10.0, finished_at=12.5,
    attempts=2, message="values not written", already_done=True,
    details=("rendered 3 services", "secret kept"),
)  # fmt: skip
FULL = BootstrapState(
    phase=Phase.BLOCKED,
    steps=tuple(
        VALUES_RECORD if s is Step.VALUES else StepRecord(step=s, status=StepStatus.DONE)
        for s in STEPS
    ),
    blocker=BLOCKER,
    run=2,
    generation=3,
    owner=OWNER,
    updated_at=12.5,
    history=("1.000 run 1 started", "12.500 values blocked: values not written"),
)


def test_the_round_trip_keeps_every_field(tmp_path: Path) -> None:
    for record in (BLOCKER, OWNER, VALUES_RECORD, FULL):
        same = [n for n, d in _defaults(type(record)).items() if getattr(record, n) == d]
        assert same == [], f"{type(record).__name__}: give {same} a non-default value here"
    path = tmp_path / "state.json"
    save_state(path, FULL)
    loaded = load_state(path)
    assert_same_fields(loaded, FULL)
    assert loaded.blocker == Blocker(
        step=Step.VALUES, message="values not written", cause="disk full",
        next_step="free space, then retry", output="ENOSPC writing values.yaml", at=12.5,
    )  # fmt: skip
    assert loaded.owner == Owner(pid=4242, generation=3, started_at=11.25, boot_id="boot-7")
    values = loaded.record(Step.VALUES)
    assert (values.status, values.started_at, values.finished_at, values.attempts) == (
        StepStatus.BLOCKED, 10.0, 12.5, 2,
    )  # fmt: skip
    assert (values.message, values.already_done, values.details) == (
        "values not written", True, ("rendered 3 services", "secret kept"),
    )  # fmt: skip
    assert (loaded.phase, loaded.run, loaded.generation, loaded.updated_at) == (
        Phase.BLOCKED, 2, 3, 12.5,
    )  # fmt: skip
    assert loaded.history == ("1.000 run 1 started", "12.500 values blocked: values not written")


def test_corrupt_state_is_moved_aside_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"version": 1, "phase": "running", "steps": [{"step": "nope"}]}')
    assert load_state(path) == BootstrapState()
    aside = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(aside) == 1
    assert not path.exists()
    path.write_text("{not json")
    assert load_state(path) == BootstrapState()


def test_state_file_is_private_and_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    keeper = StateKeeper(path, BootstrapState())
    keeper.update(lambda s: sm.start_run(s, 1.0))
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["phase"] == "running"
    assert not list(tmp_path.glob(".state.json.*"))  # no temp files left behind


def test_keeper_versions_and_waiters(tmp_path: Path) -> None:
    keeper = StateKeeper(tmp_path / "s.json", BootstrapState())
    version, _ = keeper.snapshot()
    keeper.update(lambda s: s)  # no change: no write, same version
    assert keeper.version == version
    assert not (tmp_path / "s.json").exists()
    keeper.update(lambda s: sm.start_run(s, 1.0))
    new_version, state = keeper.wait_for_change(version, timeout=0.0)
    assert new_version == version + 1
    assert state.phase is Phase.RUNNING


def test_a_failed_transition_changes_nothing(tmp_path: Path) -> None:
    keeper = StateKeeper(tmp_path / "s.json", BootstrapState())
    with pytest.raises(TransitionError):
        keeper.update(lambda s: sm.retry(s, 1.0))
    assert keeper.state == BootstrapState()
    assert keeper.version == 0


def test_a_blocker_without_output_or_time_reads_with_empty_output_at_zero() -> None:
    data = {"step": "apply", "message": "m", "cause": "c", "next_step": "n"}
    blocker = sm.Blocker.from_json(data)
    assert (blocker.output, blocker.at) == ("", 0.0)
    assert isinstance(blocker.at, float)


def test_abandon_returns_a_run_to_waiting_for_setup_and_logs_why() -> None:
    state = sm.start_run(sm.BootstrapState(), 1.0)
    state = sm.claim(state, pid=42, started_at=0.5, boot_id="b", now=1.5)
    first = state.steps[0].step
    state = sm.finish_step(sm.begin_step(state, first, 2.0), first, 3.0, already_done=False)
    second = state.steps[1].step
    state = sm.begin_step(state, second, 4.0)
    abandoned = sm.abandon(state, 5.0, "inputs gone")
    assert abandoned.phase is Phase.AWAITING_SETUP
    assert abandoned.owner is None
    assert abandoned.updated_at == 5.0
    assert [r.status for r in abandoned.steps[:3]] == [
        StepStatus.DONE, StepStatus.PENDING, StepStatus.PENDING]  # fmt: skip
    assert abandoned.steps[0] == state.steps[0]
    assert abandoned.history[-1] == f"5.000 run {state.run} abandoned: inputs gone"
    assert abandoned.history[:-1] == state.history


def blocked_at_second_step() -> sm.BootstrapState:
    state = sm.start_run(sm.BootstrapState(), 1.0)
    first = state.steps[0].step
    state = sm.finish_step(sm.begin_step(state, first, 2.0), first, 3.0, already_done=False)
    second = state.steps[1].step
    state = sm.begin_step(state, second, 4.0)
    blocker = sm.Blocker(step=second, message="m", cause="c", next_step="n")
    return sm.block(state, blocker, 5.0)


def test_retry_puts_the_blocked_step_back_and_logs_it() -> None:
    blocked = blocked_at_second_step()
    step = blocked.steps[1].step
    again = sm.retry(blocked, 6.0)
    record = again.record(step)
    assert (record.status, record.message) == (StepStatus.PENDING, "retry requested")
    assert (again.phase, again.blocker, again.updated_at) == (Phase.RUNNING, None, 6.0)
    assert again.history[-1] == f"6.000 retry of {step.value}"
    assert again.history[:-1] == blocked.history


def test_retry_needs_a_blocked_run_with_its_blocker() -> None:
    with pytest.raises(
        sm.TransitionError, match=r"^nothing to retry: the bootstrap is not blocked$"
    ):
        sm.retry(sm.start_run(sm.BootstrapState(), 1.0), 2.0)
    without = dataclasses.replace(blocked_at_second_step(), blocker=None)
    with pytest.raises(sm.TransitionError, match=r"^nothing to retry"):
        sm.retry(without, 2.0)


def test_suspend_leaves_the_step_to_resume_on_the_next_start() -> None:
    state = sm.start_run(sm.BootstrapState(), 1.0)
    state = sm.claim(state, pid=42, started_at=0.5, boot_id="b", now=1.5)
    step = state.steps[0].step
    state = sm.begin_step(state, step, 2.0)
    stopped = sm.suspend(state, step, 3.0)
    record = stopped.record(step)
    assert (record.status, record.message) == (
        StepStatus.PENDING, "stopped with the service; resumes on start")  # fmt: skip
    assert (stopped.phase, stopped.owner, stopped.updated_at) == (Phase.RUNNING, None, 3.0)
    assert stopped.history[-1] == f"3.000 run {state.run} stopped at {step.value}; resumes on start"
    assert sm.suspend(stopped, step, 4.0) is stopped  # not running: nothing to do


def test_interrupted_makes_the_running_step_runnable_and_logs_where() -> None:
    state = sm.start_run(sm.BootstrapState(), 1.0)
    state = sm.claim(state, pid=42, started_at=0.5, boot_id="b", now=1.5)
    step = state.steps[0].step
    state = sm.begin_step(state, step, 2.0)
    resumed = sm.interrupted(state, 3.0)
    record = resumed.record(step)
    assert (record.status, record.message) == (StepStatus.PENDING, "interrupted; resuming")
    assert (resumed.owner, resumed.updated_at) == (None, 3.0)
    assert resumed.history[-1] == f"3.000 run {state.run} interrupted at {step.value}; resuming"
    # A state file claiming a run with every step done names no step.
    done = tuple(dataclasses.replace(r, status=StepStatus.DONE) for r in state.steps)
    odd = dataclasses.replace(state, steps=done)
    assert (
        sm.interrupted(odd, 4.0).history[-1] == f"4.000 run {state.run} interrupted at ?; resuming"
    )


def test_block_records_the_blocker_on_its_step_and_in_the_history() -> None:
    blocked = blocked_at_second_step()
    step = blocked.steps[1].step
    record = blocked.record(step)
    assert (record.status, record.finished_at, record.message) == (StepStatus.BLOCKED, 5.0, "m")
    assert blocked.blocker is not None
    assert blocked.blocker.at == 5.0
    assert blocked.history[-1] == f"5.000 {step.value} blocked: m"
    with pytest.raises(sm.TransitionError, match=rf"^{step.value} is not running$"):
        sm.block(blocked, blocked.blocker, 6.0)


def test_an_older_state_file_reads_with_every_default() -> None:
    loaded = sm.BootstrapState.from_json(
        {"phase": "awaiting-setup", "steps": [{"step": "k3s", "status": "done"}]}
    )
    assert loaded == dataclasses.replace(
        sm.BootstrapState(),
        steps=tuple(
            sm.StepRecord(step=s, status=StepStatus.DONE if s is Step.K3S else StepStatus.PENDING)
            for s in STEPS
        ),
    )
    record = loaded.record(Step.K3S)
    assert (record.attempts, record.message, record.already_done, record.details) == (
        0, "", False, ())  # fmt: skip
    assert (loaded.run, loaded.generation, loaded.updated_at, loaded.history) == (0, 0, 0.0, ())
    assert isinstance(loaded.updated_at, float)


def test_finish_step_says_done_or_already_done_and_a_last_step_reconciles() -> None:
    state = sm.start_run(sm.BootstrapState(), 1.0)
    first = state.steps[0].step
    with pytest.raises(sm.TransitionError, match=rf"^{first.value} is not running$"):
        sm.finish_step(state, first, 2.0, already_done=False)
    with pytest.raises(sm.TransitionError, match=rf"^{first.value} is not running$"):
        sm.report(state, first, "m", 2.0)
    state = sm.finish_step(sm.begin_step(state, first, 2.0), first, 3.0, already_done=True)
    record = state.record(first)
    assert (record.status, record.finished_at, record.message) == (
        StepStatus.DONE, 3.0, "already done")  # fmt: skip
    for n, step in enumerate(STEPS[1:], 4):
        state = sm.finish_step(sm.begin_step(state, step, n), step, n + 0.5, already_done=False)
    assert state.record(STEPS[-1]).message == "done"
    assert state.phase is Phase.RECONCILED
    assert state.history[-1] == f"{len(STEPS) + 2.5:.3f} run {state.run} reconciled"


def test_start_run_begin_step_claim_and_report_record_what_they_did() -> None:
    blocked = blocked_at_second_step()
    again = sm.start_run(blocked, 10.0)
    assert (again.phase, again.blocker, again.run, again.updated_at) == (
        Phase.RUNNING, None, blocked.run + 1, 10.0)  # fmt: skip
    assert all(r == StepRecord(step=r.step) for r in again.steps)
    assert again.history[-1] == f"10.000 run {blocked.run + 1} started"
    with pytest.raises(sm.TransitionError, match=r"^a bootstrap run is already in progress$"):
        sm.start_run(again, 11.0)
    owned = sm.claim(again, pid=7, started_at=9.0, boot_id="b", now=11.0)
    assert (owned.generation, owned.updated_at) == (again.generation + 1, 11.0)
    first = again.steps[0].step
    # A step begun again after it was reported on starts clean.
    begun = sm.report(sm.begin_step(owned, first, 12.0), first, "half", 12.5, detail="d")
    assert begun.updated_at == 12.5
    assert begun.record(first).message == "half"
    begun = sm.begin_step(sm.interrupted(begun, 13.0), first, 14.0)
    record = begun.record(first)
    assert (record.status, record.started_at, record.finished_at, record.attempts) == (
        StepStatus.RUNNING, 14.0, None, 2)  # fmt: skip
    assert (record.message, record.already_done, record.details) == ("starting", False, ())
    assert begun.updated_at == 14.0


def test_begin_step_refuses_a_step_out_of_turn_or_out_of_a_run() -> None:
    idle = sm.BootstrapState()
    with pytest.raises(sm.TransitionError, match=r"^cannot start k3s: phase is awaiting-setup$"):
        sm.begin_step(idle, Step.K3S, 1.0)
    running = sm.start_run(idle, 1.0)
    with pytest.raises(sm.TransitionError, match=r"^cannot start k3s: the next step is preflight$"):
        sm.begin_step(running, Step.K3S, 2.0)
    done = tuple(dataclasses.replace(r, status=StepStatus.DONE) for r in running.steps)
    with pytest.raises(sm.TransitionError, match=r"^cannot start k3s: the next step is none$"):
        sm.begin_step(dataclasses.replace(running, steps=done), Step.K3S, 2.0)


def test_a_step_done_earlier_is_begun_afresh() -> None:
    state = sm.start_run(sm.BootstrapState(), 1.0)
    first = state.steps[0].step
    state = sm.finish_step(sm.begin_step(state, first, 2.0), first, 3.0, already_done=True)
    redo = dataclasses.replace(state.record(first), status=StepStatus.PENDING)
    state = dataclasses.replace(state, steps=(redo, *state.steps[1:]))
    assert sm.begin_step(state, first, 4.0).record(first).already_done is False


def test_a_blocked_step_begun_again_has_no_finish_time() -> None:
    blocked = blocked_at_second_step()
    step = blocked.steps[1].step
    assert blocked.record(step).finished_at == 5.0
    again = sm.begin_step(sm.retry(blocked, 6.0), step, 7.0)
    assert again.record(step).finished_at is None


def _all(status: StepStatus) -> tuple[StepRecord, ...]:
    return tuple(StepRecord(step=s, status=status) for s in STEPS)


@pytest.mark.parametrize(
    ("state", "why"),
    [
        (replace(FULL, phase=Phase.RUNNING, blocker=None, steps=_all(StepStatus.DONE)),
         "the phase is running but every step is done"),
        (replace(FULL, phase=Phase.RECONCILED, blocker=None),
         "the phase is reconciled but step values is not done"),
        (replace(FULL, blocker=None), "the phase is blocked but there is no blocker"),
        (replace(FULL, blocker=replace(BLOCKER, step=Step.K3S)),
         "the blocker names step k3s, which is not blocked"),
        (replace(FULL, phase=Phase.AWAITING_SETUP),
         "a blocker is kept while the phase is awaiting-setup"),
        (replace(FULL, phase=Phase.RUNNING, blocker=None,
                 steps=(*_all(StepStatus.RUNNING)[:2], *_all(StepStatus.PENDING)[2:])),
         "more than one step is running"),
    ],
    ids=["running-all-done", "reconciled-not-done", "blocked-no-blocker", "blocker-elsewhere",
         "stray-blocker", "two-running"],
)  # fmt: skip
def test_a_state_no_transition_makes_is_moved_aside(
    tmp_path: Path, state: BootstrapState, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    # It fits the schema, so it was loaded: "running" with every step done ran nothing and
    # refused both setup and Retry, for good.
    assert why in sm.contradictions(state)
    path = tmp_path / "state.json"
    save_state(path, state)
    assert load_state(path) == BootstrapState()
    assert len(list(tmp_path.glob("state.json.corrupt-*"))) == 1
    assert why in caplog.text


def test_every_state_the_transitions_make_is_free_of_contradictions() -> None:
    for name, state in persisted_states():
        assert sm.contradictions(state) == [], name
    assert sm.contradictions(FULL) == []
    assert sm.contradictions(BootstrapState()) == []
