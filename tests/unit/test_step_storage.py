"""The storage step against a FakeKube that provisions like k3s' local-path provisioner: the
provisioner and class checks, the PVC smoke test, its cleanup, the marker, every failure."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from host_service.settings import Timeouts
from host_service.steps import storage
from host_service.steps.context import StepContext, StepFailed
from tests.fixtures.host_service import FakeKube
from tests.unit.test_host_steps import context, provisioner, storage_class

CLASSES = "storageclasses.storage.k8s.io"
PVCS = "persistentvolumeclaims"
SMOKE = ("kube-system", "appliance-storage-smoke")


class Provisioning(FakeKube):
    """Binds the smoke claim and runs the smoke pod as k3s would (or fails to, on request)."""

    def __init__(
        self,
        *,
        bind: bool = True,
        pod_phase: str | None = "Succeeded",
        volume: str | None = "pvc-0001",
        output: str = "appliance-smoke",
        keep: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.bind = bind
        self.pod_phase = pod_phase
        self.output = output
        self.keep = keep  # resources whose delete a finalizer holds
        self.volume = volume
        self.created: list[dict[str, Any]] = []

    def create(self, obj: Any) -> bool:
        created = super().create(obj)
        self.created.append(obj)
        key = self._key_of(obj)
        if obj["kind"] == "PersistentVolumeClaim" and self.bind:
            self.objects[key]["status"] = {"phase": "Bound"}
            if self.volume is None:
                del self.objects[key]["spec"]
            else:
                self.objects[key]["spec"]["volumeName"] = self.volume
        if obj["kind"] == "Pod" and self.pod_phase is not None:
            self.objects[key]["status"] = {"phase": self.pod_phase}
        if obj["kind"] == "Pod" and self.output:
            self.add_log(*SMOKE, self.output)
        return created

    def delete(self, resource: str, name: str, namespace: str | None = None) -> None:
        if resource in self.keep:
            self.calls.append(("delete", resource, name))
            return
        super().delete(resource, name, namespace)
        if resource == "pods":
            self.pod_logs.pop(SMOKE, None)


def cluster(kube: FakeKube, *, default: bool = True) -> FakeKube:
    kube.put(provisioner("local-path-provisioner"))
    kube.put(storage_class("local-path", default=default))
    kube.put({"kind": "Namespace", "metadata": {"name": "kube-system", "uid": "uid-1"}})
    return kube


def storage_context(
    tmp_path: Path, kube: FakeKube
) -> tuple[StepContext, list[tuple[str, str | None]]]:
    ctx, reports = context(tmp_path, kube=kube)
    ctx.settings.paths.state.mkdir(parents=True, exist_ok=True)
    settings = dataclasses.replace(ctx.settings, timeouts=Timeouts(poll_interval=0.0, storage=0.0))
    return dataclasses.replace(ctx, settings=settings), reports


def failure(tmp_path: Path, kube: FakeKube) -> StepFailed:
    ctx, _ = storage_context(tmp_path, kube)
    with pytest.raises(StepFailed) as caught:
        storage.run(ctx)
    return caught.value


# -- the whole step ------------------------------------------------------------------------


def test_run_checks_smoke_tests_cleans_up_and_records_the_cluster(tmp_path: Path) -> None:
    kube = cluster(Provisioning())
    ctx, reports = storage_context(tmp_path, kube)
    assert storage.probe(ctx) is False
    storage.run(ctx)
    assert reports == [
        ("one local-path provisioner", "provisioner kube-system/local-path-provisioner Available"),
        ("local-path is the default storage class", "local-path default class"),
        ("smoke test: creating a claim and a writer pod", None),
        ("smoke test: bound, written, read back", "PVC smoke test passed (pvc-0001)"),
        ("smoke test cleaned up", None),
    ]
    marker = ctx.settings.paths.state / "storage-verified.json"
    assert json.loads(marker.read_text()) == {"cluster": "uid-1"}
    assert marker.stat().st_mode & 0o777 == 0o600
    assert kube.get(PVCS, SMOKE[1], SMOKE[0]) is None
    assert kube.get("pods", SMOKE[1], SMOKE[0]) is None
    deletes = [c for c in kube.calls if c[0] == "delete"]
    assert (
        deletes
        == [
            ("delete", "pods", SMOKE[1]),
            ("delete", PVCS, SMOKE[1]),
        ]
        * 2
    )  # leftovers first, then after the test
    assert storage.probe(ctx) is True


def test_the_smoke_claim_and_pod(tmp_path: Path) -> None:
    kube = cluster(Provisioning())
    ctx, _ = storage_context(tmp_path, kube)
    storage.run(ctx)
    pvc, pod = kube.created
    labels = {
        "app.kubernetes.io/managed-by": "alga-appliance",
        "app.kubernetes.io/name": "appliance-storage-smoke",
    }
    assert pvc == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": SMOKE[1], "namespace": SMOKE[0], "labels": labels},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "local-path",
            "resources": {"requests": {"storage": "16Mi"}},
        },
    }
    assert pod == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": SMOKE[1], "namespace": SMOKE[0], "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "write",
                    "image": "rancher/mirrored-library-busybox:1.36.1",
                    "imagePullPolicy": "IfNotPresent",
                    "command": [
                        "sh",
                        "-c",
                        "echo appliance-smoke > /data/smoke && sync && cat /data/smoke",
                    ],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": SMOKE[1]}}],
        },
    }


def test_a_class_that_is_not_default_is_made_default(tmp_path: Path) -> None:
    kube = cluster(Provisioning(), default=False)
    ctx, reports = storage_context(tmp_path, kube)
    assert storage.probe(ctx) is False
    storage.run(ctx)
    assert reports[1] == ("making local-path the default storage class", None)
    sc = kube.objects[(CLASSES, "", "local-path")]
    assert sc["metadata"]["annotations"] == {storage.DEFAULT_ANNOTATION: "true"}
    assert storage.probe(ctx) is True


# -- the provisioner -----------------------------------------------------------------------


def test_two_provisioners_name_both(tmp_path: Path) -> None:
    kube = cluster(Provisioning())
    kube.put(provisioner("my-local-path", "storage"))
    failed = failure(tmp_path, kube)
    assert str(failed) == (
        "2 local-path provisioners are installed "
        "(kube-system/local-path-provisioner, storage/my-local-path)"
    )
    assert failed.cause == "two provisioners race for the same claims and leave volumes Pending"
    assert failed.next_step == (
        "delete every local-path provisioner except k3s' own "
        "(kube-system/local-path-provisioner), then retry"
    )


def test_no_provisioner_times_out(tmp_path: Path) -> None:
    kube = Provisioning()
    kube.put(storage_class("local-path", default=True))
    other = provisioner("coredns")
    other["spec"]["template"]["spec"]["containers"][0]["image"] = "rancher/coredns:1.12"
    kube.put(other)
    failed = failure(tmp_path, kube)
    assert str(failed) == (
        "the local-path provisioner is not ready (waiting for k3s' local-path provisioner)"
    )
    assert failed.cause == ("k3s was started with local-storage disabled, or its image is missing")
    assert failed.next_step == (
        "keep local-storage enabled in the k3s config; check `k3s kubectl -n kube-system "
        "get deploy local-path-provisioner`, then retry"
    )


def test_a_provisioner_not_available_yet(tmp_path: Path) -> None:
    kube = cluster(Provisioning())
    kube.objects[("deployments.apps", "kube-system", "local-path-provisioner")]["status"] = {}
    failed = failure(tmp_path, kube)
    assert str(failed) == (
        "the local-path provisioner is not ready "
        "(waiting for kube-system/local-path-provisioner to become Available)"
    )


# -- the storage classes -------------------------------------------------------------------


def test_a_missing_class_times_out(tmp_path: Path) -> None:
    kube = cluster(Provisioning())
    del kube.objects[(CLASSES, "", "local-path")]
    kube.put(storage_class("other", default=False))
    failed = failure(tmp_path, kube)
    assert str(failed) == (
        "storage class local-path is not there (waiting for storage class local-path)"
    )
    assert failed.cause == "k3s has not created its local-path storage class"
    assert failed.next_step == "check `k3s kubectl get storageclass`, then retry"


def test_a_class_with_another_provisioner(tmp_path: Path) -> None:
    kube = cluster(Provisioning())
    kube.put(storage_class("local-path", default=True, provisioner="example.com/nfs"))
    failed = failure(tmp_path, kube)
    assert str(failed) == "storage class local-path does not use rancher.io/local-path"
    assert failed.cause == "something replaced k3s' local-path storage class"
    assert failed.next_step == (
        "delete storage class local-path and restart k3s so it recreates it, then retry"
    )


def test_other_default_classes_are_named(tmp_path: Path) -> None:
    kube = cluster(Provisioning(), default=False)
    kube.put(storage_class("nfs", default=True, provisioner="nfs"))
    kube.put(storage_class("zfs", default=True, provisioner="zfs"))
    failed = failure(tmp_path, kube)
    assert str(failed) == "another default storage class is set (nfs,zfs)"
    assert failed.cause == "two default classes make PVCs without a class land on either one"
    assert failed.next_step == (
        "remove the default annotation from nfs,zfs (kubectl annotate storageclass NAME "
        "storageclass.kubernetes.io/is-default-class-), then retry"
    )
    assert not any(c[0] == "patch" for c in kube.calls)


def test_check_classes_without_fixing_reports_not_default(tmp_path: Path) -> None:
    kube = cluster(FakeKube(), default=False)
    ctx, _ = storage_context(tmp_path, kube)
    assert storage._check_classes(ctx, fix=False) == "not-default"
    assert not any(c[0] == "patch" for c in kube.calls)
    assert storage._check_classes(ctx, fix=True) is None
    assert storage._check_classes(ctx, fix=False) is None


def test_a_class_problem_is_ok_or_waits_only_for_a_missing_class(tmp_path: Path) -> None:
    kube = cluster(FakeKube())
    ctx, _ = storage_context(tmp_path, kube)
    assert storage._class_problem(ctx) == ("ok", "")
    kube.put(storage_class("local-path", default=True, provisioner="x"))
    assert storage._class_problem(ctx) == ("wrong-provisioner", "")
    del kube.objects[(CLASSES, "", "local-path")]
    assert storage._class_problem(ctx) == (None, "waiting for storage class local-path")


@pytest.mark.parametrize(
    ("annotations", "default"),
    [(None, False), ({}, False), ({storage.DEFAULT_ANNOTATION: "TRUE"}, True),
     ({storage.DEFAULT_ANNOTATION: "false"}, False), ({storage.DEFAULT_ANNOTATION: True}, True)],
)  # fmt: skip
def test_is_default_reads_the_annotation(annotations: Any, default: bool) -> None:
    assert storage._is_default({"metadata": {"annotations": annotations}}) is default


def test_names_and_the_cluster_id(tmp_path: Path) -> None:
    assert storage._name({"metadata": {"name": "a", "namespace": "ns"}}) == "ns/a"
    assert storage._name({"metadata": {"name": "a"}}) == "a"
    assert storage._name({}) == "?"
    kube = FakeKube()
    ctx, _ = storage_context(tmp_path, kube)
    assert storage._cluster_id(ctx) == ""
    kube.put({"kind": "Namespace", "metadata": {"name": "kube-system", "uid": "u-9"}})
    assert storage._cluster_id(ctx) == "u-9"


# -- the smoke test ------------------------------------------------------------------------


def test_a_pod_that_cannot_write_fails_with_its_log(tmp_path: Path) -> None:
    kube = cluster(Provisioning(pod_phase="Failed", output="sh: can't create /data/smoke"))
    failed = failure(tmp_path, kube)
    assert str(failed) == "the storage smoke test pod failed to write to its volume"
    assert failed.cause == "the local-path volume is not writable (disk full or permissions)"
    assert failed.next_step == (
        "read `k3s kubectl -n kube-system logs appliance-storage-smoke`, fix, then retry"
    )
    assert failed.output == "sh: can't create /data/smoke\n"


def test_a_claim_that_never_binds_times_out(tmp_path: Path) -> None:
    kube = cluster(Provisioning(bind=False, pod_phase="Pending", output=""))
    failed = failure(tmp_path, kube)
    assert str(failed) == (
        "the storage smoke test did not finish (smoke test: claim Pending, pod Pending)"
    )
    assert failed.cause == (
        "the claim did not bind (provisioner not working) or the pod could not start "
        "(image rancher/mirrored-library-busybox:1.36.1 not in the airgap images)"
    )
    assert failed.next_step == (
        "check `k3s kubectl -n kube-system describe pvc,pod appliance-storage-smoke`, then retry"
    )
    assert failed.output == ""


def test_a_bound_claim_with_a_running_pod_is_waited_for(tmp_path: Path) -> None:
    kube = cluster(Provisioning(pod_phase="Running"))
    failed = failure(tmp_path, kube)
    assert str(failed) == (
        "the storage smoke test did not finish (smoke test: claim Bound, pod Running)"
    )
    assert failed.output == "appliance-smoke\n"


def test_a_write_that_does_not_read_back(tmp_path: Path) -> None:
    kube = cluster(Provisioning(output="something else"))
    failed = failure(tmp_path, kube)
    assert str(failed) == "the storage smoke test pod did not read back what it wrote"
    assert failed.cause == "the volume lost the write"
    assert failed.next_step == "check the disk and the local-path provisioner logs, then retry"
    assert failed.output == "something else\n"


def test_logs_of_a_missing_pod_are_kubectls_error(tmp_path: Path) -> None:
    ctx, _ = storage_context(tmp_path, FakeKube())
    assert storage._logs(ctx) == (
        'Error from server (NotFound): pods "appliance-storage-smoke" not found in namespace '
        '"kube-system"'
    )


def test_a_claim_a_finalizer_holds_fails_the_cleanup(tmp_path: Path) -> None:
    kube = cluster(Provisioning(keep=(PVCS,)))
    ctx, _ = storage_context(tmp_path, kube)
    kube.put({"kind": "PersistentVolumeClaim",
              "metadata": {"name": SMOKE[1], "namespace": SMOKE[0]}})  # fmt: skip
    with pytest.raises(StepFailed) as caught:
        storage.run(ctx)
    failed = caught.value
    assert str(failed) == (
        "the storage smoke test objects were not cleaned up "
        "(waiting for the smoke persistentvolumeclaims to be deleted)"
    )
    assert failed.cause == (
        "a finalizer holds the claim (the provisioner cannot delete the volume)"
    )
    assert failed.next_step == (
        "check `k3s kubectl -n kube-system describe pvc appliance-storage-smoke`, then retry"
    )


def test_both_leftovers_held_are_named(tmp_path: Path) -> None:
    kube = cluster(Provisioning(keep=(PVCS, "pods")))
    for kind in ("PersistentVolumeClaim", "Pod"):
        kube.put({"kind": kind, "metadata": {"name": SMOKE[1], "namespace": SMOKE[0]}})
    failed = failure(tmp_path, kube)
    assert str(failed) == (
        "the storage smoke test objects were not cleaned up "
        "(waiting for the smoke pods and persistentvolumeclaims to be deleted)"
    )


def test_a_refused_request_fails_the_step(tmp_path: Path) -> None:
    kube = cluster(Provisioning())
    kube.deny("create", PVCS, message="exceeded quota")
    failed = failure(tmp_path, kube)
    error = "Error from server (Forbidden): exceeded quota"
    assert str(failed) == f"Kubernetes refused a storage check: {error}"
    assert failed.cause == "the API server is not healthy or the request was rejected"
    assert failed.next_step == "check `k3s kubectl get pods -A`, then retry"
    assert failed.output == error


# -- probe -----------------------------------------------------------------------------------


def test_probe_needs_the_marker_of_this_cluster_and_a_healthy_setup(tmp_path: Path) -> None:
    kube = cluster(Provisioning())
    ctx, _ = storage_context(tmp_path, kube)
    storage.run(ctx)
    assert storage.probe(ctx) is True
    marker = ctx.settings.paths.state / "storage-verified.json"

    kube.put({"kind": "Namespace", "metadata": {"name": "kube-system", "uid": "uid-2"}})
    assert storage.probe(ctx) is False  # another cluster (k3s was reset)
    kube.put({"kind": "Namespace", "metadata": {"name": "kube-system", "uid": "uid-1"}})

    key = ("deployments.apps", "kube-system", "local-path-provisioner")
    kube.objects[key]["status"] = {}
    assert storage.probe(ctx) is False
    kube.put(provisioner("local-path-provisioner"))

    kube.put(provisioner("second", "storage"))
    assert storage.probe(ctx) is False
    del kube.objects[("deployments.apps", "storage", "second")]

    kube.put(storage_class("local-path", default=False))
    assert storage.probe(ctx) is False
    kube.put(storage_class("local-path", default=True))
    assert storage.probe(ctx) is True

    kube.deny("list", CLASSES, times=1)
    assert storage.probe(ctx) is False
    marker.write_text("[]")
    assert storage.probe(ctx) is False
    marker.write_text("{not json")
    assert storage.probe(ctx) is False
    marker.unlink()
    assert storage.probe(ctx) is False


def test_a_pod_without_status_yet_is_pending(tmp_path: Path) -> None:
    failed = failure(tmp_path, cluster(Provisioning(pod_phase=None, output="")))
    assert str(failed) == (
        "the storage smoke test did not finish (smoke test: claim Bound, pod Pending)"
    )


def test_a_bound_claim_without_a_volume_name(tmp_path: Path) -> None:
    kube = cluster(Provisioning(volume=None))
    ctx, reports = storage_context(tmp_path, kube)
    storage.run(ctx)
    assert ("smoke test: bound, written, read back", "PVC smoke test passed (?)") in reports


def test_a_failed_pod_shows_the_last_fifty_log_lines(tmp_path: Path) -> None:
    kube = cluster(Provisioning(pod_phase="Failed", output=""))
    original = kube.create

    def create(obj: Any) -> bool:
        created = original(obj)
        kube.pod_logs[SMOKE] = [f"line {n}" for n in range(60)]
        return created

    kube.create = create  # type: ignore[method-assign]
    failed = failure(tmp_path, kube)
    assert failed.output.splitlines() == [f"line {n}" for n in range(10, 60)]


def test_objects_without_metadata_are_neither_default_nor_ours(tmp_path: Path) -> None:
    assert storage._is_default({}) is False
    kube = cluster(FakeKube())
    kube.objects[(CLASSES, "", "nameless")] = {"kind": "StorageClass", "provisioner": "x"}
    ctx, _ = storage_context(tmp_path, kube)
    assert storage._check_classes(ctx, fix=False) is None
