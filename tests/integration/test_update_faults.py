"""The update as a resumable run: the service (its own process) is SIGKILLed inside each
update step, restarted, and the run ends where an uninterrupted one does, with every object
changed as often as an uninterrupted update changes it (nothing applied twice) and exactly one
history entry for it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from host_service.release import SERVICES, values_configmap_name
from host_service.update.state import UPDATE_STEPS
from host_service.values import SECRET_NAME
from tests.fixtures.host_service import (
    Client,
    DoublesConfig,
    ServiceProcess,
    make_appliance,
    publish_release,
    setup_body,
)
from tests.fixtures.kube_api import KubeApi, start_kube_api
from tests.fixtures.updates import (
    APP_URL,
    HELM_RELEASES,
    PROXY,
    changed_keys,
    finished,
    newer,
    own_repository,
    snapshot,
    update_changes,
    update_view,
    update_writes,
)
from tests.ports import free_port

# The Nth progress report inside each update step's run: after some of its side effects and
# before others (resolve: the manifest fetched and cached; commit: the selection and the
# inputs written, the values not yet; apply: the ConfigMaps applied, not all reported;
# source: the digest moved; reconcile: the source and Kustomization asked, not the releases).
KILL_POINTS = {
    "resolve": 2,
    "validate": 1,
    "render": 3,
    "commit": 1,
    "apply": 5,
    "source": 2,
    "reconcile": 1,
}


def test_every_update_step_has_a_kill_point() -> None:
    assert set(KILL_POINTS) == {s.value for s in UPDATE_STEPS}


@pytest.fixture
def kube(registry_pki: Any) -> Iterator[KubeApi]:
    api, stop = start_kube_api(registry_pki)
    api.cluster.helm_releases = HELM_RELEASES
    yield api
    stop()


def login(service: ServiceProcess) -> Client:
    client = Client(service.url)
    assert client.login(service.appliance.token()).status_code == 200
    return client


@pytest.mark.parametrize("step", list(KILL_POINTS))
def test_sigkill_in_each_update_step_then_restart_finishes_the_same(
    step: str, tmp_path: Path, registry: Any, kube: KubeApi
) -> None:
    appliance = make_appliance(tmp_path, registry_host=registry.host, ca_path=registry.ca_path)
    repository = own_repository(appliance)
    publish_release(registry, "3.0.0", "stable", repository=repository)
    doubles = DoublesConfig(
        record=str(appliance.work / "doubles.json"),
        root=str(appliance.root),
        kubeconfig=kube.kubeconfig(),
    ).save(appliance.work / "doubles-config.json")
    service = ServiceProcess(appliance, doubles, free_port())
    cluster = kube.cluster
    try:
        service.start()
        client = login(service)
        body = setup_body(app_url=APP_URL, proxy=PROXY, no_proxy="127.0.0.1")
        assert client.post("/api/setup", body).status_code == 202
        assert client.wait_phase("reconciled", "blocked", timeout=120)["phase"] == "reconciled"
        second = publish_release(registry, "3.1.0", "stable", repository=repository, change=newer)
        assert client.post("/api/update/check").json()["available"]
        service.stop()

        inputs = (appliance.state_dir / "setup-inputs.json").read_bytes()
        secret = cluster.find("secrets", "msp", SECRET_NAME)
        before = snapshot(cluster)
        writes_before = dict(cluster.content_changes)
        service.start(kill_update_at=f"{step}:{KILL_POINTS[step]}")
        client = login(service)
        body = {"ref": "stable", "manifest_digest": second.manifest_digest}
        assert client.post("/api/update", body).status_code == 202
        assert service.wait_exit() == -9  # killed inside the step
        interrupted = json.loads((appliance.state_dir / "update/run.json").read_text())
        assert interrupted["phase"] == "running"
        assert next(s for s in interrupted["steps"] if s["status"] != "done")["step"] == step

        service.start()
        client = login(service)
        run = update_view(client, finished)["run"]
        assert run["phase"] == "succeeded", run["blocker"]
        killed = next(s for s in run["steps"] if s["step"] == step)
        assert killed["attempts"] == 2

        after = snapshot(cluster)
        assert changed_keys(before, after) == set(update_changes())
        assert update_writes(cluster, writes_before) == update_changes()
        source = after["source.toolkit.fluxcd.io/ocirepositories/flux-system/alga-appliance"]
        assert source["spec"]["ref"] == {"digest": second.config_digest}
        for service_name in SERVICES:
            cm = after[f"/configmaps/alga-system/{values_configmap_name(service_name)}"]
            assert f"appUrl: {APP_URL}" in cm["data"]["values.yaml"]
            assert "applianceRelease: 3.1.0" in cm["data"]["values.yaml"]
        assert cluster.find("secrets", "msp", SECRET_NAME)["data"] == secret["data"]
        assert (appliance.state_dir / "setup-inputs.json").read_bytes() == inputs
        selection = json.loads((appliance.state_dir / "release-selection.json").read_text())
        assert selection["manifest_digest"] == second.manifest_digest
        history = client.get("/api/update/history").json()["history"]
        assert [(h["kind"], h["outcome"]) for h in history] == [
            ("update", "succeeded"),
            ("install", "succeeded"),
        ]
    finally:
        service.stop()
