"""Pod normalization held to exact answers: every field of the JSON the pages read, each
status rule on its own, the owner rules, and the grouping's edges (mutation testing found
these unprotected; docs/testing.md, "Operator views")."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from host_service.operate.pods import HEALTH, normalize, owner
from host_service.operate.workloads import OTHER, TITLES, Group, group, workload_of

NOW = 1_796_454_000.0  # 2026-12-05T07:00:00Z
IMAGE = "ghcr.io/nine-minds/alga-psa:1.4.2"


def terminated(reason: str | None, code: Any, at: str, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "containerID": "containerd://" + "ab" * 32,
        "exitCode": code,
        "startedAt": "2026-12-05T06:40:00Z",
        "finishedAt": at,
    }
    if reason is not None:
        found["reason"] = reason
    found.update(extra)
    return found


def status_of(name: str, state: dict[str, Any], **fields: Any) -> dict[str, Any]:
    found = {
        "name": name,
        "image": IMAGE,
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": state,
        "lastState": {},
    }
    found.update(fields)
    return found


def pod_json(
    *,
    phase: str = "Running",
    containers: tuple[str, ...] = ("app",),
    init: tuple[str, ...] = (),
    statuses: list[dict[str, Any]] | None = None,
    init_statuses: list[dict[str, Any]] | None = None,
    **status_extra: Any,
) -> dict[str, Any]:
    """A kubelet-shaped pod with a fixed creation time (2026-12-05T06:00:00Z)."""
    status: dict[str, Any] = {"phase": phase, "hostIP": "10.0.2.15", **status_extra}
    if statuses is not None:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    spec: dict[str, Any] = {
        "containers": [{"name": c, "image": IMAGE} for c in containers],
        "nodeName": "alga-appliance",
    }
    if init:
        spec["initContainers"] = [{"name": c, "image": IMAGE} for c in init]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "alga-core-5d8f9c7b6d-x2x9q",
            "namespace": "msp",
            "creationTimestamp": "2026-12-05T06:00:00Z",
            "labels": {
                "app.kubernetes.io/instance": "alga-core",
                "pod-template-hash": "5d8f9c7b6d",
            },
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "alga-core-5d8f9c7b6d",
                 "controller": True},
            ],
        },
        "spec": spec,
        "status": status,
    }  # fmt: skip


def running(name: str = "app", *, ready: bool = True, **fields: Any) -> dict[str, Any]:
    return status_of(
        name, {"running": {"startedAt": "2026-12-05T06:01:00Z"}}, ready=ready, **fields
    )


def test_the_whole_json_of_a_crash_looping_pod() -> None:
    pod = pod_json(
        statuses=[
            status_of(
                "app",
                {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s"}},
                restartCount=6,
                lastState={
                    "terminated": terminated(
                        "OOMKilled", 137, "2026-12-05T06:59:00Z", message="out of memory"
                    )
                },
            )
        ]
    )
    assert normalize(pod).to_json(NOW) == {
        "namespace": "msp",
        "name": "alga-core-5d8f9c7b6d-x2x9q",
        "uid": "",
        "status": "CrashLoopBackOff",
        "health": "bad",
        "reason": "CrashLoopBackOff",
        "message": "back-off 2m40s",
        "ready": 0,
        "total": 1,
        "restarts": 6,
        "last_restart": {
            "reason": "OOMKilled",
            "exit_code": 137,
            "at": NOW - 60,
            "message": "out of memory",
        },
        "created": NOW - 3600,
        "age_seconds": 3600.0,
        "node": "alga-appliance",
        "owner": {"kind": "Deployment", "name": "alga-core"},
        "containers": [
            {
                "name": "app",
                "image": IMAGE,
                "init": False,
                "ready": False,
                "restarts": 6,
                "state": "waiting",
                "reason": "CrashLoopBackOff",
                "message": "back-off 2m40s",
                "last": {
                    "reason": "OOMKilled",
                    "exit_code": 137,
                    "at": NOW - 60,
                    "message": "out of memory",
                },
            }
        ],
    }


def test_age_never_goes_negative_and_is_none_without_a_creation_time() -> None:
    pod = pod_json(statuses=[running()])
    view = normalize(pod)
    assert view.to_json(NOW - 7200)["age_seconds"] == 0.0  # the host clock is behind the API's
    del pod["metadata"]["creationTimestamp"]
    assert normalize(pod).to_json(NOW)["age_seconds"] is None


def test_a_pod_without_an_owner_has_none() -> None:
    pod = pod_json(statuses=[running()])
    del pod["metadata"]["ownerReferences"]
    view = normalize(pod)
    assert (view.owner_kind, view.owner_name) == ("", "")
    assert view.to_json(NOW)["owner"] is None


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (terminated(None, 0, "2026-12-05T06:59:00Z", signal=9), ("Signal:9", 0, "")),
        (terminated(None, 3, "2026-12-05T06:59:00Z"), ("ExitCode:3", 3, "")),
        (terminated("", "137", "2026-12-05T06:59:00Z"), ("ExitCode:137", None, "")),
        (terminated("Error", 1, "2026-12-05T06:59:00Z", message="boom"), ("Error", 1, "boom")),
    ],
)
def test_a_restart_without_a_reason_is_named_by_its_signal_or_exit_code(
    last: dict[str, Any], expected: tuple[str, int | None, str]
) -> None:
    view = normalize(pod_json(statuses=[running(lastState={"terminated": last}, restartCount=1)]))
    assert view.last_restart is not None
    found = view.last_restart
    assert (found.reason, found.exit_code, found.message) == expected
    assert found.at == NOW - 60


def test_the_latest_restart_of_several_containers_is_the_last_restart() -> None:
    pod = pod_json(
        containers=("app", "sidecar"),
        init=("migrate",),
        init_statuses=[
            status_of(
                "migrate",
                {"terminated": terminated("Completed", 0, "2026-12-05T06:02:00Z")},
                restartCount=1,
                lastState={"terminated": terminated("Error", 1, "2026-12-05T06:01:00Z")},
            )
        ],
        statuses=[
            running("app", restartCount=2, lastState={
                "terminated": terminated("Error", 2, "2026-12-05T06:50:00Z")}),
            running("sidecar", restartCount=4, lastState={
                "terminated": terminated("OOMKilled", 137, "2026-12-05T06:30:00Z")}),
        ],
    )  # fmt: skip
    view = normalize(pod)
    assert view.restarts == 7  # init containers' restarts count too
    assert view.last_restart is not None
    assert (view.last_restart.reason, view.last_restart.at) == ("Error", NOW - 600)
    assert (view.ready, view.total) == (2, 2)
    assert [(c.name, c.init, c.state, c.reason) for c in view.containers] == [
        ("migrate", True, "terminated", "Completed"),
        ("app", False, "running", ""),
        ("sidecar", False, "running", ""),
    ]
    assert (view.status, view.reason, view.message) == ("Running", "", "")


def test_a_restart_without_a_finish_time_still_counts() -> None:
    undated = terminated("Error", 1, "")
    pod = pod_json(statuses=[running(restartCount=1, lastState={"terminated": undated})])
    view = normalize(pod)
    assert view.last_restart is not None
    assert (view.last_restart.reason, view.last_restart.at) == ("Error", None)


def test_container_fields_fall_back_to_the_spec_and_safe_values() -> None:
    pod = pod_json(
        statuses=[
            {"name": "app", "ready": True, "restartCount": "many", "state": {}},
        ]
    )
    (container,) = normalize(pod).containers
    assert container.to_json() == {
        "name": "app",
        "image": IMAGE,  # from the spec: the kubelet has not reported one
        "init": False,
        "ready": True,
        "restarts": 0,
        "state": "waiting",
        "reason": "",
        "message": "",
        "last": None,
    }


def test_containers_the_kubelet_has_not_reported_are_being_created() -> None:
    pod = pod_json(
        phase="Pending",
        containers=("app",),
        init=("migrate",),
        init_statuses=["not a status"],  # type: ignore[list-item]
    )
    pod["spec"]["containers"].append("not a container")
    view = normalize(pod)
    assert [(c.name, c.init, c.state, c.reason, c.image) for c in view.containers] == [
        ("migrate", True, "waiting", "PodInitializing", IMAGE),
        ("app", False, "waiting", "ContainerCreating", IMAGE),
    ]
    assert (view.status, view.reason) == ("Pending", "PodInitializing")


def test_a_running_pod_names_every_container_that_is_not_ready() -> None:
    pod = pod_json(
        containers=("app", "sidecar", "metrics"),
        statuses=[running("app", ready=False), running("sidecar"), running("metrics", ready=False)],
    )
    view = normalize(pod)
    assert (view.status, view.reason, view.message) == (
        "Running",
        "NotReady",
        "not ready: app, metrics",
    )
    assert (view.ready, view.total) == (1, 3)


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("ErrImagePull", "ImagePullBackOff"),
        ("InvalidImageName", "ImagePullBackOff"),
        ("CreateContainerError", "CreateContainerConfigError"),
        ("CreateContainerConfigError", "CreateContainerConfigError"),
        ("RunContainerError", "Error"),
        ("ImagePullBackOff", "ImagePullBackOff"),
    ],
)
def test_failing_waits_read_as_the_operator_knows_them(reason: str, status: str) -> None:
    pod = pod_json(
        phase="Pending",
        statuses=[status_of("app", {"waiting": {"reason": reason, "message": "why exactly"}})],
    )
    view = normalize(pod)
    assert (view.status, view.reason, view.message) == (status, reason, "why exactly")
    assert view.health == "bad"


def test_an_init_container_failing_decides_before_the_app_container() -> None:
    pod = pod_json(
        phase="Pending",
        init=("migrate",),
        init_statuses=[
            status_of("migrate", {"waiting": {"reason": "ErrImagePull", "message": "init pull"}})
        ],
        statuses=[status_of("app", {"waiting": {"reason": "CrashLoopBackOff", "message": "m"}})],
    )
    view = normalize(pod)
    assert (view.status, view.reason, view.message) == (
        "ImagePullBackOff",
        "ErrImagePull",
        "init pull",
    )


def test_terminated_containers_of_a_running_pod() -> None:
    oom = terminated("OOMKilled", 137, "2026-12-05T06:59:00Z", message="killed")
    view = normalize(pod_json(statuses=[status_of("app", {"terminated": oom})]))
    assert (view.status, view.reason, view.message) == ("OOMKilled", "OOMKilled", "killed")
    error = terminated("Error", 2, "2026-12-05T06:59:00Z", message="exit 2")
    view = normalize(pod_json(statuses=[status_of("app", {"terminated": error})]))
    assert (view.status, view.reason, view.message) == ("Error", "Error", "exit 2")
    # A finished init container and a finished sidecar are not failures.
    done = terminated("Completed", 0, "2026-12-05T06:01:00Z")
    view = normalize(
        pod_json(
            containers=("app", "oneshot"),
            init=("migrate",),
            init_statuses=[status_of("migrate", {"terminated": done})],
            statuses=[running("app"), status_of("oneshot", {"terminated": done}, ready=True)],
        )
    )
    assert (view.status, view.reason, view.message) == ("Running", "", "")
    # A failed init container is one.
    failed = terminated("Error", 1, "2026-12-05T06:01:00Z", message="init failed")
    view = normalize(
        pod_json(
            phase="Pending",
            init=("migrate",),
            init_statuses=[status_of("migrate", {"terminated": failed})],
            statuses=[],
        )
    )
    assert (view.status, view.reason, view.message) == ("Error", "Error", "init failed")


def test_deletion_wins_unless_the_node_is_lost() -> None:
    pod = pod_json(statuses=[running()], reason="Shutdown", message="node shutting down")
    pod["metadata"]["deletionTimestamp"] = "2026-12-05T07:00:30Z"
    view = normalize(pod)
    assert (view.status, view.reason, view.message) == ("Terminating", "", "node shutting down")
    assert view.health == "progress"
    pod["status"]["reason"] = "NodeLost"
    view = normalize(pod)
    assert (view.status, view.reason, view.message) == ("Unknown", "NodeLost", "node shutting down")
    running_lost = pod_json(statuses=[running()], reason="NodeLost", message="unresponsive")
    view = normalize(running_lost)
    assert (view.status, view.reason, view.message) == ("Unknown", "NodeLost", "unresponsive")
    assert view.health == "unknown"
    no_phase = pod_json(statuses=[running()])
    del no_phase["status"]["phase"]
    assert normalize(no_phase).status == "Unknown"


def test_finished_pods() -> None:
    done = terminated("Completed", 0, "2026-12-05T06:30:00Z")
    view = normalize(pod_json(phase="Succeeded", statuses=[status_of("app", {"terminated": done})]))
    assert (view.status, view.reason, view.message, view.health) == (
        "Completed",
        "Completed",
        "",
        "done",
    )
    view = normalize(pod_json(phase="Succeeded", statuses=[], reason="Done", message="all done"))
    assert (view.status, view.reason, view.message) == ("Completed", "Done", "all done")


def test_failed_pods() -> None:
    oom = terminated("OOMKilled", 137, "2026-12-05T06:59:00Z")
    view = normalize(
        pod_json(phase="Failed", statuses=[status_of("app", {"terminated": oom})], message="pm")
    )
    assert (view.status, view.reason, view.message) == ("OOMKilled", "OOMKilled", "pm")
    oom_said = terminated("OOMKilled", 137, "2026-12-05T06:59:00Z", message="cgroup limit")
    view = normalize(
        pod_json(
            phase="Failed", statuses=[status_of("app", {"terminated": oom_said})], message="pm"
        )
    )
    assert view.message == "cgroup limit"
    error = terminated("Error", 1, "2026-12-05T06:59:00Z")
    view = normalize(
        pod_json(phase="Failed", statuses=[status_of("app", {"terminated": error})], message="pm")
    )
    assert (view.status, view.reason, view.message) == ("Error", "Error", "pm")
    view = normalize(
        pod_json(
            phase="Failed",
            statuses=[status_of("app", {"terminated": error})],
            reason="DeadlineExceeded",
            message="Pod was active on the node longer than the specified deadline",
        )
    )
    assert (view.status, view.reason) == ("Error", "DeadlineExceeded")
    view = normalize(pod_json(phase="Failed", statuses=[]))
    assert (view.status, view.reason, view.message) == ("Error", "Failed", "")
    # An init container's end does not decide a failed pod's status.
    init_oom = pod_json(
        phase="Failed",
        init=("migrate",),
        init_statuses=[status_of("migrate", {"terminated": oom})],
        statuses=[status_of("app", {"terminated": error})],
    )
    assert (normalize(init_oom).status, normalize(init_oom).reason) == ("Error", "Error")
    evicted = pod_json(phase="Failed", statuses=[], reason="Evicted", message="low on disk")
    view = normalize(evicted)
    assert (view.status, view.reason, view.message) == ("Evicted", "Evicted", "low on disk")


def test_pending_pods_say_why() -> None:
    unscheduled = pod_json(
        phase="Pending",
        statuses=[],
        conditions=[
            {"type": "Initialized", "status": "True"},
            {"type": "PodScheduled", "status": "False", "message": "0/1 nodes are available"},
        ],
    )
    view = normalize(unscheduled)
    assert (view.status, view.reason, view.message) == (
        "Pending",
        "Unschedulable",
        "0/1 nodes are available",
    )
    unscheduled["status"]["conditions"][1] = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "SchedulerError",
        "message": "binding rejected",
    }
    view = normalize(unscheduled)
    assert (view.status, view.reason, view.message) == (
        "Pending",
        "SchedulerError",
        "binding rejected",
    )
    unscheduled["status"]["conditions"][1] = {"type": "PodScheduled", "status": "False"}
    view = normalize(unscheduled)
    assert (view.status, view.reason, view.message) == ("Pending", "Unschedulable", "")
    scheduled = pod_json(
        phase="Pending",
        statuses=[status_of("app", {"waiting": {"reason": "ContainerCreating", "message": "m"}})],
        conditions=["junk", {"type": "PodScheduled", "status": "True"}],
    )
    view = normalize(scheduled)
    assert (view.status, view.reason, view.message) == ("Pending", "ContainerCreating", "m")
    quiet = pod_json(
        phase="Pending",
        statuses=[status_of("app", {"waiting": {}})],
        reason="SandboxChanged",
        message="Pod sandbox changed",
    )
    view = normalize(quiet)
    assert (view.status, view.reason, view.message) == (
        "Pending",
        "SandboxChanged",
        "Pod sandbox changed",
    )


@pytest.mark.parametrize(
    ("status", "health"),
    [
        ("Running", "ok"),
        ("Completed", "done"),
        ("Pending", "progress"),
        ("Terminating", "progress"),
        ("CrashLoopBackOff", "bad"),
        ("ImagePullBackOff", "bad"),
        ("ErrImagePull", "bad"),
        ("CreateContainerConfigError", "bad"),
        ("OOMKilled", "bad"),
        ("Error", "bad"),
        ("Evicted", "bad"),
        ("Unknown", "unknown"),
    ],
)
def test_health_of_each_status(status: str, health: str) -> None:
    assert HEALTH[status] == health


def meta_pod(refs: list[dict[str, Any]], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"ownerReferences": refs, "labels": labels or {}}}


def test_owner_rules() -> None:
    job = {"kind": "Job", "name": "migrate-42"}
    rs = {"kind": "ReplicaSet", "name": "web-7d9f", "controller": True}
    hash_label = {"pod-template-hash": "7d9f"}
    # The controller, not the first.
    assert owner(meta_pod([job, rs], hash_label)) == ("Deployment", "web")
    assert owner(meta_pod([job, {**rs, "controller": False}])) == ("Job", "migrate-42")
    assert owner(meta_pod(["junk", job])) == ("Job", "migrate-42")  # type: ignore[list-item]
    assert owner({"metadata": {}}) == ("", "")
    assert owner({}) == ("", "")
    # The template hash names the Deployment exactly, even with dashes in its name.
    hashed = meta_pod(
        [{"kind": "ReplicaSet", "name": "alga-core-5d8f"}], {"pod-template-hash": "5d8f"}
    )
    assert owner(hashed) == ("Deployment", "alga-core")
    other_hash = meta_pod(
        [{"kind": "ReplicaSet", "name": "alga-core-5d8f"}], {"pod-template-hash": "99"}
    )
    assert owner(other_hash) == ("Deployment", "alga-core")  # by the last dash
    bare = meta_pod([{"kind": "ReplicaSet", "name": "standalone"}])
    assert owner(bare) == ("ReplicaSet", "standalone")
    assert owner(meta_pod([{"kind": "StatefulSet"}])) == ("StatefulSet", "")
    assert owner(meta_pod([{"name": "x"}])) == ("", "x")


def test_labels_and_names_are_text() -> None:
    pod = pod_json(statuses=[running()])
    pod["metadata"]["labels"] = {"tier": 1, "app.kubernetes.io/instance": "db"}
    view = normalize(pod)
    assert view.labels == {"tier": "1", "app.kubernetes.io/instance": "db"}
    assert workload_of(view) == "db"
    bare = {"metadata": {}, "spec": {}, "status": {}}
    view = normalize(bare)
    assert (view.namespace, view.name, view.node, view.labels) == ("", "", "", {})
    assert (view.status, view.created, view.containers) == ("Unknown", None, ())


# -- workloads -----------------------------------------------------------------------------


def labelled(name: str, labels: dict[str, str], state: str = "running", ns: str = "msp") -> Any:
    pod = pod_json(statuses=[running()])
    pod["metadata"].update(name=name, namespace=ns, labels=labels)
    del pod["metadata"]["ownerReferences"]
    if state == "crash":
        pod["status"]["containerStatuses"] = [
            status_of("app", {"waiting": {"reason": "CrashLoopBackOff"}})
        ]
    elif state == "done":
        pod["status"] = {"phase": "Succeeded"}
    elif state == "pending":
        pod["status"] = {"phase": "Pending"}
    elif state == "unknown":
        pod["status"] = {"phase": "Unknown"}
    elif state == "not-ready":
        pod["status"]["containerStatuses"] = [running(ready=False)]
    return normalize(pod)


@pytest.mark.parametrize(
    "label",
    [
        "app.kubernetes.io/instance",
        "helm.toolkit.fluxcd.io/name",
        "app.kubernetes.io/name",
        "app.kubernetes.io/part-of",
        "release",
        "app",
    ],
)
def test_each_chart_label_names_the_workload(label: str) -> None:
    assert workload_of(labelled("p", {label: "redis"})) == "redis"


def test_the_most_specific_label_wins_and_foreign_values_are_passed_over() -> None:
    both = {"app.kubernetes.io/instance": "db", "app.kubernetes.io/name": "redis"}
    assert workload_of(labelled("p", both)) == "db"
    foreign = {"app.kubernetes.io/instance": "postgresql-ha", "app": "pgbouncer"}
    assert workload_of(labelled("p", foreign)) == "pgbouncer"
    assert workload_of(labelled("p", {"app": "pgbouncer"}), names=("db",)) == OTHER


def test_group_health_and_counts() -> None:
    pods = (
        labelled("b", {"app": "db"}),
        labelled("a", {"app": "db"}, "not-ready"),
        labelled("c", {"app": "db"}, "done"),
        labelled("d", {"app": "db"}, "pending"),
    )
    db = Group("db", pods)
    assert db.health == "progress"
    summary = db.to_json(NOW)
    assert {k: v for k, v in summary.items() if k != "items"} == {
        "name": "db",
        "title": "Database (PostgreSQL)",
        "health": "progress",
        "pods_ready": 1,  # running and all containers ready; the finished job is not serving
        "pods": 3,
    }
    assert [item["name"] for item in summary["items"]] == ["b", "a", "c", "d"]
    assert Group("db", (labelled("a", {}, "pending"), labelled("b", {}, "unknown"))).health == (
        "unknown"
    )
    assert Group("db", (labelled("a", {}, "done"), labelled("b", {}))).health == "ok"
    assert Group("db", (labelled("a", {}, "done"),)).health == "done"
    assert Group("db", (labelled("a", {}, "unknown"), labelled("b", {}, "crash"))).health == "bad"
    assert Group("db", ()).health == "missing"
    assert Group(OTHER, ()).health == "ok"
    assert Group("custom", ()).to_json(NOW)["title"] == "custom"
    assert TITLES[OTHER] == "Other pods"


def test_groups_keep_the_given_names_and_sort_by_namespace_then_name() -> None:
    pods = [
        labelled("b", {"app": "one"}, ns="a-ns"),
        labelled("a", {"app": "one"}, ns="z-ns"),
        labelled("c", {"app": "one"}, ns="a-ns"),
        labelled("stray", {}),
    ]
    groups = group(pods, names=("one", "two"))
    assert [(g.name, [(p.namespace, p.name) for p in g.pods]) for g in groups] == [
        ("one", [("a-ns", "b"), ("a-ns", "c"), ("z-ns", "a")]),
        ("two", []),
        (OTHER, [("msp", "stray")]),
    ]
    copied = copy.deepcopy(pods[:1])
    assert [g.name for g in group(copied, names=("one",))] == ["one"]


def test_a_container_that_ended_without_a_reason_is_named_by_its_exit_code() -> None:
    ended = terminated(None, 137, "2026-12-05T06:59:00Z")
    view = normalize(pod_json(statuses=[status_of("app", {"terminated": ended})]))
    (container,) = view.containers
    assert (container.state, container.reason) == ("terminated", "ExitCode:137")
    assert (view.status, view.reason) == ("Error", "ExitCode:137")
    killed = terminated(None, 0, "2026-12-05T06:59:00Z", signal=15)
    (container,) = normalize(
        pod_json(statuses=[status_of("app", {"terminated": killed})])
    ).containers
    assert container.reason == "Signal:15"


def test_the_image_the_kubelet_reports_wins_over_the_spec() -> None:
    resolved = running(image="docker.io/nine-minds/alga-psa:1.4.2")
    (container,) = normalize(pod_json(statuses=[resolved])).containers
    assert container.image == "docker.io/nine-minds/alga-psa:1.4.2"


def test_odd_container_entries_are_read_safely() -> None:
    pod = pod_json(phase="Pending", statuses=[status_of("app", {"waiting": None})])
    pod["spec"]["containers"].insert(0, "junk")  # an entry that is not a container is skipped
    pod["spec"]["containers"].append({})  # a container without name or image
    view = normalize(pod)
    assert [(c.name, c.image, c.state, c.reason) for c in view.containers] == [
        ("app", IMAGE, "waiting", ""),
        ("", "", "waiting", "ContainerCreating"),
    ]


def test_a_replicaset_with_a_template_hash_but_no_dash_in_its_name_is_itself() -> None:
    odd = meta_pod([{"kind": "ReplicaSet", "name": "standalone"}], {"pod-template-hash": "5d8f"})
    assert owner(odd) == ("ReplicaSet", "standalone")


def test_a_readiness_gate_false_without_a_message_or_reason_says_nothing_more() -> None:
    gate = {"type": "Ready", "status": "False"}
    pod = pod_json(statuses=[running()], conditions=[gate])
    view = normalize(pod)
    assert (view.status, view.reason, view.message) == ("Running", "NotReady", "")
