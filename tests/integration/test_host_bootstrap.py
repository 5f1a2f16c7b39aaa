"""The service over real HTTP: the full bootstrap to "reconciled" against the real registry and
the real kubectl driving the API stand-in, with systemd and k3s doubles that record their calls.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import yaml

from host_service.release import SERVICES, values_configmap_name
from host_service.values import GENERATED_SECRET_KEYS, SECRET_NAME
from tests.fixtures.host_service import (
    ConnectProxy,
    InProcessService,
    PublishedRelease,
    setup_body,
)
from tests.fixtures.kube_api import KubeApi


def configmap(kube_api: KubeApi, name: str) -> dict[str, Any]:
    obj = kube_api.cluster.find("configmaps", "alga-system", name)
    assert obj is not None, name
    return obj


def test_full_bootstrap_reaches_reconciled(
    start_service: Any, kube_api: KubeApi, published_release: PublishedRelease
) -> None:
    cluster = kube_api.cluster
    cluster.helm_releases = ("db", "redis", "alga-core")
    running: InProcessService = start_service()
    client = running.logged_in()
    assert client.post("/api/setup", setup_body()).status_code == 202

    status = client.wait_phase("reconciled", "blocked", timeout=120)
    assert status["phase"] == "reconciled", status["blocker"]
    assert [s["status"] for s in status["steps"]] == ["done"] * 9
    assert status["app_url"] == "https://psa.example.com"
    assert status["release"]["version"] == "1.4.0"
    assert status["release"]["manifest_digest"] == published_release.manifest_digest
    reconcile = status["steps"][-1]["details"]
    for name in cluster.helm_releases:
        assert f"HelmRelease {name} Ready" in reconcile

    # What the doubles were asked: the binary checked, one daemon-reload, one start.
    calls = running.record.calls()
    assert [c[0] for c in calls] == ["k3s-version", "daemon-reload", "enable-now"]
    assert calls[2] == ["enable-now", "k3s.service"]

    root = running.appliance.root
    assert (root / "etc/rancher/k3s/k3s.yaml").stat().st_mode & 0o777 == 0o600
    config = yaml.safe_load((root / "etc/rancher/k3s/config.yaml").read_text())
    assert config == {"write-kubeconfig-mode": "0600", "disable": ["traefik", "servicelb"]}
    assert (root / "etc/systemd/system/k3s.service").read_text().count("ExecStart=") == 1
    state = root / "var/lib/alga-appliance"
    assert state.stat().st_mode & 0o777 == 0o700
    for name in (
        "setup-token",
        "session-key",
        "setup-inputs.json",
        "bootstrap-state.json",
        "release-selection.json",
    ):
        assert (state / name).stat().st_mode & 0o777 == 0o600, name
    selection = json.loads((state / "release-selection.json").read_text())
    assert selection["manifest_digest"] == published_release.manifest_digest
    assert selection["app_url"] == "https://psa.example.com"
    issue = (root / "etc/issue").read_text()
    assert running.appliance.token() in issue
    assert "Application:  https://psa.example.com" in issue  # the console shows the app

    # The cluster: namespaces, values with the operator's URL, selection, secret, source.
    for ns in ("flux-system", "alga-system", "msp"):
        assert cluster.find("namespaces", None, ns) is not None
    for service in SERVICES:
        values = yaml.safe_load(
            configmap(kube_api, values_configmap_name(service))["data"]["values.yaml"]
        )
        assert values["global"]["appUrl"] == "https://psa.example.com"
    core = yaml.safe_load(configmap(kube_api, "alga-values-alga-core")["data"]["values.yaml"])
    assert core["image"] == {"repository": "ghcr.io/nine-minds/alga-psa", "tag": "1.4.0"}
    selection_cm = configmap(kube_api, "alga-release-selection")["data"]
    assert selection_cm["manifestDigest"] == published_release.manifest_digest
    assert selection_cm["configDigest"] == published_release.config_digest
    secret = cluster.find("secrets", "msp", SECRET_NAME)
    assert secret is not None
    assert set(secret["data"]) == set(GENERATED_SECRET_KEYS)
    source = cluster.find(
        "ocirepositories", "flux-system", "alga-appliance", group="source.toolkit.fluxcd.io"
    )
    assert source is not None
    assert source["spec"]["ref"] == {"digest": published_release.config_digest}
    assert source["spec"]["certSecretRef"] == {"name": "alga-appliance-registry-ca"}
    assert source["spec"]["url"].startswith("oci://127.0.0.1:")
    managers = {m["manager"] for m in source["metadata"]["managedFields"]}
    assert managers == {"alga-appliance"}
    # Issue 12: every chart through its own source, by the manifest's digest, with the
    # bundle source's CA (a Secret of the same name in the charts' namespace).
    charts = published_release.document["charts"]
    assert cluster.count("ocirepositories", "alga-system", "source.toolkit.fluxcd.io") == len(
        charts
    )
    for chart, pin in charts.items():
        chart_source = cluster.find(
            "ocirepositories", "alga-system", f"alga-chart-{chart}", "source.toolkit.fluxcd.io"
        )
        assert chart_source is not None, chart
        assert chart_source["spec"]["url"] == f"oci://{pin['repository']}"
        assert chart_source["spec"]["ref"] == {"digest": pin["digest"]}
        assert chart_source["spec"]["layerSelector"] == {
            "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            "operation": "copy",
        }
        assert chart_source["spec"]["certSecretRef"] == {"name": "alga-appliance-registry-ca"}
        assert "proxySecretRef" not in chart_source["spec"]
        ready = chart_source["status"]["conditions"][0]
        assert (ready["type"], ready["status"]) == ("Ready", "True")
    ca = cluster.find("secrets", "alga-system", "alga-appliance-registry-ca")
    assert ca is not None
    assert (
        ca["data"] == cluster.find("secrets", "flux-system", "alga-appliance-registry-ca")["data"]
    )
    # The storage smoke test cleaned up after itself.
    assert cluster.count("persistentvolumeclaims") == 0
    assert cluster.count("persistentvolumes") == 0
    assert cluster.find("pods", "kube-system", "appliance-storage-smoke") is None


def test_a_foreign_failing_helm_release_beside_ours_does_not_block_the_run(
    start_service: Any, kube_api: KubeApi, published_release: PublishedRelease
) -> None:
    """Reconcile waits for the HelmReleases of our Kustomization only (its label selector):
    one another tool keeps in the same namespace, failed for good, is none of its business."""
    cluster = kube_api.cluster
    cluster.helm_releases = ("db", "alga-core")
    cluster.foreign_helm_releases = ("someone-elses-app",)
    cluster.failing_helm_releases = {"someone-elses-app": "Helm install failed: image pull"}
    running: InProcessService = start_service()
    client = running.logged_in()
    assert client.post("/api/setup", setup_body()).status_code == 202
    status = client.wait_phase("reconciled", "blocked", timeout=120)
    assert status["phase"] == "reconciled", status["blocker"]
    foreign = cluster.find(
        "helmreleases", "alga-system", "someone-elses-app", group="helm.toolkit.fluxcd.io"
    )
    assert foreign is not None  # it was there, and failed, while reconcile ran
    stalled = [c for c in foreign["status"]["conditions"] if c["type"] == "Stalled"]
    assert [c["status"] for c in stalled] == ["True"]
    details = "\n".join(status["steps"][-1]["details"])
    assert "HelmRelease db Ready" in details
    assert "HelmRelease alga-core Ready" in details
    assert "someone-elses-app" not in details


def test_new_inputs_rerender_and_keep_generated_secrets(
    start_service: Any, kube_api: KubeApi, published_release: PublishedRelease
) -> None:
    """Submitting setup again re-probes every step, re-renders values with the new URL and
    keeps the generated secrets: operator intent wins, generated state is kept."""
    running: InProcessService = start_service()
    client = running.logged_in()
    client.post("/api/setup", setup_body())
    assert client.wait_phase("reconciled", "blocked", timeout=120)["phase"] == "reconciled"
    cluster = kube_api.cluster
    secret_before = cluster.find("secrets", "msp", SECRET_NAME)
    assert secret_before is not None

    response = client.post("/api/setup", setup_body(app_url="https://psa2.example.com"))
    assert response.status_code == 202
    status = client.wait_phase("reconciled", "blocked", timeout=120)
    assert status["phase"] == "reconciled", status["blocker"]
    assert status["run"] == 2
    done = {s["name"]: s["already_done"] for s in status["steps"]}
    # k3s, storage, flux and the release were verified, not redone.
    assert done["k3s"]
    assert done["storage"]
    assert done["flux"]
    assert done["release"]
    assert not done["values"]
    assert not done["apply"]
    assert [c[0] for c in running.record.calls()].count("enable-now") == 1
    values = yaml.safe_load(configmap(kube_api, "alga-values-alga-core")["data"]["values.yaml"])
    assert values["global"]["appUrl"] == "https://psa2.example.com"
    assert cluster.find("secrets", "msp", SECRET_NAME)["data"] == secret_before["data"]


def test_proxy_credentials_reach_flux_but_nothing_else(
    start_service: Any, kube_api: KubeApi, published_release: PublishedRelease
) -> None:
    running: InProcessService = start_service()
    client = running.logged_in()
    # The registry is on loopback, so it is exempt: the run must still go to the end.
    body = setup_body(proxy="http://ops:pw-Zq81@proxy.invalid:3128", no_proxy="127.0.0.1")
    assert client.post("/api/setup", body).status_code == 202
    status = client.wait_phase("reconciled", "blocked", timeout=120)
    assert status["phase"] == "reconciled", status["blocker"]
    assert status["setup"]["proxy"] == "http://ops@proxy.invalid:3128"
    assert status["setup"]["proxy_password_set"] is True
    proxy = kube_api.cluster.find("secrets", "flux-system", "alga-appliance-proxy")
    assert proxy is not None
    assert base64.b64decode(proxy["data"]["password"]).decode() == "pw-Zq81"
    # The charts go through the same proxy (issue 12: they bypassed it).
    chart_proxy = kube_api.cluster.find("secrets", "alga-system", "alga-appliance-proxy")
    assert chart_proxy is not None
    assert chart_proxy["data"] == proxy["data"]
    for chart in published_release.document["charts"]:
        source = kube_api.cluster.find(
            "ocirepositories", "alga-system", f"alga-chart-{chart}", "source.toolkit.fluxcd.io"
        )
        assert source is not None
        assert source["spec"]["proxySecretRef"] == {"name": "alga-appliance-proxy"}
    root = running.appliance.root
    env = root / "etc/systemd/system/k3s.service.env"
    assert env.stat().st_mode & 0o777 == 0o600
    assert "HTTPS_PROXY=" in env.read_text()
    for path in (root / "var/lib/alga-appliance").rglob("*"):
        if path.is_file() and path.name != "setup-inputs.json":
            assert b"pw-Zq81" not in path.read_bytes(), path
    assert "pw-Zq81" not in client.get("/api/setup").text
    assert "pw-Zq81" not in client.get("/status").text


def test_bootstrap_through_an_authenticating_proxy(
    start_service: Any, published_release: PublishedRelease, connect_proxy: ConnectProxy
) -> None:
    """Preflight and the release fetch go through the operator's proxy, with its credentials;
    nothing reaches the registry around it."""
    running: InProcessService = start_service()
    client = running.logged_in()
    body = setup_body(proxy=connect_proxy.url("ops", "pw-proxy-7"))
    assert client.post("/api/setup", body).status_code == 202
    status = client.wait_phase("reconciled", "blocked", timeout=120)
    assert status["phase"] == "reconciled", status["blocker"]
    registry = status["release"]["repository"].split("/")[0]
    # Preflight's /v2/ check, the release manifest and its config blob, and the token realm.
    assert connect_proxy.tunnels.count(registry) >= 2
    assert connect_proxy.refused == []
    assert "via the proxy" in " ".join(status["steps"][0]["details"])
