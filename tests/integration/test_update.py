"""Release-based updates against the real registry (a second release pushed to the channel)
and the API stand-in with the real kubectl: A -> B patches exactly what changed, keeps every
operator input and generated secret, moves the source digest and records history; a
downgrade is refused unless forced; failing updates (a HelmRelease never Ready, a tampered
manifest) stop in place with a blocker; retry; the update state survives a restart."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from host_service.oci import sha256_digest
from host_service.release import SERVICES, canonical_json, values_configmap_name
from host_service.values import SECRET_NAME
from tests.fixtures.host_service import (
    Appliance,
    Client,
    InProcessService,
    PublishedRelease,
    publish_release,
    setup_body,
)
from tests.fixtures.kube_api import KubeApi, KubeCluster
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


def installed(
    appliance: Appliance, start_service: Any, kube_api: KubeApi, registry: Any
) -> tuple[InProcessService, Client, PublishedRelease, str]:
    """Release A installed through the bootstrap, with a proxy and an app URL of the
    operator's; returns the service, a logged-in client, A and the release repository."""
    repository = own_repository(appliance)
    first = publish_release(registry, "3.0.0", "stable", repository=repository)
    kube_api.cluster.helm_releases = HELM_RELEASES
    running: InProcessService = start_service()
    client = running.logged_in()
    body = setup_body(app_url=APP_URL, proxy=PROXY, no_proxy="127.0.0.1")
    assert client.post("/api/setup", body).status_code == 202
    status = client.wait_phase("reconciled", "blocked", timeout=120)
    assert status["phase"] == "reconciled", status["blocker"]
    return running, client, first, repository


def configmap_values(cluster: KubeCluster, service: str) -> dict[str, Any]:
    cm = cluster.find("configmaps", "alga-system", values_configmap_name(service))
    assert cm is not None
    values: dict[str, Any] = yaml.safe_load(cm["data"]["values.yaml"])
    return values


def test_update_a_to_b_then_a_forced_downgrade(
    appliance: Appliance, start_service: Any, kube_api: KubeApi, registry: Any
) -> None:
    running, client, first, repository = installed(appliance, start_service, kube_api, registry)
    cluster = kube_api.cluster
    inputs_before = json.loads((appliance.state_dir / "setup-inputs.json").read_text())
    secret_before = cluster.find("secrets", "msp", SECRET_NAME)
    proxy_before = cluster.find("secrets", "flux-system", "alga-appliance-proxy")
    assert client.post("/api/update/check").json()["relation"] == "same"

    second = publish_release(registry, "3.1.0", "stable", repository=repository, change=newer)
    check = client.post("/api/update/check").json()
    assert check["available"] is True
    assert check["latest"]["version"] == "3.1.0"
    assert check["latest"]["manifest_digest"] == second.manifest_digest
    assert client.status()["update"]["available"] is True

    preview = client.post("/api/update/preview", {"ref": "stable"}).json()
    assert preview["kind"] == "update"
    assert preview["relation"] == "newer"
    rows = {(s, r["name"]): r for s, rs in preview["diff"]["sections"].items() for r in rs}
    assert rows[("release", "version")]["changed"]
    chart_row = rows[("charts", "alga-core")]
    assert chart_row["changed"] is True
    # A chart shows as "<version> (<digest>)": a new digest at the same version is a change.
    assert chart_row["running"].startswith("1.0.0 (sha256:")
    assert chart_row["candidate"].startswith("1.1.0 (sha256:")
    assert not rows[("charts", "db")]["changed"]
    assert rows[("config bundle", "digest")]["candidate"] == second.config_digest
    assert rows[("images", "algaCore")]["candidate"].endswith(":3.1.0")
    files = {f["name"]: f for f in preview["diff"]["profile_values"]}
    assert files["alga-core.single-node.yaml"]["changed"]
    assert not files["db.single-node.yaml"]["changed"]
    lines = files["alga-core.single-node.yaml"]["lines"]
    assert ["replace", 1, "replicaCount: 1", 1, "replicaCount: 2"] in lines
    assert ["replace", None, "", 2, "workers: 4"] in lines

    before = snapshot(cluster)
    changes_before = dict(cluster.content_changes)
    started = client.post(
        "/api/update", {"ref": "stable", "manifest_digest": second.manifest_digest}
    )
    assert started.status_code == 202, started.text
    view = update_view(client, finished)
    run = view["run"]
    assert run["phase"] == "succeeded", run["blocker"]
    assert [s["status"] for s in run["steps"]] == ["done"] * 7
    reconcile_details = run["steps"][-1]["details"]
    for name in HELM_RELEASES:
        assert f"HelmRelease {name} Ready" in reconcile_details

    # Exactly what changed: every values ConfigMap (the release version is in each), the
    # selection, the source's digest; the reconcile requests on the Flux objects. Nothing else.
    after = snapshot(cluster)
    assert changed_keys(before, after) == set(update_changes())
    assert update_writes(cluster, changes_before) == update_changes()
    source = after["source.toolkit.fluxcd.io/ocirepositories/flux-system/alga-appliance"]
    assert source["spec"]["ref"] == {"digest": second.config_digest}
    kustomization = before["kustomize.toolkit.fluxcd.io/kustomizations/flux-system/alga-appliance"]
    assert (
        after["kustomize.toolkit.fluxcd.io/kustomizations/flux-system/alga-appliance"]["spec"]
        == kustomization["spec"]
    )

    # Operator intent survived: the app URL (in every values ConfigMap), the proxy, the inputs.
    for service in SERVICES:
        values = configmap_values(cluster, service)
        assert values["global"]["appUrl"] == APP_URL, service
        assert values["global"]["applianceRelease"] == "3.1.0"
    assert configmap_values(cluster, "alga-core")["image"]["tag"] == "3.1.0"
    assert configmap_values(cluster, "alga-core")["workers"] == 4
    assert json.loads((appliance.state_dir / "setup-inputs.json").read_text()) == inputs_before
    assert cluster.find("secrets", "msp", SECRET_NAME)["data"] == secret_before["data"]
    proxy = cluster.find("secrets", "flux-system", "alga-appliance-proxy")
    assert proxy is not None
    assert proxy["data"] == proxy_before["data"]
    assert client.status()["app_url"] == APP_URL
    assert f"Application:  {APP_URL}" in (appliance.root / "etc/issue").read_text()
    selection = json.loads((appliance.state_dir / "release-selection.json").read_text())
    assert selection["manifest_digest"] == second.manifest_digest
    assert selection["app_url"] == APP_URL

    history = client.get("/api/update/history").json()["history"]
    assert [h["kind"] for h in history] == ["update", "install"]
    entry = history[0]
    assert entry["from"]["manifest_digest"] == first.manifest_digest
    assert entry["to"]["manifest_digest"] == second.manifest_digest
    assert entry["to"]["config_digest"] == second.config_digest
    assert entry["outcome"] == "succeeded"
    assert entry["requested_by"].startswith("session ")

    # Back to A: a downgrade, refused unless forced, then an update like any other (a pin).
    preview = client.post("/api/update/preview", {"ref": "3.0.0"}).json()
    assert preview["downgrade"] is True
    body = {"ref": "3.0.0", "manifest_digest": first.manifest_digest}
    refused = client.post("/api/update", body)
    assert refused.status_code == 409
    assert "older than the running 3.1.0" in refused.json()["error"]
    assert "force" in refused.json()["error"]
    assert client.post("/api/update", {**body, "force": True}).status_code == 202
    view = update_view(client, lambda v: finished(v) and v["run"]["target"]["version"] == "3.0.0")
    assert view["run"]["phase"] == "succeeded", view["run"]["blocker"]
    inputs = json.loads((appliance.state_dir / "setup-inputs.json").read_text())
    assert inputs == {**inputs_before, "channel": None, "release": "3.0.0"}
    assert configmap_values(cluster, "alga-core")["global"]["appUrl"] == APP_URL
    source_now = cluster.find(
        "ocirepositories", "flux-system", "alga-appliance", group="source.toolkit.fluxcd.io"
    )
    assert source_now["spec"]["ref"] == {"digest": first.config_digest}
    history = client.get("/api/update/history").json()["history"]
    assert [(h["kind"], h["outcome"], h["force"]) for h in history] == [
        ("pin", "succeeded", True),
        ("update", "succeeded", False),
        ("install", "succeeded", False),
    ]
    # The history is on disk and survives a restart of the service.
    running.stop()
    again = start_service()
    assert again.logged_in().get("/api/update/history").json()["history"] == history


def test_a_helm_release_never_ready_stops_in_place_then_retry(
    appliance: Appliance, start_service: Any, kube_api: KubeApi, registry: Any
) -> None:
    appliance.set_timeouts(reconcile=4)
    _, client, _, repository = installed(appliance, start_service, kube_api, registry)
    cluster = kube_api.cluster
    second = publish_release(registry, "3.1.0", "stable", repository=repository, change=newer)
    assert client.post("/api/update/check").json()["available"]
    secret_before = cluster.find("secrets", "msp", SECRET_NAME)
    cluster.stuck_helm_releases = {"alga-core"}
    body = {"ref": "stable", "manifest_digest": second.manifest_digest}
    assert client.post("/api/update", body).status_code == 202
    run = update_view(client, finished)["run"]
    assert run["phase"] == "blocked"
    blocker = run["blocker"]
    assert blocker["step"] == "reconcile"
    assert "HelmReleases did not become Ready" in blocker["message"]
    assert "alga-core" in blocker["message"]
    assert blocker["cause"]
    assert "support bundle" in blocker["next_step"]
    assert "HelmRelease alga-system/alga-core" in blocker["output"]
    # Stopped in place: B is applied, nothing rolled back, secrets and inputs untouched.
    source = cluster.find(
        "ocirepositories", "flux-system", "alga-appliance", group="source.toolkit.fluxcd.io"
    )
    assert source["spec"]["ref"] == {"digest": second.config_digest}
    assert cluster.find("secrets", "msp", SECRET_NAME)["data"] == secret_before["data"]
    assert configmap_values(cluster, "alga-core")["global"]["appUrl"] == APP_URL
    history = client.get("/api/update/history").json()["history"]
    assert (history[0]["outcome"], history[0]["blocked_at"]) == ("blocked", "reconcile")
    page = client.get("/update").text
    assert 'id="update-bundle"' in page
    assert "HelmReleases did not become Ready" in page
    # A second update while blocked is fine; retry after the cause is fixed finishes it.
    cluster.stuck_helm_releases = set()
    assert client.post("/api/update/retry").status_code == 202
    run = update_view(client, lambda v: v["run"]["phase"] != "running")["run"]
    assert run["phase"] == "succeeded", run["blocker"]
    assert client.get("/api/update/history").json()["history"][0]["outcome"] == "succeeded"


def test_a_tampered_manifest_stops_before_anything_changes(
    appliance: Appliance, start_service: Any, kube_api: KubeApi, registry: Any
) -> None:
    _, client, _, repository = installed(appliance, start_service, kube_api, registry)
    cluster = kube_api.cluster
    second = publish_release(registry, "3.1.0", "stable", repository=repository, change=newer)
    assert client.post("/api/update/check").json()["available"]
    # Between the check and the update, the manifest's bytes in the registry are corrupted.
    registry.tamper_blob(sha256_digest(canonical_json(second.document)))
    state = appliance.state_dir
    files_before = {
        p.relative_to(state).as_posix(): p.read_bytes() for p in (state / "values").glob("*.yaml")
    }
    inputs_before = (state / "setup-inputs.json").read_bytes()
    resolution_before = (state / "release/resolution.json").read_bytes()
    before = snapshot(cluster)
    body = {"ref": "stable", "manifest_digest": second.manifest_digest}
    assert client.post("/api/update", body).status_code == 202
    run = update_view(client, finished)["run"]
    assert run["phase"] == "blocked"
    assert run["blocker"]["step"] == "resolve"
    assert "failed its digest check" in run["blocker"]["message"]
    assert "do not bypass this" in run["blocker"]["next_step"]
    assert snapshot(cluster) == before
    assert (state / "setup-inputs.json").read_bytes() == inputs_before
    assert (state / "release/resolution.json").read_bytes() == resolution_before
    assert {
        p.relative_to(state).as_posix(): p.read_bytes() for p in (state / "values").glob("*.yaml")
    } == files_before
    history = client.get("/api/update/history").json()["history"]
    assert (history[0]["outcome"], history[0]["blocked_at"]) == ("blocked", "resolve")
    assert history[0]["to"]["manifest_digest"] == second.manifest_digest


@pytest.mark.usefixtures("published_release")
def test_update_requests_are_validated_and_refused_when_they_do_not_fit(
    start_service: Any, kube_api: KubeApi
) -> None:
    running: InProcessService = start_service()
    client = running.logged_in()
    digest = "sha256:" + "0" * 64
    refused = client.post("/api/update", {"ref": "stable", "manifest_digest": digest})
    assert refused.status_code == 409
    assert "awaiting-setup" in refused.json()["error"]
    bad = client.post("/api/update", {"ref": "", "manifest_digest": "x", "force": "no"})
    assert bad.status_code == 400
    assert set(bad.json()["fields"]) == {"ref", "manifest_digest", "force"}
    bad = client.post("/api/update/preview", {"ref": "Not A Ref!", "x": 1})
    assert bad.status_code == 400
    assert set(bad.json()["fields"]) == {"ref", "x"}
    bad = client.post("/api/update", {"ref": "Not A Channel/../x", "manifest_digest": digest})
    assert (bad.status_code, set(bad.json()["fields"])) == (400, {"ref"})
    assert running.client().get("/api/update").status_code == 401
