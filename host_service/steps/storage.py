"""Storage: exactly one local-path provisioner, ``local-path`` the default class, a PVC smoke test.

k3s bundles the local-path provisioner; "install storage" means verifying it. Two
provisioners once raced and left Postgres Pending, so a second one is a blocker.
"""

from __future__ import annotations

import json
from typing import Any

from host_service import atomic
from host_service.kube import KubeError, Object, containers, is_true
from host_service.steps.context import StepContext, StepFailed

CLASS = "local-path"
PROVISIONER = "rancher.io/local-path"
DEFAULT_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
SMOKE = "appliance-storage-smoke"
SMOKE_NAMESPACE = "kube-system"
MARKER = "storage-verified.json"


def _is_default(sc: Object) -> bool:
    annotations = sc.get("metadata", {}).get("annotations") or {}
    return str(annotations.get(DEFAULT_ANNOTATION, "")).lower() == "true"


def _provisioners(ctx: StepContext) -> list[Object]:
    found = []
    for deployment in ctx.kube.list("deployments.apps"):
        if any("local-path-provisioner" in str(c.get("image", "")) for c in containers(deployment)):
            found.append(deployment)
    return found


def _name(obj: Object) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '?')}".lstrip("/")


def _cluster_id(ctx: StepContext) -> str:
    namespace = ctx.kube.get("namespaces", "kube-system")
    return str((namespace or {}).get("metadata", {}).get("uid", ""))


def _check_classes(ctx: StepContext, *, fix: bool) -> str | None:
    """None when the classes are right; else what is wrong (after fixing what may be fixed)."""
    classes = ctx.kube.list("storageclasses.storage.k8s.io")
    local = [sc for sc in classes if sc.get("metadata", {}).get("name") == CLASS]
    if not local:
        return "missing"
    if local[0].get("provisioner") != PROVISIONER:
        return "wrong-provisioner"
    others = [_name(sc) for sc in classes if _is_default(sc) and sc is not local[0]]
    if others:
        return "other-default:" + ",".join(others)
    if not _is_default(local[0]):
        if not fix:
            return "not-default"
        ctx.report(f"making {CLASS} the default storage class")
        ctx.kube.patch(
            "storageclasses.storage.k8s.io",
            CLASS,
            None,
            {"metadata": {"annotations": {DEFAULT_ANNOTATION: "true"}}},
        )
    return None


def probe(ctx: StepContext) -> bool:
    marker = ctx.settings.paths.state / MARKER
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8")).get("cluster")
        if _check_classes(ctx, fix=False) is not None:
            return False
        provisioners = _provisioners(ctx)
        return (
            len(provisioners) == 1
            and is_true(provisioners[0], "Available")
            and (recorded == _cluster_id(ctx))
        )
    except (FileNotFoundError, ValueError, AttributeError, KubeError):
        return False


def run(ctx: StepContext) -> None:
    try:
        _run(ctx)
    except KubeError as exc:
        raise StepFailed(
            f"Kubernetes refused a storage check: {exc.message}",
            cause="the API server is not healthy or the request was rejected",
            next_step="check `k3s kubectl get pods -A`, then retry",
            output=exc.output,
        ) from exc


def _run(ctx: StepContext) -> None:
    timeout = ctx.settings.timeouts.storage

    def provisioner_ready() -> tuple[Object | None, str]:
        found = _provisioners(ctx)
        if len(found) > 1:
            names = ", ".join(_name(d) for d in found)
            raise StepFailed(
                f"{len(found)} local-path provisioners are installed ({names})",
                cause="two provisioners race for the same claims and leave volumes Pending",
                next_step="delete every local-path provisioner except k3s' own "
                "(kube-system/local-path-provisioner), then retry",
            )
        if not found:
            return None, "waiting for k3s' local-path provisioner"
        if not is_true(found[0], "Available"):
            return None, f"waiting for {_name(found[0])} to become Available"
        return found[0], ""

    provisioner = ctx.poll(
        provisioner_ready,
        timeout=timeout,
        on_timeout=lambda last: StepFailed(
            f"the local-path provisioner is not ready ({last})",
            cause="k3s was started with local-storage disabled, or its image is missing",
            next_step="keep local-storage enabled in the k3s config; check "
            "`k3s kubectl -n kube-system get deploy local-path-provisioner`, then retry",
        ),
    )
    ctx.report("one local-path provisioner", detail=f"provisioner {_name(provisioner)} Available")

    problem = ctx.poll(
        lambda: _class_problem(ctx),
        timeout=timeout,
        on_timeout=lambda last: StepFailed(
            f"storage class {CLASS} is not there ({last})",
            cause="k3s has not created its local-path storage class",
            next_step="check `k3s kubectl get storageclass`, then retry",
        ),
    )
    if problem != "ok":
        if problem == "wrong-provisioner":
            raise StepFailed(
                f"storage class {CLASS} does not use {PROVISIONER}",
                cause="something replaced k3s' local-path storage class",
                next_step=f"delete storage class {CLASS} and restart k3s so it recreates it, "
                "then retry",
            )
        others = problem.partition(":")[2]
        raise StepFailed(
            f"another default storage class is set ({others})",
            cause="two default classes make PVCs without a class land on either one",
            next_step=f"remove the default annotation from {others} "
            f"(kubectl annotate storageclass NAME {DEFAULT_ANNOTATION}-), then retry",
        )
    ctx.report(f"{CLASS} is the default storage class", detail=f"{CLASS} default class")
    _smoke_test(ctx)
    atomic.write_json(ctx.settings.paths.state / MARKER, {"cluster": _cluster_id(ctx)}, mode=0o600)


def _class_problem(ctx: StepContext) -> tuple[str | None, str]:
    problem = _check_classes(ctx, fix=True)
    if problem == "missing":
        return None, f"waiting for storage class {CLASS}"
    return problem or "ok", ""


def _smoke_objects(ctx: StepContext) -> tuple[Object, Object]:
    labels = {"app.kubernetes.io/managed-by": "alga-appliance", "app.kubernetes.io/name": SMOKE}
    pvc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": SMOKE, "namespace": SMOKE_NAMESPACE, "labels": labels},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": CLASS,
            "resources": {"requests": {"storage": "16Mi"}},
        },
    }
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": SMOKE, "namespace": SMOKE_NAMESPACE, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "write",
                    "image": ctx.settings.k3s.smoke_image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": [
                        "sh",
                        "-c",
                        "echo appliance-smoke > /data/smoke && sync && cat /data/smoke",
                    ],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": SMOKE}}],
        },
    }
    return pvc, pod


def _cleanup(ctx: StepContext) -> None:
    ctx.kube.delete("pods", SMOKE, SMOKE_NAMESPACE)
    ctx.kube.delete("persistentvolumeclaims", SMOKE, SMOKE_NAMESPACE)

    def gone() -> tuple[bool | None, str]:
        left = [
            kind
            for kind in ("pods", "persistentvolumeclaims")
            if ctx.kube.get(kind, SMOKE, SMOKE_NAMESPACE) is not None
        ]
        return (
            (True, "")
            if not left
            else (None, f"waiting for the smoke {' and '.join(left)} to be deleted")
        )

    ctx.poll(
        gone,
        timeout=ctx.settings.timeouts.storage,
        on_timeout=lambda last: StepFailed(
            f"the storage smoke test objects were not cleaned up ({last})",
            cause="a finalizer holds the claim (the provisioner cannot delete the volume)",
            next_step=f"check `k3s kubectl -n {SMOKE_NAMESPACE} describe pvc {SMOKE}`, then retry",
        ),
    )


def _smoke_test(ctx: StepContext) -> None:
    # Leftovers from an interrupted attempt go first: the test must start from nothing.
    _cleanup(ctx)
    pvc, pod = _smoke_objects(ctx)
    ctx.report("smoke test: creating a claim and a writer pod")
    ctx.kube.create(pvc)
    ctx.kube.create(pod)

    def finished() -> tuple[str | None, str]:
        claim = ctx.kube.get("persistentvolumeclaims", SMOKE, SMOKE_NAMESPACE) or {}
        current = ctx.kube.get("pods", SMOKE, SMOKE_NAMESPACE) or {}
        claim_phase = claim.get("status", {}).get("phase", "Pending")
        pod_phase = current.get("status", {}).get("phase", "Pending")
        if pod_phase == "Failed":
            raise StepFailed(
                "the storage smoke test pod failed to write to its volume",
                cause="the local-path volume is not writable (disk full or permissions)",
                next_step=f"read `k3s kubectl -n {SMOKE_NAMESPACE} logs {SMOKE}`, fix, then retry",
                output=_logs(ctx),
            )
        if claim_phase == "Bound" and pod_phase == "Succeeded":
            return claim.get("spec", {}).get("volumeName", "?"), ""
        return None, f"smoke test: claim {claim_phase}, pod {pod_phase}"

    volume = ctx.poll(
        finished,
        timeout=ctx.settings.timeouts.storage,
        on_timeout=lambda last: StepFailed(
            f"the storage smoke test did not finish ({last})",
            cause="the claim did not bind (provisioner not working) or the pod could not "
            f"start (image {ctx.settings.k3s.smoke_image} not in the airgap images)",
            next_step=f"check `k3s kubectl -n {SMOKE_NAMESPACE} describe pvc,pod {SMOKE}`, "
            "then retry",
            output=_logs(ctx),
        ),
    )
    written = _logs(ctx)
    if "appliance-smoke" not in written:
        raise StepFailed(
            "the storage smoke test pod did not read back what it wrote",
            cause="the volume lost the write",
            next_step="check the disk and the local-path provisioner logs, then retry",
            output=written,
        )
    ctx.report("smoke test: bound, written, read back", detail=f"PVC smoke test passed ({volume})")
    _cleanup(ctx)
    ctx.report("smoke test cleaned up")


def _logs(ctx: StepContext) -> str:
    try:
        return ctx.kube.logs(SMOKE_NAMESPACE, SMOKE, tail=50)
    except KubeError as exc:
        return exc.output
