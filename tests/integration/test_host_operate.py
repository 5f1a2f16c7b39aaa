"""The status of every layer and the workloads view against the Kubernetes API stand-in,
driven by the real kubectl: what the views show is what the stand-in holds; a pod that starts
crash-looping shows within one poll; twenty viewers cost one read per kind per interval;
runtime blockers raise and clear; a layer that cannot be read says why; the pollers stop."""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests

from host_service.release import SERVICES
from tests.fixtures.host_service import Appliance, Client, InProcessService, setup_body
from tests.fixtures.kube_api import KubeApi, condition
from tests.fixtures.pods import event, pod, with_state
from tests.waiting import wait_until

POLL = 0.5  # seconds between reads of each kind (the appliance default is 5)
KINDS = ("pods", "nodes", "helmreleases", "kustomizations", "ocirepositories", "deployments")

pytestmark = pytest.mark.usefixtures("published_release")


def reconciled(
    appliance: Appliance, start_service: Callable[..., InProcessService], kube_api: KubeApi,
    **timeouts: float,
) -> tuple[InProcessService, Client]:  # fmt: skip
    appliance.set_timeouts(status_poll=POLL, **timeouts)
    cluster = kube_api.cluster
    cluster.helm_releases = ("db", "redis", "alga-core")
    cluster.workload_pods = True
    running = start_service()
    client = running.logged_in()
    assert client.post("/api/setup", setup_body()).status_code == 202
    assert client.wait_phase("reconciled", "blocked", timeout=120)["phase"] == "reconciled"
    return running, client


def overview(client: Client) -> dict[str, Any]:
    response = client.get("/api/overview")
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def workloads(client: Client, **params: str) -> dict[str, Any]:
    response = client.get("/api/workloads", params=params)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def layer(view: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(x for x in view["layers"] if x["name"] == name)
    return found


def pod_in(view: dict[str, Any], name: str) -> dict[str, Any] | None:
    for group in view["groups"]:
        for item in group["items"]:
            if item["name"] == name:
                found: dict[str, Any] = item
                return found
    return None


def test_the_views_show_what_the_stand_in_holds(
    appliance: Appliance, start_service: Any, kube_api: KubeApi
) -> None:
    cluster = kube_api.cluster
    running, client = reconciled(appliance, start_service, kube_api)
    db0 = cluster.put(pod("db-0", "pending-unschedulable", workload="db", owner_kind="StatefulSet"))
    cluster.put(event(db0, "FailedScheduling", "0/1 nodes are available: 1 Insufficient memory."))
    cluster.put(pod("coredns-6799fbcd5-abcde", namespace="kube-system", workload=None))
    selected = running.service.monitor.expected_digests

    def settled() -> dict[str, Any] | None:
        view = overview(client)
        healths = {x["name"]: x["health"] for x in view["layers"]}
        db = pod_in(workloads(client), "db-0")
        done = db and db["events"] and healths["helm"] == "ok"
        return view if done and healths["flux"] == "ok" and healths["k3s"] == "ok" else None

    view = wait_until(settled, 60, lambda: f"every layer read: {overview(client)['layers']}")
    assert view["phase"] == "reconciled"
    assert view["progress"] == {"done": 9, "total": 9, "at": view["progress"]["at"]}
    k3s = layer(view, "k3s")
    assert ["Version", "v1.36.3+k3s1"] in k3s["facts"]
    assert any(i["text"] == "Node alga-appliance: Ready" for i in k3s["items"])
    flux = layer(view, "flux")
    texts = [i["text"] for i in flux["items"]]
    for controller in ("source-controller", "kustomize-controller", "helm-controller"):
        assert f"{controller}: Available" in texts
    source = next(i for i in flux["items"] if i["name"] == "OCIRepository/alga-appliance")
    assert source["text"] == "OCIRepository flux-system/alga-appliance: Ready"
    assert selected()["OCIRepository/flux-system/alga-appliance"] in source["detail"]
    assert "(the selected release)" in source["detail"]
    assert "Chart sources: 8 of 8 Ready at the selected release" in texts
    helm = layer(view, "helm")
    assert helm["headline"] == "3 of 3 releases Ready"
    assert {i["name"] for i in helm["items"]} == {"db", "redis", "alga-core"}
    assert view["ages"]["pods"] is not None
    assert view["ages"]["pods"] < 30

    msp = workloads(client)
    assert msp["namespace"] == "msp"
    assert [g["name"] for g in msp["groups"]] == list(SERVICES)  # kube-system's pod is not here
    groups = {g["name"]: g for g in msp["groups"]}
    assert groups["alga-core"]["health"] == "ok"
    assert groups["temporal"]["health"] == "missing"
    db = pod_in(msp, "db-0")
    assert db is not None
    assert (db["status"], db["reason"]) == ("Pending", "Unschedulable")
    assert db["message"].endswith("No preemption victims found for incoming pod.")  # whole
    assert db["owner"] == {"kind": "StatefulSet", "name": "db"}
    assert [e["reason"] for e in db["events"]] == ["FailedScheduling"]
    assert overview(client)["warnings"][0]["name"] == "db-0"
    core = groups["alga-core"]["items"][0]
    assert (core["status"], core["ready"], core["total"]) == ("Running", 1, 1)
    assert core["owner"] == {"kind": "Deployment", "name": "alga-core"}

    everything = workloads(client, all="1")
    assert everything["all"] is True
    assert pod_in(everything, "coredns-6799fbcd5-abcde") is not None
    assert "kube-system" in everything["namespaces"]
    system = workloads(client, namespace="kube-system")
    assert [g["name"] for g in system["groups"]][-1] == "other"
    bad = client.get("/api/workloads", params={"namespace": "../etc"})
    assert bad.status_code == 400
    assert "namespace" in bad.json()["fields"]

    page = client.get("/workloads").text
    assert 'id="pod-msp-db-0"' in page
    assert "/logs?namespace=msp&amp;pod=db-0&amp;container=app" in page
    # A pod outside the appliance's namespaces: its log link carries the explicit switch.
    other = client.get("/workloads", params={"namespace": "kube-system"}).text
    link = re.search(
        r'href="(/logs\?namespace=kube-system&amp;pod=coredns-6799fbcd5-abcde[^"]*)"', other
    )
    assert link is not None
    assert link.group(1).endswith("&amp;all=1")
    assert client.get(html.unescape(link.group(1))).status_code == 200
    status_page = client.get("/status").text
    assert 'id="layer-flux"' in status_page
    assert overview(client)["headline"] in status_page


def test_a_pod_that_starts_crash_looping_shows_within_one_poll(
    appliance: Appliance, start_service: Any, kube_api: KubeApi
) -> None:
    cluster = kube_api.cluster
    running, client = reconciled(appliance, start_service, kube_api)
    healthy = cluster.put(pod("email-service-7f9-q2w3e", workload="email-service"))
    wait_until(lambda: pod_in(workloads(client), "email-service-7f9-q2w3e"), 30, "the new pod")
    poller = running.service.monitor.pollers["pods"]
    cluster.put(with_state(healthy, "crashloop", restarts=4))
    cycles = poller.reading.cycles  # reads finished before the change was made

    def crash_looping() -> tuple[dict[str, Any], int] | None:
        view = workloads(client)
        found = pod_in(view, "email-service-7f9-q2w3e")
        return (found, view["reads"]) if found and found["status"] == "CrashLoopBackOff" else None

    shown, reads = wait_until(crash_looping, 30, "CrashLoopBackOff in the workloads view")
    # The read under way when the pod changed may have missed it; the next one did not.
    assert reads <= cycles + 2
    assert shown["restarts"] == 4
    assert shown["last_restart"]["reason"] == "Error"
    assert shown["health"] == "bad"
    page = client.get("/workloads").text
    assert "CrashLoopBackOff" in page
    assert "&amp;previous=1" in page  # the crashed instance's log is one click away


def test_twenty_viewers_cost_one_read_per_kind_per_interval(
    appliance: Appliance, start_service: Any, kube_api: KubeApi
) -> None:
    cluster = kube_api.cluster
    running, _ = reconciled(appliance, start_service, kube_api)
    monitor = running.service.monitor
    pollers = [monitor.pollers[k] for k in ("pods", "nodes", "helm", "kustomizations")]
    reads_before = {k: cluster.reads(k) for k in KINDS}
    cycles_before = [p.reading.cycles for p in pollers]
    stop = threading.Event()
    answered: list[int] = []
    errors: list[str] = []

    def viewer() -> None:
        client = running.logged_in()
        while not stop.is_set():
            for path in ("/api/overview", "/api/workloads", "/status", "/workloads"):
                response = client.get(path)
                if response.status_code != 200:
                    errors.append(f"{path}: {response.status_code}")
                answered.append(1)

    threads = [threading.Thread(target=viewer) for _ in range(20)]
    for thread in threads:
        thread.start()
    try:
        wait_until(
            lambda: all(
                p.reading.cycles >= c + 4 for p, c in zip(pollers, cycles_before, strict=True)
            ),
            60,
            "four more poll intervals",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    cycles = max(p.reading.cycles - c for p, c in zip(pollers, cycles_before, strict=True))
    reads = {k: cluster.reads(k) - reads_before[k] for k in KINDS}
    assert errors == []
    assert len(answered) > 20 * 4  # many more answers than reads
    for kind in ("pods", "nodes", "helmreleases", "kustomizations"):
        # One read per interval (+1: a read may be under way at either end), whatever the
        # number of viewers.
        assert reads[kind] <= cycles + 1, (kind, reads, cycles, len(answered))
    # The flux controllers' Deployments are read once per interval too (the bootstrap's
    # reconcile step is over: nothing else reads them).
    assert reads["deployments"] <= cycles + 1


def test_runtime_blockers_raise_with_their_start_and_clear(
    appliance: Appliance, start_service: Any, kube_api: KubeApi
) -> None:
    cluster = kube_api.cluster
    _, client = reconciled(appliance, start_service, kube_api, not_ready_blocker=1.0)
    cluster.failing_helm_releases = {"redis": "install retries exhausted: timed out waiting"}

    def blocker(key: str) -> Callable[[], dict[str, Any] | None]:
        def find() -> dict[str, Any] | None:
            return next((b for b in overview(client)["blockers"] if b["key"] == key), None)

        return find

    raised = wait_until(blocker("HelmRelease/alga-system/redis"), 60, "the redis blocker")
    assert raised["message"].startswith("HelmRelease redis has not been Ready for")
    assert "install retries exhausted" in raised["cause"]
    assert raised["next_step"]
    assert "failures" in raised["output"]
    assert raised["at"] > 0
    view = overview(client)
    assert (view["state"], view["headline"]) == ("bad", "Needs attention")
    page = client.get("/status").text
    assert 'data-key="HelmRelease/alga-system/redis"' in page
    assert 'href="/update" class="fix"' in page

    cluster.failing_helm_releases = {}
    wait_until(lambda: not overview(client)["blockers"], 60, "the blocker to clear")

    node = cluster.find("nodes", None, "alga-appliance")
    assert node is not None
    ready = node["status"]
    cluster.set_status(
        "nodes",
        None,
        "alga-appliance",
        {**ready, "conditions": [condition("Ready", "Unknown", "NodeStatusUnknown",
                                           "Kubelet stopped posting node status.")]},
    )  # fmt: skip
    node_blocker = wait_until(blocker("node/alga-appliance"), 60, "the node blocker")
    assert node_blocker["message"] == "node alga-appliance is NotReady"
    assert "Kubelet stopped posting node status." in node_blocker["cause"]
    cluster.set_status("nodes", None, "alga-appliance", ready)
    wait_until(lambda: not overview(client)["blockers"], 60, "the node blocker to clear")


def test_a_layer_that_cannot_be_read_says_why_and_the_pollers_stop(
    appliance: Appliance, start_service: Any, kube_api: KubeApi
) -> None:
    cluster = kube_api.cluster
    running, client = reconciled(appliance, start_service, kube_api)
    cluster.deny("list", "helmreleases", code=500, reason="InternalError", message="etcd is gone")
    cluster.ready = False

    def unreadable() -> dict[str, Any] | None:
        view = overview(client)
        helm, k3s = layer(view, "helm"), layer(view, "k3s")
        return view if helm["error"] and k3s["health"] == "bad" else None

    view = wait_until(unreadable, 60, "the helm layer to fail")
    helm = layer(view, "helm")
    assert "etcd is gone" in helm["error"]
    assert "the last read failed" in helm["headline"]  # the last good reading, with its age
    k3s = layer(view, "k3s")
    assert any(i["text"] == "API not ready" for i in k3s["items"])

    running.stop()
    left = [t.name for t in threading.enumerate() if t.name.startswith("poll-")]
    assert left == []
    with pytest.raises(requests.ConnectionError):
        requests.get(running.url + "/healthz", timeout=5)


def test_a_hung_api_never_holds_a_request(
    appliance: Appliance, start_service: Any, kube_api: KubeApi
) -> None:
    """Requests answer from the last readings while every read hangs; the layers then say
    the API did not answer in time, and recover when it answers again."""
    cluster = kube_api.cluster
    running, client = reconciled(appliance, start_service, kube_api, kube_call=8)
    helm = running.service.monitor.pollers["helm"]
    wait_until(lambda: helm.reading.read_at, 30, "a good read of the HelmReleases")
    cluster.hang.set()
    try:
        cycles = helm.reading.cycles

        def timed_out() -> dict[str, Any] | None:
            # Well under kubectl's 8 s: a request that read the cluster would time out here.
            response = client.get("/api/overview", timeout=4)
            response.raise_for_status()
            found = layer(response.json(), "helm")
            return found if found["error"] else None

        failed = wait_until(timed_out, 60, "the helm layer to report the hung API")
        assert "did not answer in time" in failed["error"]
        assert helm.reading.cycles > cycles
        assert client.get("/workloads", timeout=4).status_code == 200
    finally:
        cluster.hang.clear()
    wait_until(lambda: not layer(overview(client), "helm")["error"], 60, "the helm layer back")
