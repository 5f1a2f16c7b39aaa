"""The real kubectl, through the service's typed ``Kubectl``, against the API stand-in:
discovery (CRDs appear), server-side apply with field managers and conflicts, create, merge
patch, label selectors, errors with the server's message, pods/log with follow."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
import yaml

from host_service.kube import FIELD_MANAGER, Kubectl, KubeError
from tests.fixtures.host_service import KUBECTL, flux_install_yaml
from tests.fixtures.kube_api import KubeApi
from tests.waiting import wait_until


@pytest.fixture
def kubeconfig(kube_api: KubeApi, tmp_path: Path) -> Path:
    return kube_api.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kube(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    return Kubectl([KUBECTL, "--cache-dir", str(tmp_path / "cache"), "--kubeconfig",
                    str(kubeconfig)], timeout=20)  # fmt: skip


def cm(name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    meta = {"name": name, "namespace": "default", "labels": labels or {}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def test_basic_reads(kube: Kubectl) -> None:
    assert kube.readyz() == "ok"
    [node] = kube.list("nodes")
    assert node["metadata"]["name"] == "alga-appliance"
    assert kube.get("configmaps", "missing", "default") is None
    names = {d["metadata"]["name"] for d in kube.list("deployments.apps")}
    assert {"coredns", "local-path-provisioner"} <= names


def test_server_side_apply_is_idempotent_and_owns_fields(kube: Kubectl, kube_api: KubeApi) -> None:
    kube.apply([cm("c", {"a": "1", "b": "2"}, {"x": "1"})], field_manager=FIELD_MANAGER)
    first = kube.get("configmaps", "c", "default")
    assert first is not None
    assert first["data"] == {"a": "1", "b": "2"}
    kube.apply([cm("c", {"a": "1", "b": "2"}, {"x": "1"})], field_manager=FIELD_MANAGER)
    again = kube.get("configmaps", "c", "default")
    assert again is not None
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    # Fields the manager stops applying are removed; others' fields stay.
    kube.patch("configmaps", "c", "default", {"data": {"theirs": "kept"}})
    kube.apply([cm("c", {"a": "2"})], field_manager=FIELD_MANAGER)
    now = kube.get("configmaps", "c", "default")
    assert now is not None
    assert now["data"] == {"a": "2", "theirs": "kept"}
    assert "x" not in now["metadata"].get("labels", {})
    assert "managedFields" not in now["metadata"]  # kubectl hides them, as with a real API
    stored = kube_api.cluster.find("configmaps", "default", "c")
    assert stored is not None
    assert {m["manager"] for m in stored["metadata"]["managedFields"]} == {FIELD_MANAGER}


def test_apply_conflicts_without_force(kube: Kubectl, kubeconfig: Path, tmp_path: Path) -> None:
    kube.apply([cm("shared", {"k": "mine"})], field_manager=FIELD_MANAGER)
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(cm("shared", {"k": "theirs"})))
    base = [
        KUBECTL,
        "--cache-dir",
        str(tmp_path / "cache"),
        "--kubeconfig",
        str(kubeconfig),
        "apply",
        "--server-side",
        "--field-manager=someone-else",
        "-f",
        str(path),
    ]
    refused = subprocess.run(base, capture_output=True, text=True, timeout=30, check=False)
    assert refused.returncode != 0
    assert "conflict" in refused.stderr.lower()
    assert FIELD_MANAGER in refused.stderr
    forced = subprocess.run(
        [*base, "--force-conflicts"], capture_output=True, text=True, timeout=30, check=False
    )
    assert forced.returncode == 0, forced.stderr
    assert kube.get("configmaps", "shared", "default")["data"] == {"k": "theirs"}  # type: ignore[index]


def test_crds_become_resources_kubectl_can_use(kube: Kubectl, tmp_path: Path) -> None:
    install = tmp_path / "install.yaml"
    install.write_text(flux_install_yaml())
    kube.apply_file(install, field_manager=FIELD_MANAGER)
    crd = kube.get(
        "customresourcedefinitions.apiextensions.k8s.io", "ocirepositories.source.toolkit.fluxcd.io"
    )
    assert crd is not None
    assert any(
        c["type"] == "Established" and c["status"] == "True" for c in crd["status"]["conditions"]
    )
    source = {
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
        "metadata": {"name": "s", "namespace": "flux-system"},
        "spec": {"url": "oci://r.example/x", "ref": {"digest": "sha256:" + "a" * 64},
                 "interval": "10m"},
    }  # fmt: skip
    kube.apply([source], field_manager=FIELD_MANAGER)
    [found] = kube.list("ocirepositories.source.toolkit.fluxcd.io", "flux-system")
    assert found["spec"]["ref"]["digest"] == "sha256:" + "a" * 64
    assert found["metadata"]["generation"] == 1


def test_create_patch_delete_and_selectors(kube: Kubectl) -> None:
    assert kube.create(cm("once", {"v": "1"}, {"app": "a"})) is True
    assert kube.create(cm("once", {"v": "2"})) is False  # exists: left untouched
    kube.create(cm("other", {"v": "1"}, {"app": "b"}))
    assert [
        o["metadata"]["name"] for o in kube.list("configmaps", "default", selector="app=a")
    ] == ["once"]
    kube.patch("configmaps", "once", "default", {"data": {"v": "3"}})
    assert kube.get("configmaps", "once", "default")["data"] == {"v": "3"}  # type: ignore[index]
    kube.delete("configmaps", "once", "default")
    kube.delete("configmaps", "once", "default")  # absent: not an error
    assert kube.get("configmaps", "once", "default") is None


def test_errors_carry_the_server_message(kube: Kubectl, kube_api: KubeApi) -> None:
    kube_api.cluster.deny("apply", "configmaps", message="quota exceeded: configmaps=10")
    with pytest.raises(KubeError) as caught:
        kube.apply([cm("denied", {"a": "1"})], field_manager=FIELD_MANAGER)
    assert "quota exceeded: configmaps=10" in caught.value.output
    assert "Forbidden" in caught.value.message or "forbidden" in caught.value.message.lower()


def test_wrong_credentials_are_refused(kube_api: KubeApi, tmp_path: Path) -> None:
    config = tmp_path / "bad"
    config.write_text(kube_api.kubeconfig().replace(kube_api.token, "not-the-token"))
    bad = Kubectl(
        [KUBECTL, "--cache-dir", str(tmp_path / "c"), "--kubeconfig", str(config)], timeout=20
    )
    with pytest.raises(KubeError, match="Unauthorized"):
        bad.readyz()


def test_logs_tail_and_follow(
    kube: Kubectl, kube_api: KubeApi, kubeconfig: Path, tmp_path: Path
) -> None:
    cluster = kube_api.cluster
    cluster.put({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "app", "namespace": "default"},
                 "spec": {"containers": [{"name": "c", "image": "x"}]},
                 "status": {"phase": "Running", "pinned": True}})  # fmt: skip
    cluster.add_log("default", "app", *(f"line {i}" for i in range(10)))
    assert kube.logs("default", "app", tail=3).splitlines() == ["line 7", "line 8", "line 9"]
    follow = subprocess.Popen(
        [KUBECTL, "--cache-dir", str(tmp_path / "cache"), "--kubeconfig", str(kubeconfig),
         "logs", "-f", "--tail=1", "app", "-n", "default"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(follow.stdout or []), daemon=True)
    reader.start()
    # The live lines go in once kubectl is following, or --tail=1 would show only the last.
    wait_until(lambda: len(lines) >= 1, 10, "the tail line")
    cluster.add_log("default", "app", "live 1", "live 2")
    wait_until(lambda: len(lines) >= 3, 10, "followed lines")
    cluster.set_status("pods", "default", "app", {"phase": "Succeeded"})
    assert follow.wait(20) == 0
    reader.join(5)
    assert [line.strip() for line in lines] == ["line 9", "live 1", "live 2"]


def test_follow_logs_through_the_typed_interface(kube: Kubectl, kube_api: KubeApi) -> None:
    """What a live log view reads: the recent tail, then lines as they come; it ends with the
    pod, or when the reader closes the stream (kubectl is stopped)."""
    cluster = kube_api.cluster
    cluster.put({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": "worker", "namespace": "default"},
                 "spec": {"containers": [{"name": "c", "image": "x"}]},
                 "status": {"phase": "Running", "pinned": True}})  # fmt: skip
    cluster.add_log("default", "worker", "old 1", "old 2", "old 3")
    lines = kube.follow_logs("default", "worker", tail=2)
    assert [next(lines), next(lines)] == ["old 2", "old 3"]
    cluster.add_log("default", "worker", "new 1")  # kubectl is following: it sent the tail
    assert next(lines) == "new 1"
    lines.close()  # the reader scrolled away: kubectl is stopped, nothing leaks
    again = kube.follow_logs("default", "worker", tail=1)
    assert next(again) == "new 1"
    cluster.set_status("pods", "default", "worker", {"phase": "Succeeded"})
    assert list(again) == []
    with pytest.raises(KubeError, match="not found"):
        list(kube.follow_logs("default", "missing"))
