"""Each failure class stops the bootstrap in place with its blocker: the step, what failed,
the likely cause, the next step and the output tail, on the API and on the status page."""

from __future__ import annotations

import errno
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_root, unavailable
from tests.fixtures.host_service import (
    Appliance,
    ConnectProxy,
    InProcessService,
    PublishedRelease,
    publish_release,
    setup_body,
)
from tests.fixtures.kube_api import KubeApi


def blocked(running: InProcessService, **setup: Any) -> dict[str, Any]:
    client = running.logged_in()
    response = client.post("/api/setup", setup_body(**setup))
    assert response.status_code == 202, response.text
    status = client.wait_phase("blocked", "reconciled", timeout=90)
    assert status["phase"] == "blocked", "expected a blocker, the run reconciled"
    blocker: dict[str, Any] = status["blocker"]
    assert blocker["cause"]
    assert blocker["next_step"]
    page = client.get("/status").text
    assert "Setup stopped at" in page
    assert blocker["step"] in page
    assert "hidden" not in page.split('id="blocker"')[1].split(">")[0]
    return blocker


def test_dns_failure(start_service: Any, appliance: Appliance) -> None:
    appliance.edit_settings(lambda d: d["appliance"]["registry"].update(host="registry.invalid"))
    blocker = blocked(start_service())
    assert blocker["step"] == "preflight"
    assert "DNS lookup of the registry host registry.invalid failed" in blocker["message"]
    assert "FAIL  DNS" in blocker["output"]


def test_registry_tls_not_trusted(start_service: Any, appliance: Appliance) -> None:
    appliance.edit_settings(lambda d: d["appliance"]["registry"].pop("ca_bundle"))
    blocker = blocked(start_service())
    assert blocker["step"] == "preflight"
    assert "cannot reach the registry" in blocker["message"]
    assert "CA" in blocker["cause"]
    etc = appliance.root / "etc/alga-appliance"
    assert (
        "appliance.registry.ca_bundle to its PEM file in the build config" in (blocker["next_step"])
    )
    assert f"put the PEM file at {etc}/registry-ca.pem" in blocker["next_step"]
    assert f"in {etc}/build-info.json and restart appliance-setup.service" in blocker["next_step"]


def test_damaged_image_archive(start_service: Any, appliance: Appliance) -> None:
    archive = appliance.root / "var/lib/rancher/k3s/agent/images/flux-images-amd64.tar"
    archive.write_bytes(b"truncated")
    blocker = blocked(start_service())
    assert blocker["step"] == "k3s"
    assert "installed k3s payload is incomplete" in blocker["message"]
    assert "flux-images-amd64.tar: sha256 differs" in blocker["output"]


def test_standin_k3s_binary(start_service: Any) -> None:
    blocker = blocked(start_service(k3s_version_fails=True))
    assert blocker["step"] == "k3s"
    assert "does not run" in blocker["message"]
    assert "stand-in" in blocker["cause"]
    assert "STAND-IN" in blocker["output"]


def test_k3s_unit_fails(start_service: Any) -> None:
    running = start_service(k3s_start="fail")
    blocker = blocked(running)
    assert (blocker["step"], blocker["message"]) == ("k3s", "k3s.service failed to start")
    assert "level=fatal" in blocker["output"]
    assert ["journal", "k3s.service"] in running.record.calls()


def test_k3s_never_ready(start_service: Any, appliance: Appliance) -> None:
    appliance.set_timeouts(k3s_ready=3)  # k3s hangs for good
    blocker = blocked(start_service(k3s_start="hang"))
    assert blocker["step"] == "k3s"
    assert (
        "did not become ready (waiting for k3s (active) to write its kubeconfig)"
        in (blocker["message"])
    )
    assert "Waiting for API server" in blocker["output"]


def test_two_storage_provisioners(start_service: Any, kube_api: KubeApi) -> None:
    kube_api.cluster.put({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "local-path-provisioner", "namespace": "storage"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [
            {"name": "p", "image": "rancher/local-path-provisioner:v0.0.30"}]}}},
    })  # fmt: skip
    blocker = blocked(start_service())
    assert blocker["step"] == "storage"
    assert blocker["message"] == (
        "2 local-path provisioners are installed "
        "(kube-system/local-path-provisioner, storage/local-path-provisioner)"
    )
    assert kube_api.cluster.count("persistentvolumeclaims") == 0


def test_flux_controller_never_available(
    start_service: Any, appliance: Appliance, kube_api: KubeApi
) -> None:
    appliance.set_timeouts(flux_ready=5)  # helm-controller is stuck for good
    kube_api.cluster.stuck_deployments = {"helm-controller"}
    blocker = blocked(start_service())
    assert blocker["step"] == "flux"
    assert (
        "Flux did not become ready (waiting for flux-system/helm-controller)"
        in (blocker["message"])
    )


def test_channel_without_a_release(start_service: Any, published_release: PublishedRelease) -> None:
    blocker = blocked(start_service(), channel="nightly")
    assert blocker["step"] == "release"
    assert blocker["message"].startswith("no release found for channel 'nightly'")
    assert "channel" in blocker["next_step"]


def test_tampered_release_is_refused(start_service: Any, registry: Any) -> None:
    published = publish_release(registry, "1.4.9", "tampered")
    with registry.client() as client:
        manifest = client.get_manifest("alga/alga-appliance-release", "tampered")
    registry.tamper_blob(manifest.config.digest)
    blocker = blocked(start_service(), channel="tampered")
    assert blocker["step"] == "release"
    assert "failed its digest check" in blocker["message"]
    assert published.version not in blocker["message"]  # nothing from the bad bytes is used


@pytest.mark.usefixtures("published_release")
def test_apply_refused_then_retry_finishes(start_service: Any, kube_api: KubeApi) -> None:
    kube_api.cluster.deny(
        "apply",
        "configmaps",
        name="alga-release-selection",
        code=403,
        reason="Forbidden",
        message='admission webhook "policy.example" denied the request: quota',
        times=1,
    )
    running = start_service()
    blocker = blocked(running)
    assert blocker["step"] == "apply"
    assert "applying the appliance configuration failed" in blocker["message"]
    assert 'admission webhook "policy.example" denied the request' in blocker["output"]
    client = running.logged_in()
    assert client.post("/api/retry").status_code == 202
    status = client.wait_phase("reconciled", "blocked", timeout=90)
    assert status["phase"] == "reconciled", status["blocker"]
    apply = next(s for s in status["steps"] if s["name"] == "apply")
    assert apply["attempts"] == 2
    assert next(s for s in status["steps"] if s["name"] == "k3s")["attempts"] == 1


@pytest.mark.usefixtures("published_release")
def test_helm_release_fails(start_service: Any, kube_api: KubeApi) -> None:
    kube_api.cluster.helm_releases = ("db", "alga-core")
    kube_api.cluster.failing_helm_releases = {
        "alga-core": "Helm install failed: timed out waiting for the condition"
    }
    blocker = blocked(start_service())
    assert blocker["step"] == "reconcile"
    assert blocker["message"].startswith("HelmRelease alga-core failed and Flux gave up")
    assert "Stalled=True RetriesExceeded" in blocker["output"]


def test_proxy_refuses_the_credentials(start_service: Any, connect_proxy: ConnectProxy) -> None:
    running = start_service()
    blocker = blocked(running, proxy=connect_proxy.url("ops", "wrong-password"))
    assert blocker["step"] == "preflight"
    proxy = f"127.0.0.1:{connect_proxy.port}"
    assert blocker["message"] == f"the proxy {proxy} refused the user name and password (HTTP 407)"
    assert "user name or password in the proxy URL is wrong" in blocker["cause"]
    assert blocker["next_step"].startswith("correct user:password in the proxy URL on the setup")
    assert f"FAIL  HTTPS: the proxy {proxy} answered 407 Proxy Authentication Required" in (
        blocker["output"].splitlines()
    )
    assert "wrong-password" not in str(blocker)
    assert connect_proxy.refused


def test_k3s_crash_loops_under_restart_always(start_service: Any, appliance: Appliance) -> None:
    """A stand-in k3s exits at once; with Restart=always systemd never says "failed", so the
    restart counter is what stops the wait (not the ten-minute readiness timeout)."""
    appliance.edit_settings(lambda d: d.update(standin=True))
    blocker = blocked(start_service(k3s_start="crashloop"))
    assert blocker["step"] == "k3s"
    assert blocker["message"] == "k3s.service failed to start (it exited and was restarted 2 times)"
    assert "stand-in" in blocker["cause"]
    assert "real pinned k3s artifacts" in blocker["next_step"]


@pytest.mark.usefixtures("published_release")
def test_no_helm_release_is_never_ready(
    start_service: Any, appliance: Appliance, kube_api: KubeApi
) -> None:
    """Flux applies the bundle but no HelmRelease lands where the service looks (issue 12:
    namespaces moved, or an empty bundle): the run blocks, it never reports "reconciled"."""
    kube_api.cluster.helm_releases = ()
    appliance.set_timeouts(reconcile=3)  # nothing will ever appear
    blocker = blocked(start_service())
    assert blocker["step"] == "reconcile"
    assert "HelmReleases did not become Ready" in blocker["message"]
    assert (
        "no HelmRelease of the Kustomization alga-appliance in namespace alga-system"
        in (blocker["message"])
    )


def _fill(path: Path) -> None:
    """Write ``path`` until its file system has no space left."""
    with path.open("wb", buffering=0) as out:
        while True:
            try:
                out.write(b"\0" * 4096)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return


@pytest.mark.usefixtures("published_release")
def test_a_full_disk_in_a_step_is_a_disk_blocker_not_a_bug(
    start_service: Any, appliance: Appliance
) -> None:
    """The release step's own write (the manifest it keeps under <state>/release) hits a full
    tmpfs: the blocker names the file, says the disk is full and what to free; once there is
    room a retry goes on from that step."""
    require_root("mounts a small tmpfs under the state directory to fill it")
    release_dir = appliance.state_dir / "release"
    release_dir.mkdir(parents=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(release_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {mount.stderr.strip()}")
    try:
        filler = release_dir / "filler"
        _fill(filler)
        running = start_service()
        blocker = blocked(running)
        assert blocker["step"] == "release"
        # The file the step was writing, not the temp file the write went through.
        written = re.fullmatch(
            rf"cannot write ({re.escape(str(release_dir))}/[0-9a-f]{{64}}\.json): "
            "No space left on device",
            blocker["message"],
        )
        assert written, blocker["message"]
        assert blocker["cause"] == f"the disk holding {written[1]} is full"
        assert blocker["next_step"].startswith(f"free space on it (df -h {release_dir} ")
        assert "bug" not in blocker["cause"]
        assert "Traceback" not in blocker["output"]

        filler.unlink()
        client = running.logged_in()
        assert client.post("/api/retry").status_code == 202
        status = client.wait_phase("reconciled", "blocked", timeout=90)
        assert status["phase"] == "reconciled", status["blocker"]
        release = next(s for s in status["steps"] if s["name"] == "release")
        assert release["attempts"] == 2
    finally:
        subprocess.run(["umount", "--lazy", str(release_dir)], check=False)
