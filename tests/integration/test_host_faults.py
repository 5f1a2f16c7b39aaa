"""Fault injection: the service is SIGKILLed in the middle of each step (or stopped while a
step's program runs), restarted, and ends in the same state as an uninterrupted run, with no
lost and no duplicated work; a full state disk makes the run wait, not hang."""

from __future__ import annotations

import copy
import errno
import json
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from host_service.state import STEPS
from host_service.values import SECRET_NAME
from tests.conftest import require_root, unavailable
from tests.fixtures.host_service import (
    Appliance,
    Client,
    DoublesConfig,
    Record,
    ServiceProcess,
    make_appliance,
    setup_body,
)
from tests.fixtures.kube_api import KubeApi, start_kube_api
from tests.ports import free_port
from tests.waiting import wait_until

# The Nth progress report inside each step's run: after some of its side effects and
# before others (e.g. k3s: after the unit was started; apply: after the Secret was created).
KILL_POINTS = {
    "preflight": 3,
    "k3s": 8,
    "storage": 4,
    "flux": 2,
    "release": 2,
    "values": 3,
    "apply": 3,
    "source": 2,
    "reconcile": 1,
}
HELM_RELEASES = ("db", "alga-core")
VOLATILE_META = ("uid", "creationTimestamp", "resourceVersion", "managedFields")


@dataclass
class Scenario:
    appliance: Appliance
    kube: KubeApi
    service: ServiceProcess
    record: Record

    def client(self) -> Client:
        client = Client(self.service.url)
        assert client.login(self.appliance.token()).status_code == 200
        return client


def scenario(base: Path, registry: Any, registry_pki: Any) -> tuple[Scenario, Any]:
    appliance = make_appliance(base, registry_host=registry.host, ca_path=registry.ca_path)
    kube, stop = start_kube_api(registry_pki)
    kube.cluster.helm_releases = HELM_RELEASES
    doubles = DoublesConfig(
        record=str(appliance.work / "doubles.json"),
        root=str(appliance.root),
        kubeconfig=kube.kubeconfig(),
    ).save(appliance.work / "doubles-config.json")
    service = ServiceProcess(appliance, doubles, free_port())
    return Scenario(appliance, kube, service, Record(appliance.work / "doubles.json")), stop


def snapshot(kube: KubeApi) -> dict[str, Any]:
    """The cluster as the appliance left it, without what differs between any two runs."""
    result: dict[str, Any] = {}
    with kube.cluster.lock:
        objects = copy.deepcopy(kube.cluster.objects)
    for key, obj in sorted(objects.items()):
        meta = obj["metadata"]
        for name in VOLATILE_META:
            meta.pop(name, None)
        obj.pop("status", None)
        if obj.get("kind") == "Secret" and meta["name"] == SECRET_NAME:
            obj["data"] = sorted(obj["data"])  # generated: only the keys are comparable
        result["/".join(key)] = obj
    return result


def files(appliance: Appliance) -> dict[str, str]:
    """Derived state on disk (names, and content where it is deterministic)."""
    out = {}
    for path in sorted(appliance.root.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(appliance.root).as_posix()
        if (
            rel.endswith((".log", ".lock", "build-info.json"))
            or "bootstrap-state" in rel
            or ("session-key" in rel)
        ):
            continue
        if rel.endswith(
            ("setup-token", "storage-verified.json", "release-selection.json", "k3s.yaml", "issue")
        ):
            out[rel] = "<varies>"
        else:
            out[rel] = path.read_text(errors="replace")
    return out


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory,
    registry: Any,
    registry_pki: Any,
    published_release: Any,
) -> Iterator[dict[str, Any]]:
    """One uninterrupted run: the end state every interrupted run must reach."""
    run, stop = scenario(tmp_path_factory.mktemp("reference"), registry, registry_pki)
    try:
        run.service.start()
        client = run.client()
        assert client.post("/api/setup", setup_body()).status_code == 202
        status = client.wait_phase("reconciled", "blocked", timeout=120)
        assert status["phase"] == "reconciled", status["blocker"]
        yield {
            "cluster": snapshot(run.kube),
            "files": files(run.appliance),
            "calls": run.record.calls(),
        }
    finally:
        run.service.stop()
        stop()


@pytest.mark.parametrize("step", [s.value for s in STEPS])
def test_killed_during_step_resumes_to_the_same_end_state(
    step: str,
    reference: dict[str, Any],
    tmp_path: Path,
    registry: Any,
    registry_pki: Any,
) -> None:
    run, stop = scenario(tmp_path, registry, registry_pki)
    try:
        run.service.start(kill_at=f"{step}:{KILL_POINTS[step]}")
        client = run.client()
        assert client.post("/api/setup", setup_body()).status_code == 202
        assert run.service.wait_exit(120) == -signal.SIGKILL
        state = json.loads((run.appliance.state_dir / "bootstrap-state.json").read_text())
        record = next(r for r in state["steps"] if r["step"] == step)
        assert (state["phase"], record["status"]) == ("running", "running")
        secret_at_kill = run.kube.cluster.find("secrets", "msp", SECRET_NAME)

        run.service.start()  # no kill point: the same service, restarted
        client = run.client()
        status = client.wait_phase("reconciled", "blocked", timeout=120)
        assert status["phase"] == "reconciled", status["blocker"]
    finally:
        run.service.stop()
        stop()

    attempts = {s["name"]: s["attempts"] for s in status["steps"]}
    assert attempts == {s.value: 2 if s.value == step else 1 for s in STEPS}
    state = json.loads((run.appliance.state_dir / "bootstrap-state.json").read_text())
    assert any(f"interrupted at {step}; resuming" in line for line in state["history"])
    assert state["generation"] == 2  # the second process took over, visibly

    # Same end state as the uninterrupted run.
    assert snapshot(run.kube) == reference["cluster"]
    assert files(run.appliance) == reference["files"]
    # No duplicated work: k3s started once; nothing applied twice with a different spec;
    # a Secret generated before the kill is the one kept.
    calls = [c[0] for c in run.record.calls()]
    assert calls.count("enable-now") == 1
    assert calls.count("k3s-version") <= 2
    with run.kube.cluster.lock:
        generations = {
            "/".join(k): o["metadata"].get("generation", 1)
            for k, o in run.kube.cluster.objects.items()
        }
    assert set(generations.values()) == {1}, generations
    if secret_at_kill is not None:
        assert (
            run.kube.cluster.find("secrets", "msp", SECRET_NAME)["data"] == (secret_at_kill["data"])
        )
    assert run.kube.cluster.count("persistentvolumeclaims") == 0  # no smoke test left over
    with pytest.raises(requests.RequestException):
        requests.get(run.service.url + "/healthz", timeout=1)  # stopped cleanly


# -- a stop while a step's program runs; a full state disk -----------------------------------


@dataclass
class HeldKubectl:
    """kubectl behind a real wrapper program: the first call whose arguments contain the
    pattern waits, a live child of the service, until ``release()``; then it runs kubectl."""

    hold: Path
    pid_file: Path

    def wait_held(self, timeout: float = 60.0) -> int:
        wait_until(self.pid_file.exists, timeout, "a held kubectl call", interval=0.05)
        return int(self.pid_file.read_text())

    def release(self) -> None:
        self.hold.unlink(missing_ok=True)


def hold_kubectl(appliance: Appliance, pattern: str) -> HeldKubectl:
    hold = appliance.work / "kubectl.hold"
    pid_file = appliance.work / "kubectl.held"
    wrapper = appliance.work / "kubectl-held"
    q = shlex.quote
    wrapper.write_text(
        "#!/bin/sh\n"
        f"if [ -e {q(str(hold))} ]; then\n"
        f'  case " $* " in *{q(pattern)}*)\n'
        f"    echo $$ > {q(str(pid_file))}.tmp && mv {q(str(pid_file))}.tmp {q(str(pid_file))}\n"
        f"    while [ -e {q(str(hold))} ]; do sleep 0.05; done ;;\n"
        "  esac\n"
        "fi\n"
        'exec "$@"\n'
    )
    wrapper.chmod(0o755)
    hold.write_text(pattern)

    def wrap(document: dict[str, Any]) -> None:
        service = document["appliance"]["host_service"]
        service["kubectl"] = [str(wrapper), *service["kubectl"]]

    appliance.edit_settings(wrap)
    return HeldKubectl(hold, pid_file)


def process_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def assert_same_end_state(run: Scenario, reference: dict[str, Any]) -> None:
    assert snapshot(run.kube) == reference["cluster"]
    assert files(run.appliance) == reference["files"]
    calls = [c[0] for c in run.record.calls()]
    assert calls.count("enable-now") == 1
    with run.kube.cluster.lock:
        generations = {
            o["metadata"].get("generation", 1) for o in run.kube.cluster.objects.values()
        }
    assert generations == {1}


# The flux step's ``kubectl apply --server-side -f .../install.yaml``: its run, mid-way.
HELD_CALL = "install.yaml"
# What the worker logs at each failed state write before it waits and tries again.
RETRYING = "the bootstrap waits and retries"


@pytest.mark.parametrize("signalled", ["service", "process-group"])
def test_stopped_while_a_steps_program_runs_resumes_to_the_same_end_state(
    signalled: str,
    reference: dict[str, Any],
    tmp_path: Path,
    registry: Any,
    registry_pki: Any,
) -> None:
    """SIGTERM to the service alone (systemd with KillMode=mixed) or to its whole process
    group (the default control-group, a terminal's Ctrl-C): the program is gone when the
    service has exited, the step is left to resume, and the restart finishes the run."""
    run, stop = scenario(tmp_path, registry, registry_pki)
    held = hold_kubectl(run.appliance, HELD_CALL)
    try:
        run.service.start(own_group=signalled == "process-group")
        client = run.client()
        assert client.post("/api/setup", setup_body()).status_code == 202
        child = held.wait_held()
        assert process_alive(child)
        proc = run.service.proc
        assert proc is not None
        if signalled == "service":
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGTERM)
        assert run.service.wait_exit(30) == 0
        assert not process_alive(child), "the step's program outlived the service"

        state = json.loads((run.appliance.state_dir / "bootstrap-state.json").read_text())
        flux = next(r for r in state["steps"] if r["step"] == "flux")
        assert (state["phase"], state["blocker"], state["owner"]) == ("running", None, None)
        assert flux["status"] == "pending"

        held.release()
        run.service.start()
        status = run.client().wait_phase("reconciled", "blocked", timeout=120)
        assert status["phase"] == "reconciled", status["blocker"]
        assert_same_end_state(run, reference)
    finally:
        run.service.stop()
        stop()
    attempts = {s["name"]: s["attempts"] for s in status["steps"]}
    assert attempts == {s.value: 2 if s.value == "flux" else 1 for s in STEPS}
    state = json.loads((run.appliance.state_dir / "bootstrap-state.json").read_text())
    history = "\n".join(state["history"])
    assert "stopped at flux; resumes on start" in history
    assert "interrupted at flux; resuming" in history


def fill(path: Path) -> None:
    """Write ``path`` until its file system has no space left."""
    chunk = b"\0" * 65536
    with path.open("wb", buffering=0) as out:
        while True:
            try:
                out.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return


def test_a_full_state_disk_mid_step_waits_and_the_run_continues(
    reference: dict[str, Any],
    tmp_path: Path,
    registry: Any,
    registry_pki: Any,
) -> None:
    """The state directory on a small tmpfs, filled while a step runs: the step's next
    progress write fails with ENOSPC; the status says so while the worker retries; once
    there is room the run continues to the same end state (not stuck at "running")."""
    require_root("mounts a small tmpfs as the state directory to fill it")
    run, stop = scenario(tmp_path, registry, registry_pki)
    held = hold_kubectl(run.appliance, HELD_CALL)
    state_dir = run.appliance.state_dir
    state_dir.mkdir(parents=True, mode=0o700)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(state_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {mount.stderr.strip()}")
    try:
        run.service.start()
        client = run.client()
        assert client.post("/api/setup", setup_body()).status_code == 202
        held.wait_held()
        filler = state_dir / "filler"
        fill(filler)
        held.release()

        status = client.wait_for(lambda s: s["state_write_error"] is not None, timeout=60)
        assert "bootstrap-state.json: No space left on device" in status["state_write_error"]
        assert (status["phase"], status["running"], status["blocker"]) == ("running", True, None)
        assert status["current_step"] == "flux"
        answer = client.post("/api/setup", setup_body())
        assert answer.status_code == 409  # a live worker drives the run: nothing to start
        # The outage lasts until the worker has retried (and failed) a few times.
        service_log = run.service.log
        assert service_log is not None
        wait_until(
            lambda: service_log.read_text().count(RETRYING) >= 3, 60, "three failed state writes"
        )

        filler.unlink()
        status = client.wait_phase("reconciled", "blocked", timeout=120)
        assert status["phase"] == "reconciled", status["blocker"]
        assert status["state_write_error"] is None
        assert_same_end_state(run, reference)
    finally:
        run.service.stop()
        stop()
        subprocess.run(["umount", "--lazy", str(state_dir)], check=False)
    attempts = {s["name"]: s["attempts"] for s in status["steps"]}
    assert attempts == {s.value: 1 for s in STEPS}  # the step waited and went on
    assert run.service.log is not None
    log = run.service.log.read_text()
    assert "bootstrap-state.json: No space left on device" in log
    written = re.search(r"the bootstrap state was written after (\d+) failed attempts", log)
    assert written is not None
    assert int(written.group(1)) >= 3  # it retried, and the retries are what got it written
