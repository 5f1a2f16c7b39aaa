"""Blockers after the bootstrap: a Kustomization or HelmRelease not Ready past a threshold, a
node NotReady, a disk above 90 %. The same shape as a bootstrap blocker (what, likely cause,
next step, evidence) plus when it started; each clears itself when its condition clears.

``problems`` is pure (readings in); ``RuntimeBlockers`` remembers when each one started.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from host_service.kube import condition
from host_service.operate.layers import DISK_FULL_PERCENT, helm_release_view
from host_service.operate.snapshot import Reading
from host_service.operate.times import parse_time
from host_service.steps.blockers import Wording

NOT_READY = Wording(
    "{kind} {name} has not been Ready for {minutes} minutes",
    "Flux could not apply the release: {message}",
    "open the Helm and Flux details below; fix what the message names (often a values "
    "input in setup, or a registry the appliance cannot reach), then reconcile again from "
    "Updates; if it persists, download a support bundle",
)
NODE = Wording(
    "node {name} is NotReady",
    "the kubelet stopped reporting: {message}",
    "check the k3s service (journalctl -u k3s) and the host's memory and disk below; a "
    "reboot of the appliance restarts it",
)
DISK = Wording(
    "the {name} volume is {percent:.0f} % full",
    "{path} has {free} left; k3s evicts pods and the database stops writing when it fills",
    "free space there (old support bundles, unused images: k3s crictl rmi --prune) or grow "
    "the volume (lvextend + resize2fs)",
)

UNCHECKED = Wording(
    "the runtime checks stopped: the blockers shown may be out of date",
    "the host service failed to evaluate its readings: {error}",
    "download a support bundle (the service's journal in it has the traceback) and report "
    "it; the layers below still show what was read, each with its age",
)
UNCHECKED_KEY = "checks/runtime"


@dataclass(frozen=True, kw_only=True)
class Problem:
    key: str
    layer: str
    wording: Wording
    fields: Mapping[str, object]
    evidence: str
    since: float | None  # when the API says it started, if it says
    after: float  # seconds it must last before it blocks
    fix: str  # where it is fixed: a page of this service


@dataclass(frozen=True, kw_only=True)
class RuntimeBlocker:
    key: str
    layer: str
    message: str
    cause: str
    next_step: str
    output: str
    at: float  # when the condition started
    fix: str

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "layer": self.layer,
            "message": self.message,
            "cause": self.cause,
            "next_step": self.next_step,
            "output": self.output,
            "at": self.at,
            "fix": self.fix,
        }


def unchecked(error: str, since: float) -> RuntimeBlocker:
    """The blocker shown while the checks themselves fail: the blockers raised before stay
    (a failing check clears nothing), but cannot clear or be joined by new ones."""
    fields = {"error": error}
    return RuntimeBlocker(
        key=UNCHECKED_KEY,
        layer="host",
        message=UNCHECKED.message.format(**fields),
        cause=UNCHECKED.cause.format(**fields),
        next_step=UNCHECKED.next_step.format(**fields),
        output=error,
        at=since,
        fix="/status#support",
    )


def _not_ready(kind: str, obj: Mapping[str, Any], threshold: float) -> Problem | None:
    ready = condition(obj, "Ready")
    if ready is not None and ready.get("status") == "True":
        return None
    meta = obj.get("metadata") or {}
    message = str((ready or {}).get("message") or "it has not reported a Ready condition")
    if kind == "HelmRelease":
        view = helm_release_view(obj)
        evidence = (
            f"HelmRelease {view['namespace']}/{view['name']}: Ready={view['ready']}, "
            f"chart {view['chart_version'] or '?'}, last attempted "
            f"{view['last_attempted'] or '?'}, failures {view['failures']}\n{message}"
        )
    else:
        status = obj.get("status") or {}
        evidence = (
            f"{kind} {meta.get('namespace')}/{meta.get('name')}: last applied "
            f"{status.get('lastAppliedRevision') or '?'}, last attempted "
            f"{status.get('lastAttemptedRevision') or '?'}\n{message}"
        )
    return Problem(
        key=f"{kind}/{meta.get('namespace')}/{meta.get('name')}",
        layer="helm" if kind == "HelmRelease" else "flux",
        wording=NOT_READY,
        fields={"kind": kind, "name": meta.get("name"), "message": message},
        evidence=evidence,
        since=parse_time((ready or {}).get("lastTransitionTime")),
        after=threshold,
        fix="/update",
    )


def problems(
    readings: Mapping[str, Reading], *, threshold: float, after_bootstrap: bool
) -> list[Problem]:
    """What is wrong now. Flux objects count only once the bootstrap has handed over (until
    then the bootstrap's own blocker speaks for them)."""
    found: list[Problem] = []
    host = readings.get("host")
    for name, disk in ((host.value if host else None) or {}).get("disks", {}).items():
        if disk["used_percent"] > DISK_FULL_PERCENT:
            found.append(
                Problem(
                    key=f"disk/{name}",
                    layer="host",
                    wording=DISK,
                    fields={
                        "name": name,
                        "percent": disk["used_percent"],
                        "path": disk["path"],
                        "free": f"{disk['free'] / 2**30:.1f} GiB",
                    },
                    evidence=f"{disk['path']}: {disk['used_percent']} % used, "
                    f"{disk['free']} of {disk['total']} bytes free",
                    since=None,
                    after=0.0,
                    fix="/status#layer-host",
                )
            )
    nodes = readings.get("nodes")
    for node in (nodes.value if nodes else None) or []:
        ready = condition(node, "Ready")
        if ready is not None and ready.get("status") == "True":
            continue
        name = str((node.get("metadata") or {}).get("name"))
        conditions = (node.get("status") or {}).get("conditions") or []
        found.append(
            Problem(
                key=f"node/{name}",
                layer="k3s",
                wording=NODE,
                fields={"name": name, "message": (ready or {}).get("message") or "no Ready"},
                evidence="\n".join(
                    f"{c.get('type')}={c.get('status')} {c.get('reason', '')}: "
                    f"{c.get('message', '')}"
                    for c in conditions
                ),
                since=parse_time((ready or {}).get("lastTransitionTime")),
                after=0.0,
                fix="/status#layer-k3s",
            )
        )
    if after_bootstrap:
        for reading_name, kind in (("kustomizations", "Kustomization"), ("helm", "HelmRelease")):
            reading = readings.get(reading_name)
            for obj in (reading.value if reading else None) or []:
                problem = _not_ready(kind, obj, threshold)
                if problem is not None:
                    found.append(problem)
    return found


class RuntimeBlockers:
    """When each current problem started; a problem that clears is forgotten."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}
        self._lock = threading.Lock()

    def update(self, current: list[Problem], now: float) -> list[RuntimeBlocker]:
        with self._lock:
            keys = {p.key for p in current}
            for gone in set(self._since) - keys:
                del self._since[gone]
            raised = []
            for problem in current:
                started = self._since.get(problem.key, problem.since or now)
                # A clock stepped back, or a start the API dates after our now, would hide
                # even an at-once blocker until the wall time caught up: it started by now.
                since = self._since[problem.key] = min(started, now)
                lasted = now - since  # never negative, since is at most now
                if lasted < problem.after:
                    continue
                minutes = max(1, int(lasted // 60))
                fields = {**problem.fields, "minutes": minutes}
                wording = problem.wording
                raised.append(
                    RuntimeBlocker(
                        key=problem.key,
                        layer=problem.layer,
                        message=wording.message.format(**fields),
                        cause=wording.cause.format(**fields),
                        next_step=wording.next_step.format(**fields),
                        output=problem.evidence,
                        at=since,
                        fix=problem.fix,
                    )
                )
            return sorted(raised, key=lambda b: (b.at, b.key))
