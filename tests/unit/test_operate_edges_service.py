"""The operator views at their edges through the monitor and the pages: null statuses and
timestamps past the calendar answer 200, checks that fail are shown (not frozen), warnings
of an earlier pod of the same name stay off the new one, and the workloads views kept stay
bounded however many namespaces are asked for."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from host_service.app import App
from host_service.operate.monitor import GROUPS_KEPT
from host_service.operate.runtime_blockers import UNCHECKED_KEY
from host_service.runtime import Runtime
from host_service.service import Service
from host_service.settings import default_settings
from host_service.state import Phase
from tests.fixtures.host_service import FakeHost, FakeKube
from tests.fixtures.pods import event, pod
from tests.unit.test_host_app import Browser, login
from tests.unit.test_host_operate_monitor import monitor_for
from tests.unit.test_host_worker import Script, UnusedSystemd
from tests.waiting import wait_until

FAR = "9999-12-31T23:59:59-01:00"  # year 10000 in UTC
CLUSTER = ("nodes", "pods", "helm", "events")


def put(kube: FakeKube, resource: str, obj: dict[str, Any]) -> None:
    """Stored under the plural the monitor lists (FakeKube.put names CRDs in full)."""
    meta = obj["metadata"]
    kube.objects[(resource, meta.get("namespace", ""), meta["name"])] = obj


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[FakeKube], Browser]]:
    """The service over ``kube`` once its pollers read the cluster, and a browser logged in."""
    started: list[Service] = []

    def start(kube: FakeKube) -> Browser:
        settings = default_settings(tmp_path)
        settings.paths.kubeconfig.parent.mkdir(parents=True)
        settings.paths.kubeconfig.write_text("apiVersion: v1\n")  # k3s is there
        runtime = Runtime(
            kube=kube, systemd=UnusedSystemd(), k3s=UnusedSystemd(), host=FakeHost(),
            registry=lambda settings, intent: None,  # type: ignore[arg-type,return-value]
        )  # fmt: skip
        service = Service(settings, runtime, implementations=Script().implementations())
        service.start()
        started.append(service)
        for name in CLUSTER:
            reading = service.monitor.pollers[name].wait_cycles(1, 10)
            assert reading.read_at is not None, (name, reading.error)
        browser = Browser(App(service))
        login(browser, service)
        return browser

    yield start
    for service in started:
        service.stop()


def test_null_statuses_answer_and_raise_their_blockers(
    serve: Callable[[FakeKube], Browser],
) -> None:
    kube = FakeKube()
    put(kube, "nodes", {"metadata": {"name": "alga-appliance"}, "status": None})
    put(kube, "helmreleases", {
        "metadata": {"name": "db", "namespace": "alga-system", "annotations": None},
        "status": None,
    })  # fmt: skip
    put(kube, "deployments", {"metadata": {"name": "x", "namespace": "flux-system"},
                              "status": None})  # fmt: skip
    browser = serve(kube)

    def raised() -> dict[str, Any] | None:
        answer = browser.call("GET", "/api/overview")
        assert answer.code == 200, answer.text
        view: dict[str, Any] = answer.json()
        return view if view["blockers"] else None

    view = wait_until(raised, 10, "the node's blocker")
    assert [b["key"] for b in view["blockers"]] == ["node/alga-appliance"]
    helm = next(x for x in view["layers"] if x["name"] == "helm")
    assert helm["items"][0]["text"] == "db: in progress"
    assert browser.call("GET", "/status").code == 200


def test_times_past_the_calendar_answer_with_unknown(
    serve: Callable[[FakeKube], Browser],
) -> None:
    kube = FakeKube()
    crashing = pod("alga-core-5d8f9c7b6d-x2x9q", "crashloop", workload="alga-core")
    crashing["status"]["containerStatuses"][0]["lastState"]["terminated"]["finishedAt"] = FAR
    put(kube, "pods", crashing)
    warning = event(crashing, "BackOff", "Back-off restarting failed container app")
    warning["lastTimestamp"] = FAR
    put(kube, "events", warning)
    browser = serve(kube)
    for path in ("/workloads", "/status", "/api/workloads", "/api/overview"):
        answer = browser.call("GET", path)
        assert answer.code == 200, (path, answer.text[-500:])
    page = browser.call("GET", "/workloads").text
    assert "last: Error (exit 1), —" in page


def test_failing_checks_keep_their_blockers_and_say_so(tmp_path: Path) -> None:
    kube = FakeKube()
    put(kube, "nodes", {"metadata": {"name": "n1"}, "status": {}})  # NotReady: blocks at once
    monitor, keeper = monitor_for(tmp_path, kube)
    keeper.update(lambda s: dataclasses.replace(s, phase=Phase.RECONCILED))
    monitor.start(keeper)
    try:
        nodes = monitor.pollers["nodes"]

        def keys() -> list[str]:
            return [b.key for b in monitor.blockers()]

        wait_until(lambda: keys() == ["node/n1"], 10, lambda: f"node/n1 alone: {keys()}")
        kube.objects[("nodes", "", "n2")] = "junk"  # type: ignore[assignment]
        nodes.kick()
        wait_until(lambda: len(keys()) == 2, 10, lambda: f"the checks failing: {keys()}")
        unchecked, kept = monitor.blockers()
        assert unchecked.key == UNCHECKED_KEY
        assert (
            unchecked.message == "the runtime checks stopped: the blockers shown may be out of date"
        )
        assert "AttributeError" in unchecked.cause
        assert unchecked.fix == "/status#support"
        assert kept.key == "node/n1"  # a failing check clears nothing
        monitor.clock = lambda: unchecked.at + 3600
        nodes.kick()
        wait_until(lambda: monitor.blockers()[0] is not unchecked, 10, "the next evaluation")
        again = monitor.blockers()[0]
        assert again.at == unchecked.at  # when the checks stopped, not the latest failure
        del kube.objects[("nodes", "", "n2")]
        nodes.kick()
        wait_until(lambda: keys() == ["node/n1"], 10, lambda: f"checked again: {keys()}")
    finally:
        monitor.stop()


def test_warnings_of_an_earlier_pod_stay_off_the_new_one(tmp_path: Path) -> None:
    kube = FakeKube()
    old = pod("db-0", "oomkilled", workload="db", owner_kind="StatefulSet")
    old["metadata"]["uid"] = "11111111-old"
    new = pod("db-0", "running", workload="db", owner_kind="StatefulSet")
    put(kube, "pods", new)
    put(kube, "events", event(old, "OOMKilling", "Memory cgroup out of memory"))
    put(kube, "events", event(new, "Unhealthy", "Readiness probe failed"))
    monitor, keeper = monitor_for(tmp_path, kube)
    keeper.update(lambda s: dataclasses.replace(s, phase=Phase.RECONCILED))
    monitor.start(keeper)
    try:
        monitor.pollers["pods"].wait_cycles(1, 10)
        monitor.pollers["events"].wait_cycles(1, 10)
        db = next(g for g in monitor.workloads("msp")["groups"] if g["name"] == "db")
        (item,) = db["items"]
        assert item["uid"] == new["metadata"]["uid"]
        assert [(e["reason"], e["uid"]) for e in item["events"]] == [
            ("Unhealthy", new["metadata"]["uid"])
        ]
    finally:
        monitor.stop()


def test_the_workloads_views_kept_are_bounded(tmp_path: Path) -> None:
    monitor, _ = monitor_for(tmp_path, FakeKube())  # not started: views of the empty reading
    for i in range(GROUPS_KEPT * 4):
        monitor.workloads(f"ns-{i}")
    assert len(monitor._groups) == GROUPS_KEPT
    latest = monitor.workloads(f"ns-{GROUPS_KEPT * 4 - 1}")["groups"]
    assert monitor.workloads(f"ns-{GROUPS_KEPT * 4 - 1}")["groups"] is latest  # still shared
