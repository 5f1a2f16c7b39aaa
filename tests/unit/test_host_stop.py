"""Stopping mid-step (the step's program is ended, the step resumes) and failed state writes
(the run waits and continues, never left "running" with nobody driving it)."""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from host_service import state as sm
from host_service import worker as worker_module
from host_service.command import Children, CommandFailed
from host_service.intent import SetupIntent
from host_service.service import Service
from host_service.state import STEPS, BootstrapState, Phase, Step, StepStatus
from host_service.steps.context import StepContext, StepFailed
from host_service.store import load_state
from tests.unit.test_host_worker import INTENT, Script, make_service, wait_phase
from tests.waiting import wait_until

PROJECT = Path(__file__).resolve().parents[2]


@dataclass
class FakeChild:
    """Implements ``command.Child``: exits on SIGTERM unless ``ignores_term``; records signals."""

    ignores_term: bool = False
    returncode: int | None = None
    signals: list[str] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self.signals.append("TERM")
        if not self.ignores_term:
            self._exit(-15)

    def kill(self) -> None:
        self.signals.append("KILL")
        self._exit(-9)

    def _exit(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
        self.ended.set()


# -- Children -------------------------------------------------------------------------------


def test_stop_terminates_a_running_program() -> None:
    children = Children()
    child = FakeChild()
    children.add(child)
    assert children.stop(grace=5.0) == 1
    assert child.signals == ["TERM"]


def test_a_program_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    children = Children()
    stubborn = FakeChild(ignores_term=True)
    children.add(stubborn)
    # Bounded by the grace, not by the program: a stop that waited for this one to end on
    # its own would never return (the thread is the guard against hanging the suite).
    stopper = threading.Thread(target=children.stop, kwargs={"grace": 0.2}, daemon=True)
    stopper.start()
    stopper.join(60)
    assert not stopper.is_alive(), "the stop waits for a program that ignores SIGTERM"
    assert stubborn.signals == ["TERM", "KILL"]
    assert stubborn.returncode == -9


def test_finished_programs_are_left_alone_and_late_ones_ended_at_once() -> None:
    children = Children()
    done = FakeChild(returncode=0)
    children.add(done)
    assert children.stop(grace=1.0) == 0
    assert done.signals == []
    late = FakeChild()  # started while the stop ran: it must not outlive the service
    children.add(late)
    assert late.signals == ["TERM"]


# -- the state transition -------------------------------------------------------------------


def test_a_suspended_step_resumes_on_the_next_start() -> None:
    running = sm.begin_step(sm.start_run(BootstrapState(), 1.0), Step.PREFLIGHT, 2.0)
    running = sm.claim(running, pid=10, started_at=1.0, boot_id="b", now=2.0)
    stopped = sm.suspend(running, Step.PREFLIGHT, 3.0)
    assert stopped.phase is Phase.RUNNING
    assert stopped.blocker is None
    assert stopped.owner is None
    assert stopped.record(Step.PREFLIGHT).status is StepStatus.PENDING
    assert stopped.current is Step.PREFLIGHT
    assert "stopped at preflight" in stopped.history[-1]
    decision = sm.resume_decision(stopped, owner_alive=False, has_intent=True)
    assert decision is sm.Resume.CONTINUE
    # A state already past the step (or not running) is left as it is.
    assert sm.suspend(stopped, Step.PREFLIGHT, 4.0) is stopped


# -- the worker: a stop is a cancellation, never a blocker ----------------------------------


class WaitRecordingEvent(threading.Event):
    """The worker's ``stopping`` event, telling the test when the worker waits on it for a
    while (the grace for a late stop, a retry delay). ``unbounded``: such a wait lasts until
    the event is set, as if the delay were longer than anything the test waits for."""

    def __init__(self, *, unbounded: bool = False) -> None:
        super().__init__()
        self.waiting = threading.Event()
        self.unbounded = unbounded

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is None or timeout > 0:
            self.waiting.set()
        return super().wait(None if self.unbounded else timeout)


def _write_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in list(caplog.records) if r.levelno >= logging.ERROR]


def _running_program(
    service: Service, registered: threading.Event
) -> Callable[[StepContext], None]:
    """A step action that runs a "program" the way ``command.run`` does: registered in the
    worker's children while it runs, and failing with the signal that ended it."""
    argv = ["kubectl", "apply", "--server-side", "-f", "install.yaml"]

    def action(ctx: StepContext) -> None:
        assert service.worker is not None
        child = FakeChild()
        service.worker.children.add(child)
        registered.set()
        try:
            assert child.ended.wait(10), "the stop never ended the program"
        finally:
            service.worker.children.discard(child)
        raise CommandFailed(
            f"kubectl exited with {child.returncode}: ",
            argv=argv,
            returncode=child.returncode or 0,
            stdout="",
            stderr="",
        )

    return action


def _restart_to_the_end(root: Path, first: Script) -> tuple[Service, BootstrapState, Script]:
    again = Script()
    again.done_in_reality = set(first.done_in_reality)
    service = make_service(root, again)
    service.start()
    try:
        state = wait_phase(service, Phase.RECONCILED)
    finally:
        service.stop()
    return service, state, again


def test_stop_ends_the_steps_program_and_the_step_resumes(tmp_path: Path) -> None:
    script = Script()
    service = make_service(tmp_path, script)
    registered = threading.Event()
    script.actions[Step.FLUX] = _running_program(service, registered)
    service.start()
    service.submit_setup(INTENT)
    assert registered.wait(10)
    service.stop()
    assert service.worker is not None
    assert not service.worker.alive

    on_disk = load_state(service.settings.paths.state_file)
    assert on_disk.phase is Phase.RUNNING
    assert on_disk.blocker is None
    assert on_disk.owner is None
    assert on_disk.record(Step.FLUX).status is StepStatus.PENDING
    assert "stopped at flux" in on_disk.history[-1]

    restarted, state, again = _restart_to_the_end(tmp_path, script)
    assert restarted.resume is sm.Resume.CONTINUE
    assert {s: state.record(s).attempts for s in STEPS} == {
        s: 2 if s is Step.FLUX else 1 for s in STEPS
    }
    assert again.runs[Step.FLUX] == 1
    assert again.probes[Step.K3S] == 0  # done steps stay done


def test_a_program_killed_by_a_group_sigterm_before_the_stop_is_not_a_blocker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM to the whole process group: the program dies before this process handles its
    own signal. The worker gives the stop ``SIGNAL_GRACE`` to show up."""
    monkeypatch.setattr(worker_module, "SIGNAL_GRACE", 30.0)
    script = Script()
    service = make_service(tmp_path, script)
    attempted = threading.Event()

    def killed_first(ctx: StepContext) -> None:
        attempted.set()
        try:
            raise CommandFailed(
                "kubectl exited with -15: ", argv=["kubectl"], returncode=-15, stdout="", stderr=""
            )
        except CommandFailed as exc:  # wrapped like a step that explains tool failures
            raise StepFailed("flux install failed", cause="c", next_step="n") from exc

    script.actions[Step.FLUX] = killed_first
    service.start()
    assert service.worker is not None
    # The stop comes late: only once the worker, having seen no stop yet, waits for one.
    stopping = service.worker.stopping = WaitRecordingEvent()
    service.submit_setup(INTENT)
    assert attempted.wait(10)
    assert stopping.waiting.wait(10), "the worker did not wait for a late stop"
    service.stop()
    on_disk = load_state(service.settings.paths.state_file)
    assert (on_disk.phase, on_disk.blocker) == (Phase.RUNNING, None)
    assert on_disk.record(Step.FLUX).status is StepStatus.PENDING


def test_a_program_killed_by_sigterm_without_a_stop_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "SIGNAL_GRACE", 0.1)
    script = Script()

    def killed(ctx: StepContext) -> None:
        raise CommandFailed(
            "kubectl exited with -15: ", argv=["kubectl"], returncode=-15, stdout="", stderr=""
        )

    script.actions[Step.FLUX] = killed
    service = make_service(tmp_path, script)
    service.start()
    try:
        service.submit_setup(INTENT)
        state = wait_phase(service, Phase.BLOCKED)
    finally:
        service.stop()
    assert state.blocker is not None
    assert "exited with -15" in state.blocker.message


# -- failed state writes ---------------------------------------------------------------------


def _break_writes(path: Path) -> None:
    """Make every write of ``path`` fail for real: a directory where the file goes."""
    path.unlink()
    path.mkdir()


def test_a_failed_state_write_waits_and_the_run_continues(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = "http://ops:pw-in-proxy-9@proxy.example.com:3128"
    script = Script()
    service = make_service(tmp_path, script)
    state_file = service.settings.paths.state_file
    reported = threading.Event()

    def report_on_a_broken_disk(ctx: StepContext) -> None:
        _break_writes(state_file)
        ctx.report(f"half way via {proxy}")  # blocks until the write succeeds
        reported.set()

    script.actions[Step.STORAGE] = report_on_a_broken_disk
    service.start()
    try:
        with caplog.at_level(logging.INFO):
            service.submit_setup(
                SetupIntent(app_url="https://psa.example.com", channel="stable", proxy=proxy)
            )
            # The first write and a retry of it failed: the worker retries, it did not give up.
            wait_until(lambda: len(_write_errors(caplog)) >= 2, 10, "a failed retry")
            status = service.status()
            assert status["phase"] == "running"
            assert status["running"] is True
            assert str(state_file) in status["state_write_error"]
            assert not reported.is_set()

            shutil.rmtree(state_file)  # room again
            state = wait_phase(service, Phase.RECONCILED)
    finally:
        service.stop()
    assert service.status()["state_write_error"] is None
    assert state.record(Step.STORAGE).attempts == 1  # continued, not re-run
    assert script.runs[Step.STORAGE] == 1
    assert load_state(state_file).phase is Phase.RECONCILED
    errors = _write_errors(caplog)
    assert len(errors) >= 2
    assert all(f"cannot write {state_file}" in e for e in errors)
    assert "pw-in-proxy-9" not in caplog.text
    written = re.search(r"written after (\d+) failed attempts", caplog.text)
    assert written is not None
    assert int(written.group(1)) == len(errors)  # each failure was retried until one worked


def test_a_step_failure_during_a_failed_write_shows_its_blocker_once_written(
    tmp_path: Path,
) -> None:
    script = Script()
    service = make_service(tmp_path, script)
    state_file = service.settings.paths.state_file

    def fail_on_a_broken_disk(ctx: StepContext) -> None:
        if not state_file.is_dir():
            _break_writes(state_file)
        raise StepFailed("values not written", cause="disk full", next_step="free space")

    script.actions[Step.VALUES] = fail_on_a_broken_disk
    service.start()
    try:
        service.submit_setup(INTENT)
        wait_until(lambda: service.state_keeper.write_error is not None, 10, "the write error")
        assert service.status()["phase"] == "running"
        shutil.rmtree(state_file)
        state = wait_phase(service, Phase.BLOCKED)
    finally:
        service.stop()
    assert state.blocker is not None
    assert state.blocker.message == "values not written"
    on_disk = json.loads(state_file.read_text())
    assert (on_disk["phase"], on_disk["blocker"]["step"]) == ("blocked", "values")


def test_a_stop_while_writes_fail_ends_the_worker_promptly(tmp_path: Path) -> None:
    script = Script()
    service = make_service(tmp_path, script)
    state_file = service.settings.paths.state_file
    script.actions[Step.K3S] = lambda ctx: (_break_writes(state_file), ctx.report("x"))[-1]
    service.start()
    assert service.worker is not None
    # Each retry wait lasts until the stop: longer than the stop waits for the worker (it
    # joins for 10 s), so a wait the stop did not end would leave the worker alive.
    stopping = service.worker.stopping = WaitRecordingEvent(unbounded=True)
    service.submit_setup(INTENT)
    assert stopping.waiting.wait(10), "the worker never waited to retry"
    assert service.state_keeper.write_error is not None
    service.stop()
    assert not service.worker.alive


# -- the unit ------------------------------------------------------------------------------


def test_the_unit_lets_the_service_end_its_programs_itself() -> None:
    """KillMode=mixed: SIGTERM to the main process only, SIGKILL to what is left later."""
    unit = PROJECT / "overlays/etc/systemd/system/appliance-setup.service.j2"
    section = ""
    settings: dict[str, str] = {}
    for line in unit.read_text().splitlines():
        if line.startswith("["):
            section = line.strip()
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key] = value
    assert settings["KillMode"] == "mixed"
    assert settings["TimeoutStopSec"] == "20s"
