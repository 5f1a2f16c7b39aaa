"""The update run's pure state: its JSON (compared with the original, field by field), the
history entry, and every transition with the ones it refuses."""

from __future__ import annotations

import dataclasses

import pytest

from host_service.update import state as us
from host_service.update.manager import history_view, run_view
from host_service.update.state import (
    UPDATE_STEPS,
    Blocker,
    RunPhase,
    Selection,
    StepRecord,
    TransitionError,
    UpdateRun,
    UpdateStep,
)

OLD = Selection(ref="stable", version="1.4.0", manifest_digest="sha256:" + "a" * 64,
                config_digest="sha256:" + "b" * 64)  # fmt: skip
NEW = Selection(ref="1.5.0", version="1.5.0", manifest_digest="sha256:" + "c" * 64,
                config_digest="sha256:" + "d" * 64)  # fmt: skip


def new_run(**changes: object) -> UpdateRun:
    run = UpdateRun(id="u1", kind="pin", target=NEW, previous=OLD, requested_by="192.0.2.7",
                    requested_at=100.0)  # fmt: skip
    return dataclasses.replace(run, **changes)  # type: ignore[arg-type]


BLOCKER = Blocker(step=UpdateStep.RENDER, message="m", cause="c", next_step="n", output="o",
                  at=5.5)  # fmt: skip


def test_a_blocker_in_json_has_every_field() -> None:
    assert BLOCKER.to_json() == {"step": "render", "message": "m", "cause": "c",
                                 "next_step": "n", "output": "o", "at": 5.5}  # fmt: skip
    assert Blocker.from_json(BLOCKER.to_json()) == BLOCKER


def test_an_old_blocker_without_output_or_time_reads_with_defaults() -> None:
    data = {"step": "apply", "message": 1, "cause": 2, "next_step": 3}
    assert Blocker.from_json(data) == Blocker(
        step=UpdateStep.APPLY, message="1", cause="2", next_step="3", output="", at=0.0
    )
    with pytest.raises(KeyError):
        Blocker.from_json({"step": "apply", "message": "m", "cause": "c"})
    assert isinstance(Blocker.from_json({**data, "at": "7"}).at, float)


def test_a_selection_and_a_step_record_round_trip_field_by_field() -> None:
    assert Selection.from_json(NEW.to_json()) == NEW
    assert NEW.to_json() == {"ref": "1.5.0", "version": "1.5.0",
                             "manifest_digest": NEW.manifest_digest,
                             "config_digest": NEW.config_digest}  # fmt: skip
    record = StepRecord(step=UpdateStep.SOURCE, status="done", started_at=1.0,
                        finished_at=2.0, attempts=3, message="done", already_done=True,
                        details=("x", "y"))  # fmt: skip
    assert StepRecord.from_json(record.to_json()) == record
    assert StepRecord.from_json({"step": "source", "status": "pending"}) == StepRecord(
        step=UpdateStep.SOURCE
    )


def test_a_run_round_trips_field_by_field() -> None:
    run = new_run(force=True, phase=RunPhase.BLOCKED, blocker=BLOCKER, finished_at=9.0,
                  updated_at=8.0, changes=("alga-values-redis",))  # fmt: skip
    data = run.to_json()
    assert data["version"] == 1
    assert data["blocker"] == BLOCKER.to_json()
    assert data["changes"] == ["alga-values-redis"]
    assert UpdateRun.from_json(data) == run
    assert UpdateRun.from_json(new_run().to_json()) == new_run()


def test_an_older_run_file_reads_with_defaults() -> None:
    data = new_run().to_json()
    for key in ("force", "updated_at", "changes", "blocker", "finished_at"):
        del data[key]
    data["steps"] = [r for r in data["steps"] if r["step"] != "commit"]
    run = UpdateRun.from_json(data)
    assert run == new_run()
    assert run.record(UpdateStep.COMMIT) == StepRecord(step=UpdateStep.COMMIT)


def test_the_history_entry() -> None:
    assert new_run().history_entry() == {
        "id": "u1", "kind": "pin", "requested_by": "192.0.2.7", "requested_at": 100.0,
        "finished_at": None, "from": OLD.to_json(), "to": NEW.to_json(), "force": False,
        "outcome": "running", "blocked_at": None, "message": "",
    }  # fmt: skip
    blocked = new_run(phase=RunPhase.BLOCKED, blocker=BLOCKER, finished_at=3.0, force=True)
    entry = blocked.history_entry()
    assert (entry["outcome"], entry["blocked_at"], entry["message"]) == ("blocked", "render", "m")
    assert (entry["finished_at"], entry["force"]) == (3.0, True)


def test_a_run_starts_with_every_step_pending_and_its_token() -> None:
    run = new_run()
    assert [r.step for r in run.steps] == list(UPDATE_STEPS)
    assert all(r.status == "pending" for r in run.steps)
    assert run.current is UpdateStep.RESOLVE
    assert run.token == "update-u1"
    assert us.TITLES[UpdateStep.SOURCE] == "Move the Flux source"


def run_to(step: UpdateStep) -> UpdateRun:
    """A run whose steps before ``step`` are done."""
    run = new_run()
    for s in UPDATE_STEPS[: UPDATE_STEPS.index(step)]:
        run = us.finish(us.begin(run, s, 1.0), s, 2.0, already_done=False)
    return run


def test_begin_finish_and_success() -> None:
    run = us.begin(new_run(), UpdateStep.RESOLVE, 10.0)
    record = run.record(UpdateStep.RESOLVE)
    assert (record.status, record.started_at, record.attempts, record.message) == (
        "running", 10.0, 1, "starting")  # fmt: skip
    assert run.updated_at == 10.0
    run = us.finish(run, UpdateStep.RESOLVE, 11.0, already_done=True)
    record = run.record(UpdateStep.RESOLVE)
    assert (record.status, record.finished_at, record.message, record.already_done) == (
        "done", 11.0, "already done", True)  # fmt: skip
    assert run.phase is RunPhase.RUNNING
    assert run.current is UpdateStep.VALIDATE
    last = run_to(UpdateStep.RECONCILE)
    done = us.finish(us.begin(last, UpdateStep.RECONCILE, 20.0), UpdateStep.RECONCILE, 21.0,
                     already_done=False)  # fmt: skip
    assert (done.phase, done.finished_at, done.current) == (RunPhase.SUCCEEDED, 21.0, None)
    assert done.record(UpdateStep.RECONCILE).message == "done"


def test_begin_refuses_another_step_or_a_run_that_is_not_running() -> None:
    with pytest.raises(TransitionError, match=r"^cannot start render in run u1 \(running\)$"):
        us.begin(new_run(), UpdateStep.RENDER, 1.0)
    blocked = new_run(phase=RunPhase.BLOCKED)
    with pytest.raises(TransitionError, match=r"^cannot start resolve in run u1 \(blocked\)$"):
        us.begin(blocked, UpdateStep.RESOLVE, 1.0)


def test_a_step_begun_again_counts_its_attempts_and_forgets_its_details() -> None:
    run = us.begin(new_run(), UpdateStep.RESOLVE, 1.0)
    run = us.report(run, UpdateStep.RESOLVE, "half", 2.0, detail="d1")
    run = us.interrupted(run, 3.0)
    assert run.record(UpdateStep.RESOLVE).status == "pending"
    run = us.begin(run, UpdateStep.RESOLVE, 4.0)
    record = run.record(UpdateStep.RESOLVE)
    assert (record.attempts, record.details, record.finished_at) == (2, (), None)


def test_report_keeps_each_detail_once_and_the_last_forty() -> None:
    run = us.begin(new_run(), UpdateStep.RESOLVE, 1.0)
    run = us.report(run, UpdateStep.RESOLVE, "a", 2.0, detail="x")
    run = us.report(run, UpdateStep.RESOLVE, "b", 3.0, detail="x")
    run = us.report(run, UpdateStep.RESOLVE, "c", 4.0)
    record = run.record(UpdateStep.RESOLVE)
    assert (record.message, record.details, run.updated_at) == ("c", ("x",), 4.0)
    for n in range(45):
        run = us.report(run, UpdateStep.RESOLVE, "m", 5.0, detail=f"d{n}")
    details = run.record(UpdateStep.RESOLVE).details
    assert len(details) == 40
    assert details[0] == "d5"
    assert details[-1] == "d44"


def test_report_and_finish_need_a_running_step() -> None:
    with pytest.raises(TransitionError, match=r"^resolve is not running$"):
        us.report(new_run(), UpdateStep.RESOLVE, "m", 1.0)
    with pytest.raises(TransitionError, match=r"^resolve is not running$"):
        us.finish(new_run(), UpdateStep.RESOLVE, 1.0, already_done=False)
    with pytest.raises(TransitionError, match=r"^render is not running$"):
        us.block(new_run(), BLOCKER, 1.0)


def test_block_keeps_the_output_tail_and_retry_resumes_the_step() -> None:
    run = us.begin(run_to(UpdateStep.RENDER), UpdateStep.RENDER, 30.0)
    long = dataclasses.replace(BLOCKER, output="x" * 10 + "y" * 8000)
    run = us.block(run, long, 31.0)
    assert run.phase is RunPhase.BLOCKED
    assert (run.finished_at, run.updated_at) == (31.0, 31.0)
    assert run.blocker is not None
    assert run.blocker.output == "y" * 8000
    assert run.blocker.at == 31.0
    record = run.record(UpdateStep.RENDER)
    assert (record.status, record.finished_at, record.message) == ("blocked", 31.0, "m")
    assert run.history_entry()["blocked_at"] == "render"
    again = us.retry(run, 40.0)
    assert (again.phase, again.blocker, again.finished_at, again.updated_at) == (
        RunPhase.RUNNING, None, None, 40.0)  # fmt: skip
    record = again.record(UpdateStep.RENDER)
    assert (record.status, record.message) == ("pending", "retry requested")
    assert again.current is UpdateStep.RENDER
    resumed = us.begin(again, UpdateStep.RENDER, 41.0).record(UpdateStep.RENDER)
    assert (resumed.status, resumed.finished_at, resumed.already_done) == ("running", None, False)
    assert resumed.already_done is False


def test_retry_and_supersede_need_a_blocked_run() -> None:
    with pytest.raises(TransitionError, match=r"^nothing to retry: update u1 is running$"):
        us.retry(new_run(), 1.0)
    with pytest.raises(TransitionError, match=r"^nothing to retry"):
        us.retry(new_run(phase=RunPhase.BLOCKED), 1.0)  # blocked without a blocker
    with pytest.raises(TransitionError, match=r"^update u1 is running, not blocked$"):
        us.supersede(new_run(), 1.0)
    gone = us.supersede(new_run(phase=RunPhase.BLOCKED, blocker=BLOCKER), 9.0)
    assert (gone.phase, gone.updated_at) == (RunPhase.SUPERSEDED, 9.0)


def test_interrupted_resets_running_steps_only_of_a_running_run() -> None:
    run = us.begin(run_to(UpdateStep.VALIDATE), UpdateStep.VALIDATE, 5.0)
    resumed = us.interrupted(run, 6.0)
    record = resumed.record(UpdateStep.VALIDATE)
    assert (record.status, record.message) == ("pending", "interrupted; resuming")
    assert resumed.record(UpdateStep.RESOLVE).status == "done"
    assert resumed.updated_at == 6.0
    blocked = new_run(phase=RunPhase.BLOCKED)
    assert us.interrupted(blocked, 6.0) is blocked


def test_with_changes_records_them_and_the_time() -> None:
    run = us.with_changes(new_run(), ("alga-values-db",), 12.0)
    assert (run.changes, run.updated_at) == (("alga-values-db",), 12.0)


def test_the_run_view_words_each_state_as_the_status_page_does() -> None:
    running = us.begin(run_to(UpdateStep.RENDER), UpdateStep.RENDER, 30.0)
    view = run_view(running, runner_alive=True)
    assert (view["running"], view["phase_text"], view["health"]) == (True, "In progress",
                                                                     "progress")  # fmt: skip
    words = [(s["step"], s["status_text"], s["health"]) for s in view["steps"]]
    assert words[:4] == [("resolve", "Done", "ok"), ("validate", "Done", "ok"),
                         ("render", "In progress", "progress"),
                         ("commit", "Waiting", "waiting")]  # fmt: skip
    assert [s["title"] for s in view["steps"]] == [us.TITLES[s] for s in UPDATE_STEPS]
    assert "title" not in (view["blocker"] or {})
    assert run_view(running, runner_alive=False)["running"] is False

    blocked = run_view(us.block(running, BLOCKER, 31.0), runner_alive=True)
    assert (blocked["running"], blocked["phase_text"], blocked["health"]) == (False, "Stopped",
                                                                              "bad")  # fmt: skip
    assert blocked["blocker"]["title"] == "Render values"
    assert blocked["steps"][2]["status_text"] == "Stopped"
    assert blocked["steps"][2]["health"] == "bad"

    done = run_to(UpdateStep.RECONCILE)
    done = us.finish(us.begin(done, UpdateStep.RECONCILE, 3.0), UpdateStep.RECONCILE, 4.0,
                     already_done=False)  # fmt: skip
    view = run_view(done, runner_alive=True)
    assert (done.phase, view["phase_text"], view["health"]) == (RunPhase.SUCCEEDED, "Done", "ok")
    superseded = run_view(us.supersede(us.block(running, BLOCKER, 31.0), 32.0), runner_alive=True)
    assert (superseded["phase_text"], superseded["health"]) == ("Replaced by a later update",
                                                                "waiting")  # fmt: skip


def test_a_history_entry_in_words_keeps_its_raw_fields() -> None:
    blocked = us.block(us.begin(run_to(UpdateStep.RENDER), UpdateStep.RENDER, 30.0), BLOCKER, 31.0)
    entry = blocked.history_entry()
    assert history_view(entry) == {**entry, "outcome_text": "Stopped",
                                   "blocked_at_title": "Render values"}  # fmt: skip
    install = {"kind": "install", "outcome": "succeeded", "blocked_at": None}
    assert history_view(install) == {**install, "outcome_text": "Done", "blocked_at_title": None}
    newer = {"outcome": "rolled-back", "blocked_at": "migrate"}  # from a newer service
    assert history_view(newer) == {**newer, "outcome_text": "rolled-back",
                                   "blocked_at_title": "migrate"}  # fmt: skip
    assert history_view({})["outcome_text"] == ""
