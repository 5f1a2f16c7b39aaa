"""A pod as an operator reads it: one normalized status (Running, Pending with its reason,
CrashLoopBackOff, ImagePullBackOff, OOMKilled, Completed, Terminating...), ready containers,
restarts with the last restart's reason and time, age, node and owning workload. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from host_service.kube import condition
from host_service.operate.times import parse_time

# How each status reads at a glance: ok, progress (on its way), bad (needs attention),
# done (finished on purpose), unknown.
HEALTH: Mapping[str, str] = {
    "Running": "ok",
    "Completed": "done",
    "Pending": "progress",
    "Terminating": "progress",
    "CrashLoopBackOff": "bad",
    "ImagePullBackOff": "bad",
    "ErrImagePull": "bad",
    "CreateContainerConfigError": "bad",
    "OOMKilled": "bad",
    "Error": "bad",
    "Evicted": "bad",
    "Unknown": "unknown",
}
# A waiting reason that is a failure in its own right, not a step on the way to running.
FAILING_WAITS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
        "RunContainerError",
    }
)
# Operators read these two as one: the image cannot be pulled.
STATUS_OF_WAIT: Mapping[str, str] = {
    "ErrImagePull": "ImagePullBackOff",
    "InvalidImageName": "ImagePullBackOff",
    "CreateContainerError": "CreateContainerConfigError",
    "RunContainerError": "Error",
}


@dataclass(frozen=True, kw_only=True)
class Termination:
    reason: str
    exit_code: int | None
    at: float | None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "exit_code": self.exit_code,
            "at": self.at,
            "message": self.message,
        }


@dataclass(frozen=True, kw_only=True)
class ContainerView:
    name: str
    image: str
    init: bool
    ready: bool
    restarts: int
    state: str  # running, waiting, terminated
    reason: str
    message: str
    last: Termination | None  # the previous instance's end: what ``logs --previous`` shows
    # A native sidecar: an init container with restartPolicy Always runs beside the app
    # containers, and kubectl counts it in READY.
    sidecar: bool

    @property
    def serving(self) -> bool:
        """Counted in ready/total, as kubectl counts READY."""
        return not self.init or self.sidecar

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.image,
            "init": self.init,
            "ready": self.ready,
            "restarts": self.restarts,
            "state": self.state,
            "reason": self.reason,
            "message": self.message,
            "last": self.last.to_json() if self.last else None,
        }


@dataclass(frozen=True, kw_only=True)
class PodView:
    namespace: str
    name: str
    uid: str  # a StatefulSet's db-0 comes back under its name with a new uid
    status: str
    reason: str  # why, in the API's words (Unschedulable, ContainerCreating, OOMKilled ...)
    message: str  # the API's full message, never shortened
    ready: int
    total: int
    restarts: int
    last_restart: Termination | None
    created: float | None
    node: str
    owner_kind: str
    owner_name: str
    labels: Mapping[str, str]
    containers: tuple[ContainerView, ...]

    @property
    def health(self) -> str:
        return HEALTH.get(self.status, "unknown")

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "status": self.status,
            "health": self.health,
            "reason": self.reason,
            "message": self.message,
            "ready": self.ready,
            "total": self.total,
            "restarts": self.restarts,
            "last_restart": self.last_restart.to_json() if self.last_restart else None,
            "created": self.created,
            "age_seconds": None if self.created is None else max(0.0, now - self.created),
            "node": self.node,
            "owner": {"kind": self.owner_kind, "name": self.owner_name}
            if self.owner_kind
            else None,
            "containers": [c.to_json() for c in self.containers],
        }


def _termination(data: Any) -> Termination | None:
    if not isinstance(data, Mapping):
        return None
    code = data.get("exitCode")
    signal = data.get("signal")
    reason = str(data.get("reason") or "")
    if not reason:
        reason = f"Signal:{signal}" if signal else f"ExitCode:{code}"
    return Termination(
        reason=reason,
        exit_code=code if isinstance(code, int) else None,
        at=parse_time(data.get("finishedAt")),
        message=str(data.get("message") or ""),
    )


def _container(
    status: Mapping[str, Any], image: str, *, init: bool, sidecar: bool
) -> ContainerView:
    state = status.get("state") or {}
    kind, detail = next(iter(state.items()), ("waiting", {}))
    detail = detail if isinstance(detail, Mapping) else {}
    terminated = _termination(detail) if kind == "terminated" else None
    reason = terminated.reason if terminated else str(detail.get("reason") or "")
    last = _termination((status.get("lastState") or {}).get("terminated"))
    restarts = status.get("restartCount")
    return ContainerView(
        name=str(status.get("name") or ""),
        image=str(status.get("image") or image),
        init=init,
        ready=bool(status.get("ready")),
        restarts=restarts if isinstance(restarts, int) else 0,
        state=str(kind),
        reason=reason,
        message=str(detail.get("message") or ""),
        last=last,
        sidecar=sidecar,
    )


def _containers(pod: Mapping[str, Any]) -> tuple[ContainerView, ...]:
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    found: list[ContainerView] = []
    for init, spec_key, status_key in (
        (True, "initContainers", "initContainerStatuses"),
        (False, "containers", "containerStatuses"),
    ):
        statuses = {
            s.get("name"): s for s in status.get(status_key) or [] if isinstance(s, Mapping)
        }
        for container in spec.get(spec_key) or []:
            if not isinstance(container, Mapping):
                continue
            name = container.get("name")
            image = str(container.get("image") or "")
            known = statuses.get(name)
            if known is None:  # not started yet: the kubelet has not reported it
                known = {"name": name, "state": {"waiting": {"reason": "ContainerCreating"}}}
                if init:
                    known = {"name": name, "state": {"waiting": {"reason": "PodInitializing"}}}
            sidecar = init and container.get("restartPolicy") == "Always"
            found.append(_container(known, image, init=init, sidecar=sidecar))
    return tuple(found)


def owner(pod: Mapping[str, Any]) -> tuple[str, str]:
    """The workload that owns the pod: a ReplicaSet is read as its Deployment when the pod
    carries the Deployment's ``pod-template-hash`` label (a ReplicaSet of its own does not)."""
    meta = pod.get("metadata") or {}
    refs = [r for r in meta.get("ownerReferences") or [] if isinstance(r, Mapping)]
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    if ref is None:
        return "", ""
    kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
    labels = meta.get("labels") or {}
    if kind == "ReplicaSet" and "pod-template-hash" in labels:
        # Named <deployment>-<pod-template-hash>; the hash has no dash.
        head, dash, _ = name.rpartition("-")
        return ("Deployment", head) if dash else (kind, name)
    return kind, name


def _status(pod: Mapping[str, Any], containers: tuple[ContainerView, ...]) -> tuple[str, str, str]:
    """(status, reason, message) the way ``kubectl get pods`` and an operator read them."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "Unknown")
    pod_reason = str(status.get("reason") or "")
    pod_message = str(status.get("message") or "")
    # kubectl: a pod being deleted is Terminating unless it already ended (Succeeded, Failed).
    if meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        if pod_reason == "NodeLost":
            return "Unknown", pod_reason, pod_message
        return "Terminating", "", pod_message
    if phase == "Unknown" or pod_reason == "NodeLost":
        return "Unknown", pod_reason, pod_message
    if phase == "Succeeded":
        return "Completed", pod_reason or "Completed", pod_message
    if phase == "Failed":
        if pod_reason == "Evicted":
            return "Evicted", pod_reason, pod_message
        ended = next((c for c in containers if c.state == "terminated" and not c.init), None)
        if ended and ended.reason == "OOMKilled":
            return "OOMKilled", ended.reason, ended.message or pod_message
        return "Error", pod_reason or (ended.reason if ended else "Failed"), pod_message
    # A failing container decides, init containers first (they run first).
    for c in containers:
        if c.state == "waiting" and c.reason in FAILING_WAITS:
            return STATUS_OF_WAIT.get(c.reason, c.reason), c.reason, c.message
    for c in containers:
        if c.state == "terminated":
            if c.reason == "OOMKilled":
                return "OOMKilled", c.reason, c.message
            if c.reason != "Completed":
                return "Error", c.reason, c.message
    if phase == "Pending":
        scheduled = next(
            (
                cond
                for cond in status.get("conditions") or []
                if isinstance(cond, Mapping) and cond.get("type") == "PodScheduled"
            ),
            None,
        )
        if scheduled is not None and scheduled.get("status") == "False":
            return (
                "Pending",
                str(scheduled.get("reason") or "Unschedulable"),
                str(scheduled.get("message") or ""),
            )
        waiting = next((c for c in containers if c.state == "waiting" and c.reason), None)
        if waiting is not None:
            return "Pending", waiting.reason, waiting.message
        return "Pending", pod_reason, pod_message
    not_ready = [c.name for c in containers if c.serving and not c.ready]
    if not_ready:
        return "Running", "NotReady", f"not ready: {', '.join(not_ready)}"
    ready = condition(pod, "Ready")
    if ready is not None and ready.get("status") == "False":  # a readiness gate, say
        return "Running", "NotReady", str(ready.get("message") or ready.get("reason") or "")
    return "Running", "", ""


def normalize(pod: Mapping[str, Any]) -> PodView:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    containers = _containers(pod)
    serving = [c for c in containers if c.serving]
    status, reason, message = _status(pod, containers)
    ends = [c.last for c in containers if c.last is not None]
    last = max(ends, key=lambda end: end.at or 0.0, default=None)
    owner_kind, owner_name = owner(pod)
    labels = meta.get("labels") or {}
    return PodView(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        status=status,
        reason=reason,
        message=message,
        ready=sum(1 for c in serving if c.ready),
        total=len(serving),
        restarts=sum(c.restarts for c in containers),
        last_restart=last,
        created=parse_time(meta.get("creationTimestamp")),
        node=str(spec.get("nodeName") or ""),
        owner_kind=owner_kind,
        owner_name=owner_name,
        labels={str(k): str(v) for k, v in labels.items()},
        containers=containers,
    )
