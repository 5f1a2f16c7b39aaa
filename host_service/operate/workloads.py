"""Pods grouped by the appliance's eight workloads (alga-core, db, ...), by their labels; the
rest under "other". Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from host_service.operate.pods import PodView
from host_service.release import SERVICES

OTHER = "other"
# Labels a chart puts on its pods, most specific first: Helm's instance is the release name
# (one HelmRelease per workload), then the chart's own name labels.
GROUP_LABELS = (
    "app.kubernetes.io/instance",
    "helm.toolkit.fluxcd.io/name",
    "app.kubernetes.io/name",
    "app.kubernetes.io/part-of",
    "release",
    "app",
)
TITLES: Mapping[str, str] = {
    "alga-core": "Alga PSA (web and API)",
    "db": "Database (PostgreSQL)",
    "redis": "Cache (Redis)",
    "pgbouncer": "Database connection pool (PgBouncer)",
    "temporal": "Workflow engine (Temporal)",
    "workflow-worker": "Workflow worker",
    "email-service": "Email service",
    "temporal-worker": "Temporal worker",
    OTHER: "Other pods",
}
# The worst health of a group's pods decides the group's.
RANK = {"bad": 4, "unknown": 3, "progress": 2, "ok": 1, "done": 0}


def workload_of(pod: PodView, names: Sequence[str] = SERVICES) -> str:
    for label in GROUP_LABELS:
        value = pod.labels.get(label, "")
        if value in names:
            return value
    # No labels of ours: the owning Deployment/StatefulSet may still carry the name.
    if pod.owner_name in names:
        return pod.owner_name
    return OTHER


@dataclass(frozen=True)
class Group:
    name: str
    pods: tuple[PodView, ...]

    @property
    def health(self) -> str:
        if not self.pods:
            return "missing" if self.name != OTHER else "ok"
        return max((p.health for p in self.pods), key=lambda h: RANK.get(h, 3))

    def to_json(self, now: float) -> dict[str, Any]:
        serving = [p for p in self.pods if p.health != "done"]
        return {
            "name": self.name,
            "title": TITLES.get(self.name, self.name),
            "health": self.health,
            "pods_ready": sum(1 for p in serving if p.status == "Running" and p.ready == p.total),
            "pods": len(serving),
            "items": [p.to_json(now) for p in self.pods],
        }


def group(pods: Iterable[PodView], names: Sequence[str] = SERVICES) -> list[Group]:
    """One group per workload (empty ones too: a workload with no pod is news), then
    "other"; pods by name within a group."""
    found: dict[str, list[PodView]] = {name: [] for name in (*names, OTHER)}
    for pod in pods:
        found[workload_of(pod, names)].append(pod)
    return [
        Group(name, tuple(sorted(members, key=lambda p: (p.namespace, p.name))))
        for name, members in found.items()
        if members or name != OTHER
    ]
