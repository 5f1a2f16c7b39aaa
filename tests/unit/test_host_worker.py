"""The worker and the service around it, with scripted steps: runs, blockers, retry, resume."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from host_service import state as sm
from host_service.errors import AlreadyRunning
from host_service.intent import SetupIntent
from host_service.runtime import Runtime
from host_service.service import Conflict, Service
from host_service.settings import default_settings
from host_service.state import STEPS, BootstrapState, Phase, Step, StepStatus
from host_service.steps import StepImplementation
from host_service.steps.context import StepContext, StepFailed
from host_service.store import load_state, save_state
from tests.fixtures.host_service import FakeHost, FakeKube
from tests.waiting import wait_until

Action = Callable[[StepContext], None]


class Script:
    """Step implementations whose behaviour each test sets; counts probes and runs."""

    def __init__(self) -> None:
        self.done_in_reality: set[Step] = set()
        self.actions: dict[Step, Action] = {}
        self.runs: Counter[Step] = Counter()
        self.probes: Counter[Step] = Counter()

    def implementations(self) -> dict[Step, StepImplementation]:
        def make(step: Step) -> StepImplementation:
            def probe(ctx: StepContext) -> bool:
                self.probes[step] += 1
                return step in self.done_in_reality

            def run(ctx: StepContext) -> None:
                self.runs[step] += 1
                ctx.report(f"{step.value} working", detail=f"{step.value} detail")
                action = self.actions.get(step)
                if action is not None:
                    action(ctx)
                self.done_in_reality.add(step)

            return StepImplementation(probe, run)

        return {step: make(step) for step in STEPS}


class UnusedSystemd:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"scripted steps must not reach systemd ({name})")


def runtime() -> Runtime:
    def registry(settings: Any, intent: Any) -> Any:
        return lambda: None

    return Runtime(
        kube=FakeKube(), systemd=UnusedSystemd(), k3s=UnusedSystemd(), host=FakeHost(),
        registry=registry,
    )  # fmt: skip


INTENT = SetupIntent(app_url="https://psa.example.com", channel="stable")


def make_service(root: Path, script: Script) -> Service:
    settings = default_settings(root)
    return Service(settings, runtime(), implementations=script.implementations())


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Callable[[Script], Service]]:
    started: list[Service] = []

    def start(script: Script) -> Service:
        service = make_service(tmp_path, script)
        service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def wait_phase(service: Service, *phases: Phase, timeout: float = 10.0) -> BootstrapState:
    keeper = service.state_keeper
    version, state = keeper.snapshot()

    def settled() -> BootstrapState | None:
        nonlocal version, state
        version, state = keeper.snapshot()
        worker = service.worker
        # The worker clears "busy" after its last state change: no version wakes us for it.
        done = state.phase in phases and worker is not None and not worker.busy
        return state if done else None

    return wait_until(
        settled,
        timeout,
        lambda: (
            f"phase {', '.join(p.value for p in phases)}; still {state.phase} at {state.current}"
        ),
        pause=lambda left: keeper.wait_for_change(version, min(left, 0.05)),
    )


def wait_step_running(service: Service, step: Step) -> None:
    wait_until(
        lambda: service.state_keeper.state.record(step).status is StepStatus.RUNNING,
        5,
        f"step {step.value} to run",
    )


def test_a_run_reaches_reconciled(services: Callable[[Script], Service]) -> None:
    script = Script()
    service = services(script)
    assert service.status()["phase"] == "awaiting-setup"
    service.submit_setup(INTENT)
    state = wait_phase(service, Phase.RECONCILED)
    assert all(r.status is StepStatus.DONE for r in state.steps)
    assert script.runs == Counter(dict.fromkeys(STEPS, 1))
    view = service.status()
    assert view["running"] is False
    assert view["app_url"] == "https://psa.example.com"
    assert view["steps"][0]["details"] == ["preflight detail"]


def test_probe_first_skips_work_already_done(services: Callable[[Script], Service]) -> None:
    script = Script()
    script.done_in_reality = {Step.K3S, Step.STORAGE}
    service = services(script)
    service.submit_setup(INTENT)
    state = wait_phase(service, Phase.RECONCILED)
    assert script.runs[Step.K3S] == 0
    assert script.probes[Step.K3S] == 1
    assert state.record(Step.K3S).already_done
    assert not state.record(Step.FLUX).already_done


def test_a_failure_blocks_in_place_and_retry_resumes_there(
    services: Callable[[Script], Service],
) -> None:
    script = Script()
    failures = iter(
        [StepFailed("no nodes", cause="k3s down", next_step="fix it", output="line1\nline2")]
    )

    def fail_once(ctx: StepContext) -> None:
        error = next(failures, None)
        if error is not None:
            raise error

    script.actions[Step.STORAGE] = fail_once
    service = services(script)
    service.submit_setup(INTENT)
    state = wait_phase(service, Phase.BLOCKED)
    assert state.blocker is not None
    assert (state.blocker.step, state.blocker.message, state.blocker.cause,
            state.blocker.next_step, state.blocker.output) == (
        Step.STORAGE, "no nodes", "k3s down", "fix it", "line1\nline2")  # fmt: skip
    assert script.runs[Step.FLUX] == 0  # stops in place; nothing after it ran
    assert service.status()["running"] is False
    service.retry()
    state = wait_phase(service, Phase.RECONCILED)
    assert script.runs[Step.K3S] == 1
    assert script.runs[Step.STORAGE] == 2
    assert state.record(Step.STORAGE).attempts == 2


def test_retry_and_setup_conflicts(services: Callable[[Script], Service]) -> None:
    gate = threading.Event()
    script = Script()
    script.actions[Step.FLUX] = lambda ctx: gate.wait(10)
    service = services(script)
    with pytest.raises(Conflict, match="nothing to retry"):
        service.retry()
    service.submit_setup(INTENT)
    wait_step_running(service, Step.FLUX)
    assert service.status()["running"] is True
    with pytest.raises(Conflict, match="running"):
        service.submit_setup(INTENT)
    gate.set()
    wait_phase(service, Phase.RECONCILED)
    service.submit_setup(INTENT)  # a finished appliance accepts new inputs: a new run
    state = wait_phase(service, Phase.RECONCILED)
    assert state.run == 2
    assert all(r.already_done for r in state.steps)  # everything re-probed, nothing redone


def test_unexpected_errors_become_blockers(services: Callable[[Script], Service]) -> None:
    script = Script()

    def crash(ctx: StepContext) -> None:
        raise KeyError("metadata")

    script.actions[Step.VALUES] = crash
    service = services(script)
    service.submit_setup(INTENT)
    state = wait_phase(service, Phase.BLOCKED)
    assert state.blocker is not None
    assert state.blocker.step is Step.VALUES
    assert "internal error" in state.blocker.message
    assert "KeyError" in state.blocker.output
    assert service.worker is not None
    assert service.worker.alive


def test_secrets_never_reach_blockers_or_state(
    services: Callable[[Script], Service], tmp_path: Path
) -> None:
    proxy = "http://ops:s3cr3t-pw@proxy.example.com:3128"
    script = Script()

    def leak(ctx: StepContext) -> None:
        ctx.report(f"trying {proxy}", detail=f"via {proxy}")
        raise StepFailed(
            f"proxy {proxy} refused",
            cause="pw s3cr3t-pw wrong",
            next_step="x",
            output=f"curl {proxy}",
        )

    script.actions[Step.PREFLIGHT] = leak
    service = services(script)
    service.submit_setup(
        SetupIntent(app_url="https://a.example.com", channel="stable", proxy=proxy)
    )
    wait_phase(service, Phase.BLOCKED)
    status = json.dumps(service.status())
    state_file = service.settings.paths.state_file.read_text()
    for text in (status, state_file):
        assert "s3cr3t-pw" not in text
        assert "<redacted>" in text or "***" in text
    intent_file = service.settings.paths.intent_file
    assert intent_file.stat().st_mode & 0o777 == 0o600  # the one place it is kept


def test_restart_resumes_an_interrupted_run(tmp_path: Path) -> None:
    """A run left "running" by a dead process resumes at its step; done steps stay done."""
    first = Script()
    gate = threading.Event()
    first.actions[Step.SOURCE] = lambda ctx: gate.wait(10)
    service = make_service(tmp_path, first)
    service.start()
    service.submit_setup(INTENT)
    wait_step_running(service, Step.SOURCE)
    # Crash: the state on disk says "running source", owned by a process of another boot.
    crashed = sm.claim(service.state_keeper.state, pid=1, started_at=1.0, boot_id="gone", now=1.0)
    gate.set()
    service.stop()
    save_state(service.settings.paths.state_file, crashed)

    second = Script()
    second.done_in_reality = set(first.done_in_reality)
    restarted = make_service(tmp_path, second)
    restarted.start()
    try:
        state = wait_phase(restarted, Phase.RECONCILED)
    finally:
        restarted.stop()
    assert restarted.resume is sm.Resume.CONTINUE
    assert second.runs[Step.PREFLIGHT] == 0
    assert second.probes[Step.PREFLIGHT] == 0
    assert state.record(Step.SOURCE).attempts == 2
    assert "interrupted at source" in "\n".join(state.history)
    assert state.generation == crashed.generation + 1


def test_a_dead_owner_is_never_reported_running(services: Callable[[Script], Service]) -> None:
    service = services(Script())
    dead = sm.claim(
        sm.start_run(BootstrapState(), 1.0), pid=1, started_at=1.0, boot_id="old", now=1.0
    )
    assert dead.phase is Phase.RUNNING
    assert service.running(dead) is False
    assert service.status_view(0, dead)["running"] is False
    assert service.status_view(0, dead)["owner"]["alive"] is False


def test_blocked_state_stays_blocked_across_restart(tmp_path: Path) -> None:
    script = Script()
    script.actions[Step.K3S] = lambda ctx: (_ for _ in ()).throw(
        StepFailed("k3s failed", cause="c", next_step="n")
    )
    service = make_service(tmp_path, script)
    service.start()
    service.submit_setup(INTENT)
    wait_phase(service, Phase.BLOCKED)
    service.stop()
    again = make_service(tmp_path, Script())
    again.start()
    try:
        assert again.resume is sm.Resume.STAY_BLOCKED
        state = again.state_keeper.state
        assert state.phase is Phase.BLOCKED
        assert state.blocker is not None
        assert state.blocker.message == "k3s failed"
    finally:
        again.stop()


def test_one_service_per_state_directory(tmp_path: Path) -> None:
    first = make_service(tmp_path, Script())
    first.start()
    try:
        with pytest.raises(AlreadyRunning, match="another host service"):
            make_service(tmp_path, Script()).start()
    finally:
        first.stop()


def test_lost_inputs_abandon_a_run(tmp_path: Path) -> None:
    path = default_settings(tmp_path).paths.state_file
    path.parent.mkdir(parents=True)
    running = sm.claim(
        sm.start_run(BootstrapState(), 1.0), pid=1, started_at=1.0, boot_id="old", now=1.0
    )
    save_state(path, running)
    service = make_service(tmp_path, Script())
    service.start()
    try:
        assert service.state_keeper.state.phase is Phase.AWAITING_SETUP
        assert load_state(path).phase is Phase.AWAITING_SETUP
    finally:
        service.stop()


def test_a_service_starts_with_damaged_inputs_and_asks_for_them_again(tmp_path: Path) -> None:
    # A run in progress whose inputs file is truncated: the service does not stop at start
    # (a traceback, and no setup page to put it right); the file goes aside and the run
    # waits for setup again.
    service = make_service(tmp_path, Script())
    paths = service.settings.paths
    paths.state.mkdir(parents=True, mode=0o700)
    dead = sm.claim(
        sm.start_run(BootstrapState(), 1.0), pid=1, started_at=1.0, boot_id="old", now=1.0
    )
    save_state(paths.state_file, dead)
    paths.intent_file.write_text('{"app_url": "https://psa.exa')
    service.start()
    try:
        assert service.resume is sm.Resume.ABANDON
        assert service.state_keeper.state.phase is Phase.AWAITING_SETUP
        assert service.intents.load() is None
        [aside] = paths.state.glob("setup-inputs.json.corrupt-*")
        assert aside.read_text() == '{"app_url": "https://psa.exa'
        service.submit_setup(INTENT)  # and setup runs again
        assert wait_phase(service, Phase.RECONCILED).phase is Phase.RECONCILED
    finally:
        service.stop()


def test_inputs_damaged_during_a_run_return_it_to_setup(
    services: Callable[[Script], Service], caplog: pytest.LogCaptureFixture
) -> None:
    # The worker reads them before each step: a damaged file is set aside (an error there
    # ended its thread and left the run "running" with no one driving it).
    script = Script()
    service = services(script)
    intent_file = service.settings.paths.intent_file
    script.actions[Step.PREFLIGHT] = lambda ctx: intent_file.write_text("{")
    service.submit_setup(INTENT)
    state = wait_phase(service, Phase.AWAITING_SETUP)
    assert "abandoned: setup inputs missing" in state.history[-1]
    assert f"{intent_file}: not JSON" in caplog.text
    assert len(list(intent_file.parent.glob("setup-inputs.json.corrupt-*"))) == 1
    assert script.runs[Step.K3S] == 0
