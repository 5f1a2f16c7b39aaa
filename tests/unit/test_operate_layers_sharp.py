"""Every layer's JSON held to exact answers, from API-shaped readings: each item's wording,
health and detail, the headlines, the stale and unreadable cases (mutation testing found
these unprotected; docs/testing.md, "Operator views")."""

from __future__ import annotations

from typing import Any

import pytest

from host_service.operate import layers
from host_service.operate.pods import normalize
from host_service.operate.snapshot import NOT_READ, Reading
from host_service.operate.workloads import group

NOW = 1_796_454_000.0  # 2026-12-05T07:00:00Z
T0 = "2026-12-05T06:50:00Z"
GIB = 2**30
REFUSED = "dial tcp 127.0.0.1:6443: connect: connection refused"


def ok(value: Any, age: float = 2) -> Reading:
    return Reading(value=value, read_at=NOW - age, tried_at=NOW - age, cycles=3)


def cond(kind: str, status: str, message: str = "", reason: str = "R") -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": T0,
    }


def host_facts(**changes: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "uptime_seconds": 90061.0,
        "load": [0.5, 1.25, 2.0],
        "cpus": 4,
        "memory": {"total": 8 * GIB, "available": 6 * GIB},
        "disks": {
            "root": {"path": "/", "total": 40 * GIB, "free": 30 * GIB, "used_percent": 25.0},
            "state": {
                "path": "/var/lib/alga-appliance",
                "total": 100 * GIB,
                "free": 10 * GIB,
                "used_percent": 90.0,
            },
        },
        "clock_synchronized": True,
        "addresses": ["192.0.2.10", "fd00::10"],
    }
    facts.update(changes)
    return facts


# -- shared --------------------------------------------------------------------------------


def test_worst_ranks_every_health() -> None:
    order = ["ok", "waiting", "progress", "warn", "unknown", "bad"]
    for i, lower in enumerate(order):
        for higher in order[i + 1 :]:
            assert layers.worst([lower, higher]) == higher
            assert layers.worst([higher, lower]) == higher
    assert layers.worst(["progress", "strange"]) == "strange"  # unknown words rank as unknown
    assert layers.worst(["unknown", "strange"]) == "unknown"  # ...but not above it
    assert layers.worst(["bad", "strange"]) == "bad"
    assert layers.worst([]) == "ok"
    assert layers.worst([], default="waiting") == "waiting"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 * 2**20, "5.0 MiB"),
        (3 * GIB, "3.0 GiB"),
        (2 * 2**40, "2.0 TiB"),
        (2048 * 2**40, "2048.0 TiB"),
    ],
)
def test_bytes_in_binary_units(n: float, text: str) -> None:
    assert layers._bytes(n) == text


def test_a_layer_never_read_or_skipped_waits() -> None:
    expected = {
        "name": "helm",
        "title": "Helm releases",
        "health": "waiting",
        "headline": "Not read yet",
        "error": None,
        "skipped": None,
        "age_seconds": None,
        "items": [],
        "facts": [],
    }
    assert layers.helm_layer(NOT_READ, NOW) == expected
    assert layers.helm_layer(Reading(tried_at=NOW), NOW) == expected  # no cycle done yet
    skipped = Reading(tried_at=NOW, cycles=2, skipped="k3s is not installed yet")
    assert layers.helm_layer(skipped, NOW) == {
        **expected,
        "headline": "k3s is not installed yet",
        "skipped": "k3s is not installed yet",
    }
    # Skipped now, but read before: the last reading still shows.
    was_read = Reading(value=[], read_at=NOW - 5, cycles=2, skipped="k3s stopped")
    assert layers.helm_layer(was_read, NOW)["headline"] == "No release installed yet"
    # A failed first read is not "waiting": it says why.
    failed = Reading(error=REFUSED, tried_at=NOW, cycles=1)
    layer = layers.helm_layer(failed, NOW)
    assert (layer["health"], layer["age_seconds"]) == ("unknown", None)
    assert (
        layer["headline"]
        == f"Cannot be read: k3s is not running: its API refuses connections ({REFUSED})"
    )
    assert layer["error"] == f"k3s is not running: its API refuses connections ({REFUSED})"


def test_a_stale_layer_keeps_its_health_but_at_least_warns() -> None:
    conditions = [cond("Ready", "True", "Helm install succeeded")]
    healthy = [{"metadata": {"name": "db", "namespace": "alga-system"},
                "status": {"conditions": conditions}}]  # fmt: skip
    stale = Reading(value=healthy, read_at=NOW - 150, tried_at=NOW, cycles=9, error=REFUSED)
    layer = layers.helm_layer(stale, NOW)
    assert layer["health"] == "warn"
    assert layer["headline"] == "1 of 1 releases Ready (as read 2m ago; the last read failed)"
    assert layer["age_seconds"] == 150.0
    failing = [{"metadata": {"name": "db", "namespace": "alga-system"},
                "status": {"conditions": [cond("Ready", "False", "install failed")]}}]  # fmt: skip
    stale = Reading(value=failing, read_at=NOW - 150, tried_at=NOW, cycles=9, error=REFUSED)
    assert layers.helm_layer(stale, NOW)["health"] == "bad"


# -- host ----------------------------------------------------------------------------------


def test_the_host_layer_in_full() -> None:
    layer = layers.host_layer(ok(host_facts(), age=3), NOW)
    assert layer == {
        "name": "host",
        "title": "Host",
        "health": "ok",
        "headline": "Healthy",
        "error": None,
        "skipped": None,
        "age_seconds": 3.0,
        "items": [
            {"name": "disk-root", "health": "ok",
             "text": "Root volume: 25 % used, 30.0 GiB free of 40.0 GiB", "detail": "/"},
            {"name": "disk-state", "health": "ok",  # 90 % is the limit, not over it
             "text": "State volume: 90 % used, 10.0 GiB free of 100.0 GiB",
             "detail": "/var/lib/alga-appliance"},
            {"name": "clock", "health": "ok", "text": "Clock synchronized", "detail": ""},
        ],
        "facts": [
            ["Up for", "25h1m"],
            ["Load (1, 5, 15 min)", "0.50 1.25 2.00 on 4 CPUs"],
            ["Memory", "2.0 GiB used of 8.0 GiB"],
            ["Addresses", "192.0.2.10, fd00::10"],
        ],
    }  # fmt: skip


def test_the_host_layer_warns_of_the_clock_and_flags_a_full_disk() -> None:
    unsynced = layers.host_layer(ok(host_facts(clock_synchronized=False)), NOW)
    assert (unsynced["health"], unsynced["headline"]) == ("warn", "Working, with a warning")
    assert unsynced["items"][-1] == {
        "name": "clock",
        "health": "warn",
        "text": "Clock not synchronized (NTP)",
        "detail": "TLS to the registry fails when the clock is far off",
    }
    disks = host_facts()["disks"]
    disks["state"]["used_percent"] = 90.5
    full = layers.host_layer(ok(host_facts(disks=disks, clock_synchronized=False)), NOW)
    assert (full["health"], full["headline"]) == ("bad", "A disk is almost full")
    assert full["items"][1]["health"] == "bad"


def test_the_host_layer_with_facts_missing() -> None:
    layer = layers.host_layer(ok({"cpus": 2}), NOW)
    assert [i["name"] for i in layer["items"]] == ["clock"]
    assert layer["facts"] == [
        ["Up for", "—"],
        ["Load (1, 5, 15 min)", "— on 2 CPUs"],  # unknown, never shown as zero
        ["Memory", "—"],
        ["Addresses", "none"],
    ]
    assert layers.host_layer(ok(None), NOW)["items"][0]["text"] == "Clock not synchronized (NTP)"


# -- k3s -----------------------------------------------------------------------------------


def node(name: str, *conditions: dict[str, Any], version: str = "v1.36.3+k3s1") -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {"conditions": list(conditions), "nodeInfo": {"kubeletVersion": version}},
    }


def test_the_k3s_layer_in_full() -> None:
    service = ok({"unit": "active", "sub": "running", "api": "ok"})
    nodes = ok([node("alga-appliance", cond("Ready", "True", "kubelet is posting ready status"),
                     cond("MemoryPressure", "False"))])  # fmt: skip
    assert layers.k3s_layer(service, nodes, NOW) == {
        "name": "k3s",
        "title": "Kubernetes (k3s)",
        "health": "ok",
        "headline": "Running",
        "error": None,
        "skipped": None,
        "age_seconds": 2.0,
        "items": [
            {"name": "service", "health": "ok", "text": "k3s service: active", "detail": "running"},
            {"name": "api", "health": "ok", "text": "API ready", "detail": ""},
            {"name": "node-alga-appliance", "health": "ok", "text": "Node alga-appliance: Ready",
             "detail": "kubelet is posting ready status"},
        ],
        "facts": [["Version", "v1.36.3+k3s1"]],
    }  # fmt: skip


def test_the_k3s_layer_when_things_fail() -> None:
    service = ok({"unit": "failed", "sub": "exited", "api": "down", "api_error": "no answer"})
    nodes = Reading(error=REFUSED, tried_at=NOW, cycles=1)
    layer = layers.k3s_layer(service, nodes, NOW)
    assert (layer["health"], layer["headline"]) == ("bad", "Not ready")
    assert layer["items"] == [
        {"name": "service", "health": "bad", "text": "k3s service: failed", "detail": "exited"},
        {"name": "api", "health": "bad", "text": "API not ready", "detail": "no answer"},
        {"name": "nodes", "health": "unknown",
         "text": "Nodes cannot be read: k3s is not running: its API refuses connections "
         f"({REFUSED})",
         "detail": ""},
    ]  # fmt: skip
    assert layer["facts"] == [["Version", "—"]]
    empty = layers.k3s_layer(ok({}), ok([]), NOW)
    assert empty["items"] == [
        {"name": "service", "health": "bad", "text": "k3s service: unknown", "detail": ""},
        {"name": "api", "health": "bad", "text": "API not ready", "detail": ""},
        {"name": "nodes", "health": "bad", "text": "No node has registered", "detail": ""},
    ]
    # Nodes read before, the last read failed: the nodes shown are the last known, with
    # their age and why they are not newer.
    stale = Reading(value=[node("n1", cond("Ready", "True"))], read_at=NOW - 9, error=REFUSED)
    layer = layers.k3s_layer(ok({"unit": "active", "api": "ok"}), stale, NOW)
    assert [i["name"] for i in layer["items"]] == ["service", "api", "nodes", "node-n1"]
    assert layer["items"][2] == {
        "name": "nodes",
        "health": "warn",
        "text": "Nodes as read 9s ago; the last read failed",
        "detail": f"k3s is not running: its API refuses connections ({REFUSED})",
    }
    assert (layer["health"], layer["headline"]) == ("warn", "Running, with a warning")


def test_the_first_node_reporting_a_version_names_it() -> None:
    nodes = ok([node("a", cond("Ready", "True"), version=""), node("b", cond("Ready", "True")),
                node("c", cond("Ready", "True"), version="v1.99.0+k3s1")])  # fmt: skip
    layer = layers.k3s_layer(ok({"unit": "active", "api": "ok"}), nodes, NOW)
    assert layer["facts"] == [["Version", "v1.36.3+k3s1"]]
    bare = ok([{"metadata": {"name": "x"}, "status": {"conditions": [cond("Ready", "True")]}}])
    assert layers.k3s_layer(ok({"unit": "active", "api": "ok"}), bare, NOW)["facts"] == [
        ["Version", "—"]
    ]


def test_a_node_item_names_its_pressures() -> None:
    pressed = node("n1", cond("Ready", "True", "ok"), cond("DiskPressure", "True"),
                   cond("PIDPressure", "True"), cond("MemoryPressure", "False"))  # fmt: skip
    assert layers.node_item(pressed) == {
        "name": "node-n1",
        "health": "bad",
        "text": "Node n1: Ready (DiskPressure, PIDPressure)",
        "detail": "ok",
    }
    down = node("n2", cond("Ready", "Unknown", "Kubelet stopped posting node status."))
    assert layers.node_item(down) == {
        "name": "node-n2",
        "health": "bad",
        "text": "Node n2: NotReady",
        "detail": "Kubelet stopped posting node status.",
    }
    assert layers.node_item({}) == {
        "name": "node-",
        "health": "bad",
        "text": "Node : NotReady",
        "detail": "",
    }


# -- Flux ----------------------------------------------------------------------------------

DIGEST = "sha256:" + "ab" * 32


def controllers(*, missing: str = "", unavailable: str = "") -> list[dict[str, Any]]:
    found = []
    for name in layers.FLUX_CONTROLLERS:
        if name == missing:
            continue
        status = "False" if name == unavailable else "True"
        message = "Deployment does not have minimum availability." if status == "False" else "up"
        found.append(
            {
                "metadata": {"name": name},
                "status": {"conditions": [cond("Available", status, message)]},
            }
        )
    return found


def source(
    name: str, ready: str, revision: str, message: str = "stored artifact"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "flux-system"},
        "status": {
            "conditions": [cond("Ready", ready, message)],
            "artifact": {"revision": revision},
        },
    }


def kustomization(name: str, ready: str, revision: str, message: str = "Applied") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "flux-system"},
        "status": {"conditions": [cond("Ready", ready, message)], "lastAppliedRevision": revision},
    }


def test_the_flux_layer_in_full() -> None:
    sources = [
        source("alga-appliance", "True", f"latest@{DIGEST}"),
        source("alga-chart-db", "True", "1.2.0@sha256:cd"),
        source("alga-chart-redis", "True", "7.0.0@sha256:ef"),
        source("alga-chart-temporal", "False", "", "failed to pull: 401 Unauthorized"),
    ]
    kustomizations = [kustomization("alga-appliance", "Unknown", "", "Reconciliation in progress")]
    expected = {
        "OCIRepository/flux-system/alga-appliance": DIGEST,
        "Kustomization/flux-system/alga-appliance": DIGEST,
    }
    layer = layers.flux_layer(
        ok(controllers(missing="notification-controller", unavailable="helm-controller")),
        ok(sources),
        ok(kustomizations),
        NOW,
        expected=expected,
    )
    assert (layer["name"], layer["title"]) == ("flux", "Flux")
    assert (layer["health"], layer["headline"]) == ("bad", "Needs attention")
    assert layer["items"] == [
        {"name": "source-controller", "health": "ok", "text": "source-controller: Available",
         "detail": "up"},
        {"name": "kustomize-controller", "health": "ok", "text": "kustomize-controller: Available",
         "detail": "up"},
        {"name": "helm-controller", "health": "bad", "text": "helm-controller: not available",
         "detail": "Deployment does not have minimum availability."},
        {"name": "notification-controller", "health": "waiting",
         "text": "notification-controller: not installed", "detail": ""},
        {"name": "OCIRepository/alga-appliance", "health": "ok",
         "text": "OCIRepository flux-system/alga-appliance: Ready",
         "detail": f"revision latest@{DIGEST} (the selected release)"},
        {"name": "Kustomization/alga-appliance", "health": "progress",
         "text": "Kustomization flux-system/alga-appliance: in progress",
         "detail": f"Reconciliation in progress; revision not applied yet (selected {DIGEST})"},
        {"name": "chart-sources", "health": "bad",
         "text": "Chart sources: 2 of 3 Ready at the selected release", "detail": "db, redis"},
        {"name": "OCIRepository/alga-chart-temporal", "health": "bad",
         "text": "OCIRepository flux-system/alga-chart-temporal: not Ready",
         "detail": "failed to pull: 401 Unauthorized; revision —"},
    ]  # fmt: skip


def test_flux_headlines() -> None:
    def headline(*, sources: list[dict[str, Any]], expected: dict[str, str] | None = None) -> Any:
        layer = layers.flux_layer(
            ok(controllers()), ok(sources), ok([]), NOW, expected=expected or {}
        )
        return layer["health"], layer["headline"]

    assert headline(sources=[source("s", "True", "r")]) == ("ok", "Reconciled")
    assert headline(sources=[source("s", "Unknown", "r")]) == ("progress", "Reconciling")
    assert headline(sources=[source("s", "True", "old")], expected={
        "OCIRepository/flux-system/s": DIGEST}) == ("progress", "Reconciling")  # fmt: skip
    nothing = layers.flux_layer(ok([]), ok([]), ok([]), NOW, expected={})
    assert (nothing["health"], nothing["headline"]) == ("waiting", "Not installed yet")


def test_flux_objects_without_a_ready_condition_are_not_reconciled_yet() -> None:
    bare = {"metadata": {"name": "alga-appliance", "namespace": "flux-system"}, "status": {}}
    layer = layers.flux_layer(ok(controllers()), ok([]), ok([bare]), NOW, expected={})
    assert layer["items"][-1] == {
        "name": "Kustomization/alga-appliance",
        "health": "progress",
        "text": "Kustomization flux-system/alga-appliance: in progress",
        "detail": "not reconciled yet; revision —",
    }
    reason_only = kustomization("k", "False", "r1", message="")
    reason_only["status"]["conditions"][0]["reason"] = "BuildFailed"
    layer = layers.flux_layer(ok(controllers()), ok([]), ok([reason_only]), NOW, expected={})
    assert layer["items"][-1]["detail"] == "BuildFailed; revision r1"
    silent = kustomization("k", "False", "r1", message="")
    del silent["status"]["conditions"][0]["reason"]
    layer = layers.flux_layer(ok(controllers()), ok([]), ok([silent]), NOW, expected={})
    assert layer["items"][-1]["detail"] == "; revision r1"


def test_flux_readings_that_fail() -> None:
    refused = Reading(error=REFUSED, tried_at=NOW, cycles=1)
    layer = layers.flux_layer(ok(controllers()), refused, refused, NOW, expected={})
    assert layer["items"][-2:] == [
        {"name": "OCIRepository", "health": "unknown",
         "text": f"OCIRepository: k3s is not running: its API refuses connections ({REFUSED})",
         "detail": ""},
        {"name": "Kustomization", "health": "unknown",
         "text": f"Kustomization: k3s is not running: its API refuses connections ({REFUSED})",
         "detail": ""},
    ]  # fmt: skip
    # Controllers that cannot be read are not each "not installed".
    no_controllers = layers.flux_layer(refused, ok([]), ok([]), NOW, expected={})
    assert no_controllers["items"] == []
    assert no_controllers["health"] == "unknown"


@pytest.mark.parametrize(
    ("revision", "expected", "note"),
    [
        ("v1@sha256:aa", None, ("", "v1@sha256:aa")),
        ("", None, ("", "—")),
        ("", "sha256:bb", ("progress", "not applied yet (selected sha256:bb)")),
        ("v1@sha256:bb", "sha256:bb", ("", "v1@sha256:bb (the selected release)")),
        ("v1@sha256:aa", "sha256:bb", ("progress", "v1@sha256:aa, selected sha256:bb")),
    ],
)
def test_revision_notes(revision: str, expected: str | None, note: tuple[str, str]) -> None:
    assert layers._revision_note(revision, expected) == note


def test_ready_words() -> None:
    assert [layers._ready_word(h) for h in ("ok", "progress", "bad", "warn")] == [
        "Ready",
        "in progress",
        "not Ready",
        "warn",
    ]


# -- Helm ----------------------------------------------------------------------------------


def helm_release(name: str, ready: str = "True", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "alga-system"},
        "status": {"conditions": [cond("Ready", ready, f"{name} says {ready}")], **status},
    }


def test_a_helm_release_view_in_full() -> None:
    release = helm_release(
        "alga-core",
        "False",
        history=[{"chartVersion": "1.2.1", "status": "failed"}, {"chartVersion": "1.2.0"}],
        lastAttemptedRevision="1.2.1",
        lastAppliedRevision="1.2.0",
        failures=1,
        installFailures="2",
        upgradeFailures=3,
    )
    assert layers.helm_release_view(release) == {
        "name": "alga-core",
        "namespace": "alga-system",
        "health": "bad",
        "ready": "not Ready",
        "since": NOW - 600,
        "chart_version": "1.2.1",
        "last_attempted": "1.2.1",
        "last_applied": "1.2.1",
        "failures": 6,
        "message": "alga-core says False",
    }


def test_a_helm_release_without_history_reads_its_annotation_and_revision() -> None:
    release = helm_release("db", "Unknown", lastAppliedRevision="1.1.0")
    release["metadata"]["annotations"] = {"alga.appliance/chart-version": "1.1.0-ann"}
    view = layers.helm_release_view(release)
    assert (view["chart_version"], view["last_applied"], view["last_attempted"]) == (
        "1.1.0-ann",
        "1.1.0",
        "",
    )
    assert (view["health"], view["ready"], view["failures"]) == ("progress", "in progress", 0)
    bare = layers.helm_release_view({"metadata": {}})
    assert bare == {
        "name": "",
        "namespace": "",
        "health": "progress",
        "ready": "in progress",
        "since": None,
        "chart_version": "",
        "last_attempted": "",
        "last_applied": "",
        "failures": 0,
        "message": "not reconciled yet",
    }
    junk_history = helm_release("x", history=["junk", {"chartVersion": "2.0.0"}])
    assert layers.helm_release_view(junk_history)["chart_version"] == "2.0.0"


def test_the_helm_layer_in_full() -> None:
    releases = [
        helm_release("db", history=[{"chartVersion": "15.5.0"}]),
        helm_release("redis", "False", upgradeFailures=2),
        helm_release("temporal", "Unknown"),
    ]
    layer = layers.helm_layer(ok(releases), NOW)
    assert layer == {
        "name": "helm",
        "title": "Helm releases",
        "health": "bad",
        "headline": "1 of 3 releases Ready",
        "error": None,
        "skipped": None,
        "age_seconds": 2.0,
        "items": [
            {"name": "db", "health": "ok", "text": "db: Ready, chart 15.5.0",
             "detail": "db says True"},
            {"name": "redis", "health": "bad", "text": "redis: not Ready, 2 failure(s)",
             "detail": "redis says False"},
            {"name": "temporal", "health": "progress", "text": "temporal: in progress",
             "detail": "temporal says Unknown"},
        ],
        "facts": [],
    }  # fmt: skip
    empty = layers.helm_layer(ok([]), NOW)
    assert (empty["health"], empty["headline"]) == ("waiting", "No release installed yet")


# -- workloads -----------------------------------------------------------------------------


def pod(name: str, workload: str, phase: str = "Running", *, ready: bool = True) -> Any:
    state: dict[str, Any] = {"running": {"startedAt": T0}}
    if phase == "Failed":
        state = {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": T0}}
    if phase == "Pending":
        state = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}
    return normalize(
        {
            "metadata": {"name": name, "namespace": "msp", "creationTimestamp": T0,
                         "labels": {"app.kubernetes.io/instance": workload}},
            "spec": {"containers": [{"name": "app", "image": "i"}]},
            "status": {"phase": phase, "containerStatuses": [
                {"name": "app", "ready": ready, "restartCount": 0, "state": state}]},
        }
    )  # fmt: skip


def test_the_workloads_layer_in_full() -> None:
    pods = [
        pod("db-0", "db"),
        pod("redis-0", "redis", "Pending"),
        pod("redis-1", "redis", "Failed"),
        pod("migrate-1", "alga-core", "Succeeded"),
    ]
    groups = group(pods, names=("alga-core", "db", "redis", "temporal"))
    layer = layers.workloads_layer(ok([]), groups, NOW)
    assert (layer["name"], layer["title"]) == ("workloads", "Workloads")
    assert (layer["health"], layer["headline"]) == ("bad", "2 of 4 running")
    assert layer["items"] == [
        {"name": "alga-core", "health": "ok", "text": "Alga PSA (web and API): 0/0 pods ready",
         "detail": ""},
        {"name": "db", "health": "ok", "text": "Database (PostgreSQL): 1/1 pods ready",
         "detail": ""},
        {"name": "redis", "health": "bad", "text": "Cache (Redis): 0/2 pods ready",
         "detail": "redis-0: CrashLoopBackOff; redis-1: Error"},
        {"name": "temporal", "health": "waiting", "text": "Workflow engine (Temporal): no pods",
         "detail": ""},
    ]  # fmt: skip


def test_a_workload_without_pods_alone_does_not_make_the_layer_unwell() -> None:
    groups = group([pod("db-0", "db")], names=("db", "redis"))
    layer = layers.workloads_layer(ok([]), groups, NOW)
    assert (layer["health"], layer["headline"]) == ("ok", "1 of 2 running")
    nothing = layers.workloads_layer(ok([]), group([], names=("db",)), NOW)
    assert (nothing["health"], nothing["headline"]) == ("waiting", "0 of 1 running")
    unready = group([pod("db-0", "db", ready=False)], names=("db",))
    assert layers.workloads_layer(ok([]), unready, NOW)["items"][0]["text"] == (
        "Database (PostgreSQL): 0/1 pods ready"
    )
    assert layers.workloads_layer(NOT_READ, unready, NOW)["headline"] == "Not read yet"


def test_every_layer_waits_under_its_own_name_until_first_read() -> None:
    found = [
        layers.host_layer(NOT_READ, NOW),
        layers.k3s_layer(NOT_READ, NOT_READ, NOW),
        layers.flux_layer(NOT_READ, NOT_READ, NOT_READ, NOW, expected={}),
        layers.helm_layer(NOT_READ, NOW),
        layers.workloads_layer(NOT_READ, [], NOW),
    ]
    assert [(x["name"], x["title"], x["health"], x["headline"]) for x in found] == [
        ("host", "Host", "waiting", "Not read yet"),
        ("k3s", "Kubernetes (k3s)", "waiting", "Not read yet"),
        ("flux", "Flux", "waiting", "Not read yet"),
        ("helm", "Helm releases", "waiting", "Not read yet"),
        ("workloads", "Workloads", "waiting", "Not read yet"),
    ]
    assert all(x["age_seconds"] is None and x["items"] == [] for x in found)


def test_flux_items_with_parts_missing() -> None:
    first_missing = controllers(missing="source-controller")
    del first_missing[0]["status"]["conditions"][0]["message"]  # kustomize-controller's
    sources = [{"metadata": {"namespace": "flux-system"}, "status": {}}]  # no name yet
    layer = layers.flux_layer(ok(first_missing), ok(sources), NOT_READ, NOW, expected={})
    assert layer["items"] == [
        {"name": "source-controller", "health": "waiting",
         "text": "source-controller: not installed", "detail": ""},
        {"name": "kustomize-controller", "health": "ok", "text": "kustomize-controller: Available",
         "detail": ""},
        {"name": "helm-controller", "health": "ok", "text": "helm-controller: Available",
         "detail": "up"},
        {"name": "notification-controller", "health": "ok",
         "text": "notification-controller: Available", "detail": "up"},
        {"name": "OCIRepository/", "health": "progress",
         "text": "OCIRepository flux-system/: in progress",
         "detail": "not reconciled yet; revision —"},
    ]  # fmt: skip


def test_an_unreadable_host_fact_warns_with_why_in_its_detail() -> None:
    facts = host_facts(unreadable={"memory": "[Errno 13] Permission denied: '/proc/meminfo'"})
    layer = layers.host_layer(ok(facts), NOW)
    assert (layer["health"], layer["headline"]) == ("warn", "Working, with a warning")
    assert layer["items"][-1] == {
        "name": "unreadable-memory",
        "health": "warn",
        "text": "The memory cannot be read",
        "detail": "[Errno 13] Permission denied: '/proc/meminfo'",
    }
