"""Each layer's status (host, k3s, Flux, Helm, workloads) from the pollers' readings, in the
operator's words. Pure: readings in, JSON-ready dicts out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from host_service.kube import condition
from host_service.operate.pods import PodView
from host_service.operate.snapshot import NOT_READ, Reading, not_installed, why
from host_service.operate.times import UNKNOWN, duration, parse_time
from host_service.operate.workloads import Group
from host_service.release import CHART_SOURCE_PREFIX

DISK_FULL_PERCENT = 90.0
FLUX_CONTROLLERS = (
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
)
NOT_INSTALLED = "Not installed yet"
RANK = {"bad": 5, "unknown": 4, "warn": 3, "progress": 2, "waiting": 1, "ok": 0}


def worst(healths: Sequence[str], default: str = "ok") -> str:
    return max(healths, key=lambda h: RANK.get(h, 4), default=default)


def _item(name: str, health: str, text: str, detail: str = "") -> dict[str, str]:
    return {"name": name, "health": health, "text": text, "detail": detail}


def _layer(
    name: str,
    title: str,
    reading: Reading,
    now: float,
    *,
    health: str,
    headline: str,
    items: list[dict[str, str]] | None = None,
    facts: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    error = why(reading.error) if reading.error else None
    if reading.error and reading.read_at is None and not_installed(reading.error):
        health, headline = "waiting", NOT_INSTALLED  # Flux's CRDs are on their way
    elif error and reading.read_at is None:
        health, headline = "unknown", f"Cannot be read: {error}"
    elif error:
        age = duration(reading.age(now))
        headline = f"{headline} (as read {age} ago; the last read failed)"
        health = worst([health, "warn"])
    return {
        "name": name,
        "title": title,
        "health": health,
        "headline": headline,
        "error": error,
        "skipped": reading.skipped,
        "age_seconds": reading.age(now),
        "items": items or [],
        "facts": [list(f) for f in facts or []],
    }


def _unread(
    name: str, label: str, reading: Reading, now: float, *, cannot: str
) -> dict[str, str] | None:
    """The item of a reading beside the layer's own that failed: never read (``cannot``:
    why; not installed yet is waiting), or what is shown is from an older read: its age and
    why the last read failed."""
    if not reading.error:
        return None
    if reading.read_at is None:
        health = "waiting" if not_installed(reading.error) else "unknown"
        return _item(name, health, f"{cannot}: {why(reading.error)}")
    age = duration(reading.age(now))
    text = f"{label} as read {age} ago; the last read failed"
    return _item(name, "warn", text, why(reading.error))


def _waiting(name: str, title: str, reading: Reading, now: float) -> dict[str, Any] | None:
    if reading.skipped and reading.read_at is None:
        return _layer(name, title, reading, now, health="waiting", headline=reading.skipped)
    if reading is NOT_READ or (reading.cycles == 0 and reading.read_at is None):
        return _layer(name, title, reading, now, health="waiting", headline="Not read yet")
    return None


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


# -- host ----------------------------------------------------------------------------------


def host_layer(reading: Reading, now: float) -> dict[str, Any]:
    title = "Host"
    waiting = _waiting("host", title, reading, now)
    if waiting:
        return waiting
    facts_in: Mapping[str, Any] = reading.value or {}
    items = []
    for name, disk in (facts_in.get("disks") or {}).items():
        full = disk["used_percent"] > DISK_FULL_PERCENT
        items.append(
            _item(
                f"disk-{name}",
                "bad" if full else "ok",
                f"{name.capitalize()} volume: {disk['used_percent']:.0f} % used, "
                f"{_bytes(disk['free'])} free of {_bytes(disk['total'])}",
                disk["path"],
            )
        )
    synced = bool(facts_in.get("clock_synchronized"))
    items.append(
        _item(
            "clock",
            "ok" if synced else "warn",
            "Clock synchronized" if synced else "Clock not synchronized (NTP)",
            "" if synced else "TLS to the registry fails when the clock is far off",
        )
    )
    for fact, error in (facts_in.get("unreadable") or {}).items():
        items.append(_item(f"unreadable-{fact}", "warn", f"The {fact} cannot be read", error))
    mem = facts_in.get("memory") or {}
    total, available = mem.get("total"), mem.get("available")
    load = facts_in.get("load")
    facts = [
        ("Up for", duration(facts_in.get("uptime_seconds"))),
        (
            "Load (1, 5, 15 min)",
            (" ".join(f"{x:.2f}" for x in load) if load else UNKNOWN)
            + f" on {facts_in.get('cpus')} CPUs",
        ),
        (
            "Memory",
            f"{_bytes(total - available)} used of {_bytes(total)}"
            if total is not None and available is not None
            else UNKNOWN,
        ),
        ("Addresses", ", ".join(facts_in.get("addresses") or []) or "none"),
    ]
    health = worst([i["health"] for i in items])  # the clock item is always there
    headline = {
        "ok": "Healthy",
        "warn": "Working, with a warning",
        "bad": "A disk is almost full",
    }[health]
    return _layer(
        "host", title, reading, now, health=health, headline=headline, items=items, facts=facts
    )


# -- k3s -----------------------------------------------------------------------------------


def k3s_layer(service: Reading, nodes: Reading, now: float) -> dict[str, Any]:
    title = "Kubernetes (k3s)"
    waiting = _waiting("k3s", title, service, now)
    if waiting:
        return waiting
    state: Mapping[str, Any] = service.value or {}
    items = []
    unit = state.get("unit", "unknown")
    unit_ok = unit == "active"
    items.append(
        _item("service", "ok" if unit_ok else "bad", f"k3s service: {unit}", state.get("sub", ""))
    )
    api_ok = state.get("api") == "ok"
    items.append(
        _item(
            "api",
            "ok" if api_ok else "bad",
            "API ready" if api_ok else "API not ready",
            state.get("api_error", ""),
        )
    )
    version = ""
    unread = _unread("nodes", "Nodes", nodes, now, cannot="Nodes cannot be read")
    if unread:
        items.append(unread)
    for node in nodes.value or []:
        items.append(node_item(node))
        version = version or str(
            ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion") or ""
        )
    if nodes.read_at is not None and not nodes.value:
        items.append(_item("nodes", "bad", "No node has registered"))
    health = worst([i["health"] for i in items])
    # Warn only when the nodes shown are from an older read: the service and API are up.
    headline = {"ok": "Running", "warn": "Running, with a warning"}.get(health, "Not ready")
    facts = [("Version", version or "—")]
    return _layer(
        "k3s", title, service, now, health=health, headline=headline, items=items, facts=facts
    )


def node_item(node: Mapping[str, Any]) -> dict[str, str]:
    name = str((node.get("metadata") or {}).get("name") or "")
    ready = condition(node, "Ready")
    ok = ready is not None and ready.get("status") == "True"
    pressures = [
        str(c.get("type"))
        for c in (node.get("status") or {}).get("conditions") or []
        if c.get("type") != "Ready" and c.get("status") == "True"
    ]
    text = f"Node {name}: {'Ready' if ok else 'NotReady'}"
    if pressures:
        text += f" ({', '.join(pressures)})"
    detail = str((ready or {}).get("message") or "")
    return _item(f"node-{name}", "ok" if ok and not pressures else "bad", text, detail)


# -- Flux ----------------------------------------------------------------------------------


def _ready(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(health, message) from the Ready condition."""
    ready = condition(obj, "Ready")
    if ready is None:
        return "progress", "not reconciled yet"
    message = str(ready.get("message") or ready.get("reason") or "")
    status = ready.get("status")
    if status == "True":
        return "ok", message
    if status == "Unknown":
        return "progress", message
    return "bad", message


def _revision_note(revision: str, expected: str | None) -> tuple[str, str]:
    if not expected:
        return "", revision or "—"
    if not revision:
        return "progress", f"not applied yet (selected {expected})"
    if expected in revision:
        return "", f"{revision} (the selected release)"
    return "progress", f"{revision}, selected {expected}"


def flux_layer(
    controllers: Reading,
    sources: Reading,
    kustomizations: Reading,
    now: float,
    *,
    expected: Mapping[str, str],
) -> dict[str, Any]:
    """``expected``: the selected release's digest per ``Kind/namespace/name``."""
    title = "Flux"
    waiting = _waiting("flux", title, controllers, now)
    if waiting:
        return waiting
    items = []
    found = {str((d.get("metadata") or {}).get("name")): d for d in controllers.value or []}
    if controllers.read_at is not None:
        for name in FLUX_CONTROLLERS:
            deployment = found.get(name)
            if deployment is None:
                items.append(_item(name, "waiting", f"{name}: not installed"))
                continue
            available = condition(deployment, "Available")
            ok = available is not None and available.get("status") == "True"
            items.append(
                _item(
                    name,
                    "ok" if ok else "bad",
                    f"{name}: {'Available' if ok else 'not available'}",
                    str((available or {}).get("message") or ""),
                )
            )
    charts: list[dict[str, str]] = []
    for reading, kind, kinds, revision_of in (
        (sources, "OCIRepository", "OCIRepositories", _artifact_revision),
        (kustomizations, "Kustomization", "Kustomizations", _applied_revision),
    ):
        unread = _unread(kind, kinds, reading, now, cannot=kind)
        if unread:
            items.append(unread)
        for obj in reading.value or []:
            health, message = _ready(obj)
            meta = obj.get("metadata") or {}
            name = str(meta.get("name") or "")
            key = f"{kind}/{meta.get('namespace')}/{name}"
            extra, revision = _revision_note(revision_of(obj), expected.get(key))
            health = worst([health, extra or "ok"])
            # Healthy: the revision is the detail; otherwise the message comes first.
            detail = f"revision {revision}" if health == "ok" else f"{message}; revision {revision}"
            item = _item(
                f"{kind}/{name}",
                health,
                f"{kind} {meta.get('namespace')}/{name}: {_ready_word(health)}",
                detail,
            )
            chart = kind == "OCIRepository" and name.startswith(CHART_SOURCE_PREFIX)
            (charts if chart else items).append(item)
    # The charts' sources, one per workload: one line while they are all well.
    healthy = [c for c in charts if c["health"] == "ok"]
    if charts:
        items.append(
            _item(
                "chart-sources",
                worst([c["health"] for c in charts]),
                f"Chart sources: {len(healthy)} of {len(charts)} Ready at the selected release",
                ", ".join(
                    c["name"].removeprefix(f"OCIRepository/{CHART_SOURCE_PREFIX}") for c in healthy
                ),
            )
        )
        items += [c for c in charts if c["health"] != "ok"]
    health = worst([i["health"] for i in items], default="waiting")
    headline = {"ok": "Reconciled", "progress": "Reconciling", "waiting": NOT_INSTALLED}.get(
        health, "Needs attention"
    )
    return _layer("flux", title, controllers, now, health=health, headline=headline, items=items)


def _ready_word(health: str) -> str:
    return {"ok": "Ready", "progress": "in progress", "bad": "not Ready"}.get(health, health)


def _artifact_revision(obj: Mapping[str, Any]) -> str:
    return str(((obj.get("status") or {}).get("artifact") or {}).get("revision") or "")


def _applied_revision(obj: Mapping[str, Any]) -> str:
    return str((obj.get("status") or {}).get("lastAppliedRevision") or "")


# -- Helm ----------------------------------------------------------------------------------


def helm_release_view(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    history = [h for h in status.get("history") or [] if isinstance(h, Mapping)]
    health, message = _ready(obj)
    failures = sum(
        int(status.get(k) or 0) for k in ("failures", "installFailures", "upgradeFailures")
    )
    ready = condition(obj, "Ready")
    return {
        "name": str(meta.get("name") or ""),
        "namespace": str(meta.get("namespace") or ""),
        "health": health,
        "ready": _ready_word(health),
        "since": parse_time((ready or {}).get("lastTransitionTime")),
        "chart_version": str(
            (history[0].get("chartVersion") if history else "")
            or (meta.get("annotations") or {}).get("alga.appliance/chart-version")
            or ""
        ),
        "last_attempted": str(status.get("lastAttemptedRevision") or ""),
        "last_applied": str(
            (history[0].get("chartVersion") if history else "")
            or status.get("lastAppliedRevision")
            or ""
        ),
        "failures": failures,
        "message": message,
    }


def helm_layer(releases: Reading, now: float) -> dict[str, Any]:
    title = "Helm releases"
    waiting = _waiting("helm", title, releases, now)
    if waiting:
        return waiting
    items = []
    for obj in releases.value or []:
        view = helm_release_view(obj)
        text = f"{view['name']}: {view['ready']}"
        if view["chart_version"]:
            text += f", chart {view['chart_version']}"
        if view["failures"]:
            text += f", {view['failures']} failure(s)"
        detail = view["message"]
        if view["last_attempted"] and view["last_attempted"] != view["chart_version"]:
            detail = f"last attempted {view['last_attempted']}; {detail}"
        items.append(_item(view["name"], view["health"], text, detail))
    health = worst([i["health"] for i in items], default="waiting")
    ready = sum(1 for i in items if i["health"] == "ok")
    headline = f"{ready} of {len(items)} releases Ready" if items else "No release installed yet"
    return _layer("helm", title, releases, now, health=health, headline=headline, items=items)


# -- workloads -----------------------------------------------------------------------------


def workloads_layer(pods: Reading, groups: list[Group], now: float) -> dict[str, Any]:
    title = "Workloads"
    waiting = _waiting("workloads", title, pods, now)
    if waiting:
        return waiting
    items = []
    for g in groups:
        summary = g.to_json(now)
        if g.health == "missing":
            text = f"{summary['title']}: no pods"
        else:
            text = f"{summary['title']}: {summary['pods_ready']}/{summary['pods']} pods ready"
        bad: list[PodView] = [p for p in g.pods if p.health == "bad"]
        detail = "; ".join(f"{p.name}: {p.status}" for p in bad)
        health = {"missing": "waiting"}.get(g.health, g.health)
        items.append(_item(g.name, "ok" if health == "done" else health, text, detail))
    # A workload without pods is shown as such; it alone does not make the layer unwell.
    health = worst([i["health"] for i in items if i["health"] != "waiting"], default="waiting")
    running = sum(1 for i in items if i["health"] == "ok")
    headline = f"{running} of {len(items)} running"
    return _layer("workloads", title, pods, now, health=health, headline=headline, items=items)
