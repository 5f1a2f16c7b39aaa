"""Fault injection: the service is SIGKILLed in the middle of each step, restarted, and ends in
the same state as an uninterrupted run, with no lost and no duplicated work."""

from __future__ import annotations

import copy
import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from host_service.state import STEPS
from host_service.values import SECRET_NAME
from isobuild.qemu import free_port
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
