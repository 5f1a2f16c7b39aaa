"""Pod status as an operator reads it, from kubelet-shaped pod JSON of every state, and the
grouping by the appliance's eight workloads."""

from __future__ import annotations

import time

import pytest

from host_service.operate.events import by_pod, warnings
from host_service.operate.pods import normalize
from host_service.operate.times import duration, parse_time
from host_service.operate.workloads import OTHER, group, workload_of
from host_service.release import SERVICES
from tests.fixtures.pods import STATES, event, pod

# state -> (status, reason, health, ready containers)
EXPECTED = {
    "running": ("Running", "", "ok", 1),
    "not-ready": ("Running", "NotReady", "ok", 0),
    "pending-unschedulable": ("Pending", "Unschedulable", "progress", 0),
    "container-creating": ("Pending", "ContainerCreating", "progress", 0),
    "crashloop": ("CrashLoopBackOff", "CrashLoopBackOff", "bad", 0),
    "crashloop-oom": ("CrashLoopBackOff", "CrashLoopBackOff", "bad", 0),
    "image-pull-backoff": ("ImagePullBackOff", "ImagePullBackOff", "bad", 0),
    "err-image-pull": ("ImagePullBackOff", "ErrImagePull", "bad", 0),
    "oomkilled": ("OOMKilled", "OOMKilled", "bad", 0),
    "error": ("Error", "Error", "bad", 0),
    "completed": ("Completed", "Completed", "done", 0),
    "terminating": ("Terminating", "", "progress", 1),
    "unknown": ("Unknown", "NodeLost", "unknown", 1),
    "evicted": ("Evicted", "Evicted", "bad", 0),
    "init-crashloop": ("CrashLoopBackOff", "CrashLoopBackOff", "bad", 0),
}


def test_every_state_has_an_expectation() -> None:
    assert set(EXPECTED) == set(STATES)


@pytest.mark.parametrize("state", STATES)
def test_status_reason_health_and_ready(state: str) -> None:
    view = normalize(pod("alga-core-5d8f9c7b6d-x2x9q", state, workload="alga-core"))
    status, reason, health, ready = EXPECTED[state]
    assert (view.status, view.reason, view.health) == (status, reason, health)
    assert view.ready == ready
    assert view.total == 1  # init containers are not counted in ready/total


def test_messages_are_kept_whole() -> None:
    unschedulable = normalize(pod("db-0", "pending-unschedulable", owner_kind="StatefulSet"))
    assert unschedulable.message.endswith("No preemption victims found for incoming pod.")
    assert unschedulable.node == ""
    pull = normalize(pod("redis-0", "image-pull-backoff"))
    assert pull.message.endswith("401 Unauthorized")
    evicted = normalize(pod("x", "evicted"))
    assert "has larger consumption of ephemeral-storage." in evicted.message


def test_restarts_with_the_last_restart_reason_and_time() -> None:
    view = normalize(pod("alga-core-1", "crashloop-oom", restarts=7))
    assert view.restarts == 7
    assert view.last_restart is not None
    assert (view.last_restart.reason, view.last_restart.exit_code) == ("OOMKilled", 137)
    assert view.last_restart.at is not None
    assert 30 < time.time() - view.last_restart.at < 120
    (container,) = view.containers
    assert container.last is not None  # the previous instance: its log is one click away
    healthy = normalize(pod("alga-core-2", "running"))
    assert (healthy.restarts, healthy.last_restart) == (0, None)


def test_a_crash_looping_init_container_counts_and_names_itself() -> None:
    view = normalize(pod("alga-core-3", "init-crashloop"))
    assert view.restarts == 3
    init, app = view.containers
    assert (init.name, init.init, init.reason) == ("migrate", True, "CrashLoopBackOff")
    assert (app.init, app.reason) == (False, "PodInitializing")


@pytest.mark.parametrize(
    ("kind", "owner_name", "expected"),
    [
        ("ReplicaSet", "alga-core-5d8f9c7b6d", ("Deployment", "alga-core")),
        ("StatefulSet", "db", ("StatefulSet", "db")),
        ("Job", "alga-core-migrate-42", ("Job", "alga-core-migrate-42")),
        ("DaemonSet", "svclb-traefik", ("DaemonSet", "svclb-traefik")),
    ],
)
def test_owner_is_the_workload(kind: str, owner_name: str, expected: tuple[str, str]) -> None:
    view = normalize(pod("p", owner_kind=kind, owner_name=owner_name, workload="alga-core"))
    assert (view.owner_kind, view.owner_name) == expected


def test_age_and_node() -> None:
    view = normalize(pod("p", age=7200))
    assert view.node == "alga-appliance"
    assert view.created is not None
    age = view.to_json(time.time())["age_seconds"]
    assert 7190 < age < 7300
    assert duration(age).startswith("2h")


def test_grouped_by_the_eight_workloads_then_other() -> None:
    pods = [normalize(pod(f"{name}-0", workload=name)) for name in SERVICES]
    pods.append(normalize(pod("debug-shell", workload=None, owner_kind="Job")))
    pods.append(normalize(pod("db-1", "crashloop", workload="db")))
    groups = group(pods)
    assert [g.name for g in groups] == [*SERVICES, OTHER]
    by_name = {g.name: g for g in groups}
    assert [p.name for p in by_name["db"].pods] == ["db-0", "db-1"]
    assert by_name["db"].health == "bad"  # the worst pod decides
    assert by_name["redis"].health == "ok"
    assert [p.name for p in by_name[OTHER].pods] == ["debug-shell"]


def test_a_workload_without_pods_is_shown_missing_and_other_only_when_needed() -> None:
    groups = group([normalize(pod("alga-core-0", workload="alga-core"))])
    assert len(groups) == len(SERVICES)  # no "other" group when nothing is other
    assert {g.name: g.health for g in groups}["db"] == "missing"


def test_grouping_falls_back_to_chart_labels_and_the_owner() -> None:
    chart_labelled = pod("temporal-frontend-7d9", workload=None)
    chart_labelled["metadata"]["labels"] = {"app.kubernetes.io/name": "temporal"}
    assert workload_of(normalize(chart_labelled)) == "temporal"
    owned = pod("pgbouncer-6c7-abc", workload=None, owner_name="pgbouncer-6c7")
    owned["metadata"]["labels"]["pod-template-hash"] = "6c7"
    assert workload_of(normalize(owned)) == "pgbouncer"
    assert workload_of(normalize(pod("coredns-1", workload=None))) == OTHER


def test_times() -> None:
    assert parse_time("2026-12-05T07:00:00Z") == 1796454000.0
    assert parse_time("not a time") is None
    assert parse_time(None) is None
    assert [duration(s) for s in (5, 119, 300, 3600 * 3 + 600, 86400 * 3 + 3600)] == [
        "5s",
        "119s",
        "5m",
        "3h10m",
        "3d1h",
    ]


def test_warning_events_newest_first_and_per_pod() -> None:
    crashing = pod("alga-core-1", "crashloop")
    pending = pod("db-0", "pending-unschedulable")
    events = [
        event(crashing, "BackOff", "Back-off restarting failed container app", count=12, ago=5),
        event(crashing, "Pulled", "Container image already present", type_="Normal", ago=1),
        event(pending, "FailedScheduling", "0/1 nodes are available: 1 Insufficient memory.",
              ago=60),
        *[event(crashing, f"Unhealthy{i}", "Probe failed", ago=100 + i) for i in range(4)],
    ]  # fmt: skip
    found = warnings(events)
    assert [e.reason for e in found[:2]] == ["BackOff", "FailedScheduling"]
    assert "Pulled" not in [e.reason for e in found]  # Normal events are not warnings
    assert found[0].count == 12
    assert found[0].message == "Back-off restarting failed container app"
    per_pod = by_pod(found)
    assert [e.reason for e in per_pod[("msp", "alga-core-1")]] == [
        "BackOff",
        "Unhealthy0",
        "Unhealthy1",
    ]  # the newest three
    assert [e.reason for e in per_pod[("msp", "db-0")]] == ["FailedScheduling"]
