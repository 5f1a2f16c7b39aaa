"""``reset-data`` and ``repair-release`` on a bootstrapped appliance (real registry, real
kubectl against the API stand-in), as the commands a technician types: the guard, the dry
run, what remains (a fresh install's tree), journal logging; re-applying the recorded
selection after drift, even when the channel moved on; clear failures."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from host_service.values import SECRET_NAME
from tests.fixtures.host_service import (
    PROJECT,
    Appliance,
    InProcessService,
    make_appliance,
    publish_release,
    setup_body,
    start_in_process,
)
from tests.fixtures.kube_api import KubeApi

HELM_RELEASES = ("db", "alga-core")
# Written by the k3s step; k3s stays installed through a reset (its env loses the proxy).
K3S_FILES = ("etc/rancher/", "etc/systemd/")
TOKEN = re.compile(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){4}")


def cli(
    appliance: Appliance, *args: str, stdin: str = "", journal: Path | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "host_service", *args, "--root", str(appliance.root)]
    argv += ["--settings", str(appliance.settings_file)]
    if journal is not None:
        argv += ["--journal-socket", str(journal)]
    return subprocess.run(
        argv,
        cwd=PROJECT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        check=False,
    )


@dataclass
class Journal:
    """A syslog datagram socket standing in for /dev/log, read as journald would (all the
    time: a unix datagram queue holds only a few messages before senders block)."""

    path: Path
    messages: list[str] = field(default_factory=list)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    path = tmp_path / "journal.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    found = Journal(path)
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                found.messages.append(sock.recv(65536).decode())
            except TimeoutError:
                continue

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    yield found
    stop.set()
    reader.join(5)
    sock.close()


def tree(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file and directory under ``root``: mode, and content (hashed) for files."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix() + ("/" if path.is_dir() else "")
        if rel.startswith(skip):
            continue
        mode = f"{path.lstat().st_mode & 0o7777:04o}"
        if path.is_file():
            text = path.read_bytes()
            if path.name in ("setup-token", "issue"):
                text = TOKEN.sub("<token>", text.decode()).encode()
            if path.name == "build-info.json":  # names this test's work directory
                text = b"<build-info>"
            if path.name == "host-service.lock":  # the pid of whoever held it last
                text = b"<pid>"
            if path.name == "bootstrap-state.json":  # owner, times: what is not the state
                doc = json.loads(text)
                steps = [(r["step"], r["status"]) for r in doc["steps"]]
                text = json.dumps([doc["phase"], doc["run"], doc["blocker"], steps]).encode()
            out[rel] = f"{mode} {hashlib.sha256(text).hexdigest()[:16]}"
        else:
            out[rel] = mode
    return out


def bootstrap(running: InProcessService, **overrides: Any) -> dict[str, Any]:
    client = running.logged_in()
    assert client.post("/api/setup", setup_body(**overrides)).status_code == 202
    status = client.wait_phase("reconciled", "blocked", timeout=120)
    assert status["phase"] == "reconciled", status["blocker"]
    return status


def plant_volume(kube_api: KubeApi, appliance: Appliance, claim: str) -> Path:
    """A bound claim in msp, its volume, and the data local-path keeps for it on the host."""
    cluster = kube_api.cluster
    pvc = cluster.put(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": "msp"},
            "spec": {
                "storageClassName": "local-path",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "8Gi"}},
            },
            "status": {"phase": "Bound"},
        }
    )
    volume = f"pvc-{pvc['metadata']['uid']}"
    where = f"/var/lib/rancher/k3s/storage/{volume}_msp_{claim}"
    cluster.put(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume},
            "spec": {
                "storageClassName": "local-path",
                "claimRef": {"namespace": "msp", "name": claim},
                "persistentVolumeReclaimPolicy": "Delete",
                "hostPath": {"path": where},
            },
        }
    )
    pvc["spec"]["volumeName"] = volume
    cluster.put(pvc)
    data = appliance.root / where.lstrip("/")
    (data / "base").mkdir(parents=True)
    (data / "base/16384").write_bytes(b"postgres page with customer data" * 64)
    return data


def fresh_tree(tmp_path: Path, registry: Any, kube_api: KubeApi) -> dict[str, str]:
    """A freshly installed appliance after its first start: the tree a reset must leave."""
    from tests.fixtures.host_service import DoublesConfig

    fresh = make_appliance(
        tmp_path / "fresh", registry_host=registry.host, ca_path=registry.ca_path
    )
    doubles = DoublesConfig(record=str(fresh.work / "d.json"), root=str(fresh.root))
    running = start_in_process(fresh, doubles)
    running.stop()
    return tree(fresh.root, skip=K3S_FILES)


@pytest.mark.usefixtures("published_release")
def test_reset_data_guarded_dry_run_then_back_to_a_fresh_install(
    appliance: Appliance,
    start_service: Any,
    kube_api: KubeApi,
    registry: Any,
    tmp_path: Path,
    journal: Journal,
) -> None:
    cluster = kube_api.cluster
    cluster.helm_releases = HELM_RELEASES
    running: InProcessService = start_service()
    bootstrap(running, proxy="http://ops:pw-Reset9@proxy.invalid:3128", no_proxy="127.0.0.1")
    old_secret = cluster.find("secrets", "msp", SECRET_NAME)
    assert old_secret is not None
    data = plant_volume(kube_api, appliance, "data-db-0")
    state = appliance.state_dir
    (state / "support").mkdir(exist_ok=True)
    (state / "support/support-bundle-20250101-000000.tar.gz").write_bytes(b"old bundle")
    old_token = appliance.token()

    # While the service runs it holds the state: the command refuses, nothing changes.
    busy = cli(appliance, "reset-data", "--yes")
    assert busy.returncode == 4
    assert "another host service process is running" in busy.stderr
    running.stop()

    before = tree(appliance.root)
    objects_before = len(cluster.objects)
    dry = cli(appliance, "reset-data", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    for expected in (
        "Kustomization flux-system/alga-appliance",
        "OCIRepository flux-system/alga-appliance",
        "HelmRelease alga-system/alga-core",
        "PersistentVolumeClaim msp/data-db-0 (application data: 8Gi",
        "Namespace msp",
        "Namespace alga-system",
        "Secret flux-system/alga-appliance-proxy",
        f"{data}/ (volume data, 2048 bytes)",
        str(state / "setup-inputs.json"),
        str(state / "support") + "/",
        "rotate the setup token",
        "remove the proxy",
        "dry run: nothing was deleted",
    ):
        assert expected in dry.stdout, expected
    assert old_token not in dry.stdout
    assert tree(appliance.root) == before
    assert len(cluster.objects) == objects_before

    refused = cli(appliance, "reset-data", stdin="yes\n")
    assert refused.returncode == 3
    assert "not confirmed; nothing was deleted" in refused.stderr
    assert tree(appliance.root) == before

    done = cli(appliance, "reset-data", stdin="RESET\n", journal=journal.path)
    assert done.returncode == 0, done.stderr
    assert "back to freshly installed" in done.stdout
    logged = journal.messages
    assert any("reset-data: started" in m for m in logged)
    assert any("deleting Namespace msp" in m for m in logged)
    assert any("reset-data: done" in m for m in logged)
    assert all("pw-Reset9" not in m for m in logged)

    # The cluster: no application, no source, no proxy credentials; k3s and Flux stay.
    for plural, namespace, name, group in (
        ("namespaces", None, "msp", ""),
        ("namespaces", None, "alga-system", ""),
        ("kustomizations", "flux-system", "alga-appliance", "kustomize.toolkit.fluxcd.io"),
        ("ocirepositories", "flux-system", "alga-appliance", "source.toolkit.fluxcd.io"),
        ("secrets", "flux-system", "alga-appliance-proxy", ""),
    ):
        assert cluster.find(plural, namespace, name, group) is None, name
    assert cluster.count("persistentvolumes") == 0
    assert cluster.count("helmreleases") == 0
    assert cluster.find("namespaces", None, "flux-system") is not None
    # The host: a new token, and after the service's next start exactly the tree of a fresh
    # install after its first start (k3s' own files apart: k3s stays installed).
    assert not data.exists()
    assert appliance.token() != old_token
    assert "pw-Reset9" not in (appliance.root / "etc/systemd/system/k3s.service.env").read_text()
    again = start_service()
    after = tree(appliance.root, skip=(*K3S_FILES, "var/lib/rancher/k3s/storage/"))
    assert after == fresh_tree(tmp_path, registry, kube_api)

    # A new setup starts from nothing: new generated secrets, nothing old mixed in.
    bootstrap(again)
    new_secret = cluster.find("secrets", "msp", SECRET_NAME)
    assert new_secret is not None
    assert set(new_secret["data"].values()).isdisjoint(old_secret["data"].values())


def own_repository(appliance: Appliance) -> str:
    """A release repository of this test's own, so its channel moves touch no other test."""
    repository = f"alga/t{secrets.token_hex(4)}-release"
    appliance.edit_settings(
        lambda d: d["appliance"]["registry"].update(release_repository=repository)
    )
    return repository


def test_repair_release_reapplies_the_recorded_selection_not_the_channel(
    appliance: Appliance,
    start_service: Any,
    kube_api: KubeApi,
    registry: Any,
    journal: Journal,
) -> None:
    repository = own_repository(appliance)
    first = publish_release(registry, "2.0.0", "stable", repository=repository)
    cluster = kube_api.cluster
    cluster.helm_releases = HELM_RELEASES
    running: InProcessService = start_service()
    bootstrap(running)
    secret_before = cluster.find("secrets", "msp", SECRET_NAME)
    values_before = cluster.find("configmaps", "alga-system", "alga-values-alga-core")
    assert values_before is not None
    running.stop()

    # The channel moves on, and the cluster drifts: edited values, a deleted source, a lost
    # manifest cache.
    publish_release(registry, "2.1.0", "stable", repository=repository)
    drifted = dict(values_before)
    drifted["data"] = {"values.yaml": "global:\n  appUrl: https://wrong.example.com\n"}
    cluster.put(drifted)
    cluster.delete(
        cluster.resource("source.toolkit.fluxcd.io", "ocirepositories"),
        "flux-system",
        "alga-appliance",
    )
    for cached in (appliance.state_dir / "release").glob("*.json"):
        if cached.name != "resolution.json":
            cached.unlink()

    done = cli(appliance, "repair-release", journal=journal.path)
    assert done.returncode == 0, done.stderr
    assert "fetching it again by its digest" in done.stdout
    assert "HelmRelease alga-core Ready" in done.stdout
    assert "done: release 2.0.0 is applied again" in done.stdout
    assert any("repair-release: started" in m for m in journal.messages)

    source = cluster.find(
        "ocirepositories", "flux-system", "alga-appliance", group="source.toolkit.fluxcd.io"
    )
    assert source is not None
    assert source["spec"]["ref"] == {"digest": first.config_digest}
    values = cluster.find("configmaps", "alga-system", "alga-values-alga-core")
    assert values is not None
    assert values["data"] == values_before["data"]
    assert cluster.find("secrets", "msp", SECRET_NAME)["data"] == secret_before["data"]
    for name in HELM_RELEASES:
        hr = cluster.find("helmreleases", "alga-system", name, group="helm.toolkit.fluxcd.io")
        assert hr is not None
        requested = hr["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
        assert hr["status"]["lastHandledReconcileAt"] == requested
    selection = json.loads((appliance.state_dir / "release-selection.json").read_text())
    assert selection["manifest_digest"] == first.manifest_digest
    core = yaml.safe_load(values["data"]["values.yaml"])
    assert core["image"]["tag"] == "2.0.0"
    history = json.loads((appliance.state_dir / "update/history.json").read_text())
    repair = history[-1]
    assert (repair["kind"], repair["outcome"]) == ("repair", "succeeded")
    assert repair["requested_by"].startswith("cli (")
    assert repair["to"]["manifest_digest"] == first.manifest_digest


@pytest.mark.usefixtures("published_release")
def test_repair_release_failures_are_clear(
    appliance: Appliance, start_service: Any, kube_api: KubeApi
) -> None:
    nothing = cli(appliance, "repair-release")
    assert nothing.returncode == 4
    assert "nothing to repair: the appliance was never set up" in nothing.stderr

    cluster = kube_api.cluster
    cluster.helm_releases = HELM_RELEASES
    running: InProcessService = start_service()
    bootstrap(running)
    busy = cli(appliance, "repair-release")
    assert busy.returncode == 4
    assert "stop it first" in busy.stderr
    running.stop()

    cluster.stuck_helm_releases = {"alga-core"}
    appliance.set_timeouts(reconcile=3)
    failed = cli(appliance, "repair-release")
    assert failed.returncode == 1
    assert "error: HelmReleases did not become Ready" in failed.stderr
    assert "alga-core" in failed.stderr
    assert "cause: Flux or Helm did not finish" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_repair_release_on_damaged_setup_inputs_is_one_line_naming_the_file(
    appliance: Appliance,
) -> None:
    # A truncated file was a JSONDecodeError traceback (exit 1).
    inputs = appliance.state_dir / "setup-inputs.json"
    inputs.parent.mkdir(parents=True, exist_ok=True)
    inputs.write_text('{"app_url": "https://psa.example.com", "chan')
    done = cli(appliance, "repair-release")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith(f"error: {inputs}: not JSON (")
    assert inputs.read_text() == '{"app_url": "https://psa.example.com", "chan'  # left as it was
