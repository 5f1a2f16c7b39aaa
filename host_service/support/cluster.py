"""The cluster parts of the support bundle, read through the service's own Kubernetes seam.

Runs in its own thread under a deadline: with k3s down or the API hung the bundle still
comes out, and these parts say why they are missing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from host_service.command import CommandError
from host_service.kube import Kube, Object
from host_service.settings import Settings
from host_service.support.archive import Item
from host_service.support.inventory import cluster_secrets
from host_service.support.redact import scrub_object

FLUX_SOURCES = "source.toolkit.fluxcd.io"
OBJECT_LIMIT = 8 * 1024 * 1024

# (bundle path, resource, namespace: None = all, what it is for)
LISTS: tuple[tuple[str, str], ...] = (
    ("cluster/nodes.json", "nodes"),
    ("cluster/namespaces.json", "namespaces"),
    ("cluster/events.json", "events"),
    ("flux/ocirepositories.json", f"ocirepositories.{FLUX_SOURCES}"),
    ("flux/helmrepositories.json", f"helmrepositories.{FLUX_SOURCES}"),
    ("flux/kustomizations.json", "kustomizations.kustomize.toolkit.fluxcd.io"),
    ("helm/helmreleases.json", "helmreleases.helm.toolkit.fluxcd.io"),
    ("workloads/pods.json", "pods"),
    ("workloads/deployments.json", "deployments.apps"),
    ("workloads/statefulsets.json", "statefulsets.apps"),
    ("workloads/daemonsets.json", "daemonsets.apps"),
    ("storage/storageclasses.json", "storageclasses.storage.k8s.io"),
    ("storage/persistentvolumes.json", "persistentvolumes"),
    ("storage/persistentvolumeclaims.json", "persistentvolumeclaims"),
)
PLANNED = (
    "cluster/readyz.txt",
    "cluster/secrets.json",
    *(path for path, _ in LISTS),
    "appliance/configmaps.json",
    "storage/local-path-config.json",
    "logs/",
)


@dataclass(frozen=True)
class LogLimits:
    lines: int = 1000  # per container (and per previous instance)
    bytes: int = 512 * 1024  # per container log
    total: int = 24 * 1024 * 1024  # all logs together


def _json(document: Any) -> bytes:
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()


def _error(exc: CommandError) -> str:
    return f"{exc.message}\n{exc.output}".strip()


@dataclass
class ClusterCollector:
    """Collects into ``items``; ``secrets`` are the cluster's Secret values (for redaction)."""

    kube: Kube
    settings: Settings
    logs: LogLimits
    cancelled: threading.Event = field(default_factory=threading.Event)
    items: list[Item] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    reachable: bool | None = None  # None: no answer yet
    error: str | None = None
    done: set[str] = field(default_factory=set)

    def _put(self, item: Item) -> None:
        if item.error is not None and self.cancelled.is_set():
            # The call was ended by the deadline, it did not fail on its own.
            item = Item(item.path, item.how, skipped="not collected: the time bound was reached")
        self.items.append(item)
        self.done.add(item.path if not item.path.startswith("logs/") else "logs/")

    @property
    def namespaces(self) -> tuple[str, ...]:
        ns = self.settings.namespaces
        return (ns.workloads, ns.system, ns.flux, "kube-system")

    def run(self) -> None:
        try:
            health = self.kube.readyz()
        except CommandError as exc:
            if not self.cancelled.is_set():  # else the deadline ended the call
                self.reachable = False
                self.error = _error(exc)
            return
        self.reachable = True
        self._put(Item("cluster/readyz.txt", "kubectl get --raw=/readyz", data=health.encode()))
        try:
            values, secrets = cluster_secrets(self.kube)
        except CommandError as exc:
            # Without the Secret values logs cannot be redacted by value: leave them out.
            self._put(Item("cluster/secrets.json", "kubectl get secrets -A", error=_error(exc)))
            why = "left out: the Secrets (needed to redact logs by value) could not be read"
            self._put(Item("logs/", "pod logs", skipped=why))
        else:
            self.secrets = values
            self._put(self._objects("cluster/secrets.json", "kubectl get secrets -A", secrets))
        for path, resource in LISTS:
            if self.cancelled.is_set():
                return
            self._put(self._list(path, resource))
        self._put(self._configmaps())
        self._put(self._local_path_config())
        if "logs/" not in self.done:
            pods = self._pods()
            self._collect_logs(pods)

    def _objects(self, path: str, how: str, objects: Iterable[Object]) -> Item:
        document = {"items": [scrub_object(o) for o in objects]}
        return Item(path, how, data=_json(document), limit=OBJECT_LIMIT, keep="head")

    def _list(self, path: str, resource: str, namespace: str | None = None) -> Item:
        how = f"kubectl get {resource} " + (f"-n {namespace}" if namespace else "-A")
        try:
            objects = self.kube.list(resource, namespace)
        except CommandError as exc:
            return Item(path, how, error=_error(exc))
        return self._objects(path, how, objects)

    def _configmaps(self) -> Item:
        system = self.settings.namespaces.system
        return self._list("appliance/configmaps.json", "configmaps", system)

    def _local_path_config(self) -> Item:
        how = "kubectl get configmap -n kube-system local-path-config"
        try:
            obj = self.kube.get("configmaps", "local-path-config", "kube-system")
        except CommandError as exc:
            return Item("storage/local-path-config.json", how, error=_error(exc))
        if obj is None:
            return Item("storage/local-path-config.json", how, skipped="not present")
        return Item("storage/local-path-config.json", how, data=_json(scrub_object(obj)))

    def _pods(self) -> list[Object]:
        pods: list[Object] = []
        for namespace in self.namespaces:
            try:
                pods += self.kube.list("pods", namespace)
            except CommandError as exc:
                self._put(Item(f"logs/{namespace}/", "kubectl get pods", error=_error(exc)))
        return pods

    def _collect_logs(self, pods: list[Object]) -> None:
        left = self.logs.total
        for pod in pods:
            meta = pod.get("metadata", {})
            namespace, name = str(meta.get("namespace")), str(meta.get("name"))
            restarts = {
                str(s.get("name")): int(s.get("restartCount") or 0)
                for s in (pod.get("status", {}).get("containerStatuses") or [])
            }
            for container in pod.get("spec", {}).get("containers") or []:
                cname = str(container.get("name"))
                instances = [False, True] if restarts.get(cname, 0) > 0 else [False]
                for previous in instances:
                    suffix = ".previous.log" if previous else ".log"
                    path = f"logs/{namespace}/{name}/{cname}{suffix}"
                    how = (
                        f"kubectl logs -n {namespace} {name} -c {cname} "
                        f"--tail={self.logs.lines}" + (" --previous" if previous else "")
                    )
                    if self.cancelled.is_set():
                        return
                    if left <= 0:
                        self._put(Item(path, how, skipped="the bundle's log budget is used up"))
                        continue
                    try:
                        text = self.kube.logs(
                            namespace,
                            name,
                            container=cname,
                            tail=self.logs.lines,
                            previous=previous,
                        )
                    except CommandError as exc:
                        self._put(Item(path, how, error=_error(exc)))
                        continue
                    data = text.encode("utf-8", "surrogateescape")
                    limit = min(self.logs.bytes, left)
                    left -= min(len(data), limit)
                    self._put(Item(path, how, data=data, limit=limit))
