"""The operator views at their edges: a clock stepped back, readings that failed after a good
one, Flux still being installed, null objects, timestamps at the calendar's ends, native
sidecars and readiness, terminal pods being deleted, a pod recreated under its name, a
standalone ReplicaSet, and /proc answers that are partial or malformed."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from host_service.kube import condition
from host_service.operate import layers
from host_service.operate.events import by_pod, warnings
from host_service.operate.host_probe import memory, read_host
from host_service.operate.pods import normalize, owner
from host_service.operate.runtime_blockers import RuntimeBlockers, problems, unchecked
from host_service.operate.snapshot import Reading
from host_service.operate.times import duration, parse_time, utc_text
from host_service.operate.workloads import OTHER, workload_of
from tests.fixtures.pods import event, pod

NOW = 1_796_454_000.0  # 2026-12-05T07:00:00Z
REFUSED = "dial tcp 127.0.0.1:6443: connect: connection refused"
NO_KIND = 'error: the server doesn\'t have a resource type "helmreleases"'
FAR = "9999-12-31T23:59:59-01:00"  # year 10000 in UTC


def ok(value: Any, age: float = 2) -> Reading:
    return Reading(value=value, read_at=NOW - age, tried_at=NOW - age, cycles=3)


def failed(error: str) -> Reading:
    return Reading(error=error, tried_at=NOW, cycles=1)


def stale(value: Any, age: float, error: str = REFUSED) -> Reading:
    return Reading(value=value, read_at=NOW - age, tried_at=NOW, cycles=9, error=error)


def ready_cond(status: str, at: str = "2026-12-05T06:50:00Z", **extra: Any) -> dict[str, Any]:
    return {"type": "Ready", "status": status, "lastTransitionTime": at, **extra}


def node(status: str, at: str = "2026-12-05T06:50:00Z") -> dict[str, Any]:
    return {"metadata": {"name": "n1"}, "status": {"conditions": [ready_cond(status, at)]}}


def controllers() -> list[dict[str, Any]]:
    available = {"conditions": [{"type": "Available", "status": "True"}]}
    return [{"metadata": {"name": name}, "status": available} for name in layers.FLUX_CONTROLLERS]


# -- 1. a clock stepped back ---------------------------------------------------------------


def full_disk() -> dict[str, Reading]:
    disk = {"path": "/var/lib/alga-appliance", "total": 100, "free": 5, "used_percent": 95.0}
    return {"host": ok({"disks": {"state": disk}})}


def test_an_at_once_blocker_stays_when_the_clock_steps_back() -> None:
    tracker = RuntimeBlockers()
    found = problems(full_disk(), threshold=600, after_bootstrap=True)
    (first,) = tracker.update(found, NOW)
    assert first.at == NOW
    (back,) = tracker.update(found, NOW - 3600)  # NTP stepped the clock back an hour
    assert back.at == NOW - 3600  # started by now at the latest
    (later,) = tracker.update(found, NOW - 3540)
    assert later.at == NOW - 3600  # the clamped start is kept
    assert later.message == "the state volume is 95 % full"


def test_a_node_not_ready_since_a_future_time_blocks_at_once() -> None:
    tracker = RuntimeBlockers()
    found = problems(
        {"nodes": ok([node("False", at="2026-12-05T08:00:00Z")])},
        threshold=600,
        after_bootstrap=True,
    )
    (blocker,) = tracker.update(found, NOW)
    assert (blocker.key, blocker.at) == ("node/n1", NOW)


def test_a_release_not_ready_since_a_future_time_counts_from_now() -> None:
    release = {
        "metadata": {"name": "redis", "namespace": "alga-system"},
        "status": {"conditions": [ready_cond("False", at=FAR, message="install failed")]},
    }
    tracker = RuntimeBlockers()
    found = problems({"helm": ok([release])}, threshold=600, after_bootstrap=True)
    assert tracker.update(found, NOW) == []
    (blocker,) = tracker.update(found, NOW + 600)  # not hidden until year 10000
    assert (blocker.at, blocker.message) == (
        NOW,
        "HelmRelease redis has not been Ready for 10 minutes",
    )


# -- 2. secondary readings that failed after a good read ------------------------------------


def test_nodes_from_an_older_read_say_their_age_and_why() -> None:
    service = ok({"unit": "active", "sub": "running", "api": "ok"})
    layer = layers.k3s_layer(service, stale([node("True")], 600), NOW)
    assert layer["items"][2] == {
        "name": "nodes",
        "health": "warn",
        "text": "Nodes as read 10m ago; the last read failed",
        "detail": f"k3s is not running: its API refuses connections ({REFUSED})",
    }
    assert layer["items"][3]["text"] == "Node n1: Ready"  # the last good read, still shown
    assert (layer["health"], layer["headline"]) == ("warn", "Running, with a warning")
    assert layer["age_seconds"] == 2.0  # the service's reading: the nodes item has its own


def test_sources_and_kustomizations_from_an_older_read_say_their_age_and_why() -> None:
    timeout = "context deadline exceeded"
    layer = layers.flux_layer(
        ok(controllers()), stale([], 150), stale([], 7200, timeout), NOW, expected={}
    )
    assert layer["items"][-2:] == [
        {"name": "OCIRepository", "health": "warn",
         "text": "OCIRepositories as read 2m ago; the last read failed",
         "detail": f"k3s is not running: its API refuses connections ({REFUSED})"},
        {"name": "Kustomization", "health": "warn",
         "text": "Kustomizations as read 2h ago; the last read failed",
         "detail": f"the Kubernetes API did not answer in time ({timeout})"},
    ]  # fmt: skip
    assert layer["health"] == "warn"


# -- 5. Flux still being installed ---------------------------------------------------------


def test_helm_releases_before_their_crd_are_not_installed_yet() -> None:
    layer = layers.helm_layer(failed(NO_KIND), NOW)
    assert (layer["health"], layer["headline"]) == ("waiting", "Not installed yet")
    assert layer["error"] == f"not installed yet: the cluster does not know this kind ({NO_KIND})"
    # Read before, the kind gone since: the last read shows, as any stale reading.
    assert layers.helm_layer(stale([], 60, NO_KIND), NOW)["health"] == "warn"


def test_flux_before_its_crds_is_not_installed_yet() -> None:
    no_kind = failed('error: the server doesn\'t have a resource type "ocirepositories"')
    layer = layers.flux_layer(ok(controllers()), no_kind, no_kind, NOW, expected={})
    assert (layer["health"], layer["headline"]) == ("waiting", "Not installed yet")
    assert [i["health"] for i in layer["items"][-2:]] == ["waiting", "waiting"]
    refused = layers.flux_layer(ok(controllers()), failed(REFUSED), ok([]), NOW, expected={})
    assert refused["health"] == "unknown"  # any other failure still says it cannot be read


# -- 6. null objects -----------------------------------------------------------------------


def test_null_status_annotations_and_metadata_are_read_as_empty() -> None:
    assert condition({"metadata": {"name": "x"}, "status": None}, "Ready") is None
    assert condition({"status": {"conditions": None}}, "Ready") is None
    view = layers.helm_release_view(
        {"metadata": {"name": "db", "namespace": "alga-system", "annotations": None},
         "status": None}
    )  # fmt: skip
    assert (view["name"], view["chart_version"], view["health"]) == ("db", "", "progress")
    nameless = [{"metadata": None, "status": None}, *controllers()]
    layer = layers.flux_layer(ok(nameless), ok([]), ok([]), NOW, expected={})
    assert layer["health"] == "ok"
    (blocker,) = problems({"nodes": ok([{"metadata": {"name": "n"}, "status": None}])},
                          threshold=0, after_bootstrap=True)  # fmt: skip
    assert blocker.key == "node/n"


# -- 7, 8. timestamps ----------------------------------------------------------------------


def test_times_past_the_calendar_read_as_unknown() -> None:
    assert utc_text(parse_time(FAR)) == "—"
    assert utc_text(parse_time("0001-01-01T00:00:00+01:00")) == "—"  # before year 1 in UTC
    assert utc_text(float("nan")) == "—"
    assert [duration(x) for x in (float("inf"), float("-inf"), float("nan"))] == ["—"] * 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-05t07:00:00z", NOW),  # RFC 3339 5.6: "t" and "z" may be lower case
        ("2026-12-05T07:00:00z", NOW),
        ("2026-12-05t08:00:00+01:00", NOW),
        ("2016-12-31T23:59:60Z", 1_483_228_800.0),  # a leap second: POSIX time repeats
        ("2016-12-31T23:59:60.5Z", 1_483_228_800.5),
        ("2017-01-01T00:59:60+01:00", 1_483_228_800.0),
        ("2026-12-05T07:00:61Z", None),
        ("2026-12-05T07:00:600Z", None),
    ],
)
def test_valid_rfc3339_forms_are_read(text: str, expected: float | None) -> None:
    assert parse_time(text) == expected


# -- 3, 9. pod status ----------------------------------------------------------------------


def with_sidecar(ready: bool) -> dict[str, Any]:
    found = pod("web-5d8f9c7b6d-x2x9q")
    found["spec"]["initContainers"] = [
        {"name": "migrate", "image": "m"},  # runs to completion: not counted
        {"name": "proxy", "image": "envoy", "restartPolicy": "Always"},
    ]
    found["status"]["initContainerStatuses"] = [
        {"name": "migrate", "ready": False, "started": False, "restartCount": 0,
         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "proxy", "ready": ready, "started": True, "restartCount": 0,
         "state": {"running": {"startedAt": "2026-12-05T06:00:00Z"}}},
    ]  # fmt: skip
    return found


def test_a_native_sidecar_counts_in_ready_and_total_as_kubectl_counts() -> None:
    view = normalize(with_sidecar(ready=False))
    assert (view.status, view.reason, view.message) == ("Running", "NotReady", "not ready: proxy")
    assert (view.ready, view.total) == (1, 2)
    view = normalize(with_sidecar(ready=True))
    assert (view.status, view.reason, view.ready, view.total) == ("Running", "", 2, 2)


def test_a_running_pod_whose_ready_condition_is_false_is_not_ready() -> None:
    gated = pod("web-5d8f9c7b6d-x2x9q")
    (ready,) = [c for c in gated["status"]["conditions"] if c["type"] == "Ready"]
    ready.update(
        status="False",
        reason="ReadinessGatesNotReady",
        message='corresponding condition of pod readiness gate "lb" does not exist.',
    )
    view = normalize(gated)
    assert (view.status, view.reason, view.ready, view.total) == ("Running", "NotReady", 1, 1)
    assert view.message == 'corresponding condition of pod readiness gate "lb" does not exist.'
    del ready["message"]
    assert normalize(gated).message == "ReadinessGatesNotReady"


@pytest.mark.parametrize(
    ("state", "status", "health"),
    [("completed", "Completed", "done"), ("evicted", "Evicted", "bad")],
)
def test_a_terminal_pod_being_deleted_keeps_its_end(state: str, status: str, health: str) -> None:
    ended = pod("migrate-42-abcde", state, owner_kind="Job")
    ended["metadata"]["deletionTimestamp"] = "2026-12-05T07:00:00Z"
    view = normalize(ended)
    assert (view.status, view.health) == (status, health)
    failed_pod = copy.deepcopy(ended)
    failed_pod["status"] = {"phase": "Failed", "reason": ""}
    assert normalize(failed_pod).status == "Error"
    running = pod("web-1", "running")
    running["metadata"]["deletionTimestamp"] = "2026-12-05T07:00:00Z"
    assert normalize(running).status == "Terminating"  # a pod still running is going


# -- 4. a pod recreated under its name -----------------------------------------------------


def test_warnings_of_an_earlier_pod_of_the_same_name_are_not_shown() -> None:
    old = pod("db-0", "oomkilled", workload="db", owner_kind="StatefulSet")
    old["metadata"]["uid"] = "11111111-old"
    new = pod("db-0", "running", workload="db", owner_kind="StatefulSet")
    events = [event(old, "OOMKilling", "Memory cgroup out of memory", ago=120),
              event(new, "Unhealthy", "Readiness probe failed", ago=10)]  # fmt: skip
    anonymous = event(new, "FailedMount", "no uid in this event", ago=5)
    del anonymous["involvedObject"]["uid"]
    found = warnings([*events, anonymous])
    assert found[-1].uid == "11111111-old"
    mine = by_pod(found, {("msp", "db-0"): normalize(new).uid})
    assert [e.reason for e in mine[("msp", "db-0")]] == ["FailedMount", "Unhealthy"]
    assert normalize(new).to_json(NOW)["uid"] == new["metadata"]["uid"]
    assert found[0].to_json()["uid"] == ""


# -- 10. a standalone ReplicaSet -----------------------------------------------------------


def test_a_replicaset_without_the_template_hash_is_its_own_owner() -> None:
    standalone = pod("redis-sentinel-x2x9q", workload=None, owner_name="redis-sentinel")
    del standalone["metadata"]["labels"]["pod-template-hash"]
    assert owner(standalone) == ("ReplicaSet", "redis-sentinel")
    assert workload_of(normalize(standalone)) == OTHER  # not the redis workload
    deployed = pod("redis-5d8f9c7b6d-x2x9q", workload=None, owner_name="redis-5d8f9c7b6d")
    assert owner(deployed) == ("Deployment", "redis")


# -- 11. /proc partial or malformed --------------------------------------------------------


def proc_with(tmp_path: Path, meminfo: str, loadavg: str = "0.50 0.25 0.10 1/200 4242\n") -> Path:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "uptime").write_text("5000.25 9000.00\n")
    (proc / "loadavg").write_text(loadavg)
    (proc / "meminfo").write_text(meminfo)
    return proc


def test_memory_without_memavailable_is_free_buffers_and_cache(tmp_path: Path) -> None:
    old_kernel = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n"
    assert memory(proc_with(tmp_path, old_kernel)) == {"total": 1024000, "available": 409600}
    (tmp_path / "proc/meminfo").write_text("MemTotal: 1000 kB\nMemFree: 100 kB\n")
    assert memory(tmp_path / "proc") == {"total": 1024000, "available": None}
    facts = {"cpus": 2, "memory": {"total": 1024000, "available": None}}
    layer = layers.host_layer(ok(facts), NOW)
    assert ["Memory", "—"] in layer["facts"]  # unknown, not 100 % used


def test_a_malformed_fact_leaves_the_others_and_the_disk_check(tmp_path: Path) -> None:
    proc = proc_with(tmp_path, "MemTotal:\nMemAvailable: 500 kB\n", loadavg="")
    facts = read_host(
        proc,
        volumes={"state": tmp_path},
        timesync_flag=tmp_path / "synchronized",
        kernel_clock=lambda: True,
        addresses=lambda: ["192.0.2.2"],
    )
    assert facts["memory"] == {"total": None, "available": 512000}
    assert facts["uptime_seconds"] == 5000.25
    assert facts["disks"]["state"]["path"] == str(tmp_path)  # the disk-full check has it
    assert facts["load"] == []
    (tmp_path / "proc/uptime").unlink()
    facts = read_host(
        proc,
        volumes={"state": tmp_path},
        timesync_flag=tmp_path / "synchronized",
        kernel_clock=lambda: None,
        addresses=lambda: ["192.0.2.2"],
    )
    assert facts["uptime_seconds"] is None
    assert "uptime" in facts["unreadable"]["uptime"]
    assert facts["addresses"] == ["192.0.2.2"]
    layer = layers.host_layer(ok(facts), NOW)
    unreadable = next(i for i in layer["items"] if i["name"] == "unreadable-uptime")
    assert (unreadable["health"], unreadable["text"]) == ("warn", "The uptime cannot be read")
    assert ["Up for", "—"] in layer["facts"]
    load = next(value for label, value in layer["facts"] if label.startswith("Load"))
    assert load == f"— on {facts['cpus']} CPUs"


def test_the_blocker_of_failing_checks_in_full() -> None:
    error = "AttributeError: 'NoneType' object has no attribute 'get'"
    assert unchecked(error, NOW - 90).to_json() == {
        "key": "checks/runtime",
        "layer": "host",
        "message": "the runtime checks stopped: the blockers shown may be out of date",
        "cause": f"the host service failed to evaluate its readings: {error}",
        "next_step": "download a support bundle (the service's journal in it has the traceback) "
        "and report it; the layers below still show what was read, each with its age",
        "output": error,
        "at": NOW - 90,
        "fix": "/status#support",
    }
