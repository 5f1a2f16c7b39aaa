"""Layer status from readings, runtime blockers raised and cleared, the overview's headline,
and the pollers' rate bound (fake reads, no cluster)."""

from __future__ import annotations

import threading
from typing import Any

from host_service.operate import layers
from host_service.operate.overview import overview
from host_service.operate.poller import Poller
from host_service.operate.runtime_blockers import RuntimeBlockers, problems
from host_service.operate.snapshot import Reading
from host_service.operate.times import parse_time
from tests.waiting import wait_until

NOW = 1_796_454_000.0  # 2026-12-05 07:00:00 UTC
T0 = "2026-12-05T06:50:00Z"  # ten minutes before NOW


def cond(kind: str, status: str, message: str = "", at: str = T0) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": "R",
        "message": message,
        "lastTransitionTime": at,
    }


def node(ready: bool, *extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "alga-appliance"},
        "status": {
            "conditions": [cond("Ready", "True" if ready else "False", "kubelet stopped"), *extra],
            "nodeInfo": {"kubeletVersion": "v1.36.3+k3s1"},
        },
    }


def helm_release(name: str, ready: str, message: str = "", at: str = T0) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "alga-system"},
        "status": {
            "conditions": [cond("Ready", ready, message, at)],
            "history": [{"chartVersion": "1.2.0", "status": "deployed"}],
            "lastAttemptedRevision": "1.2.0",
            "upgradeFailures": 2 if ready == "False" else 0,
        },
    }


def host(used_percent: float) -> Reading:
    total = 100 * 2**30
    free = int(total * (100 - used_percent) / 100)
    facts = {
        "uptime_seconds": 7200.0,
        "load": [0.5, 0.4, 0.3],
        "cpus": 4,
        "memory": {"total": 8 * 2**30, "available": 6 * 2**30},
        "disks": {
            "state": {
                "path": "/var/lib/alga-appliance",
                "total": total,
                "free": free,
                "used_percent": used_percent,
            },
        },
        "clock_synchronized": True,
        "addresses": ["192.0.2.10"],
    }
    return Reading(value=facts, read_at=NOW - 3, tried_at=NOW - 3, cycles=4)


def ok(value: Any) -> Reading:
    return Reading(value=value, read_at=NOW - 2, tried_at=NOW - 2, cycles=3)


# -- runtime blockers ----------------------------------------------------------------------


def test_a_helm_release_not_ready_past_the_threshold_blocks_and_clears() -> None:
    tracker = RuntimeBlockers()
    failing = {"helm": ok([helm_release("alga-core", "False", "install retries exhausted")])}
    found = problems(failing, threshold=900, after_bootstrap=True)
    assert tracker.update(found, NOW) == []  # ten minutes: under the 15-minute threshold
    (raised,) = tracker.update(found, NOW + 400)
    assert raised.message == "HelmRelease alga-core has not been Ready for 16 minutes"
    assert "install retries exhausted" in raised.cause
    assert raised.next_step
    assert raised.at == parse_time(T0)  # started when the API says it did
    assert "failures 2" in raised.output
    assert "chart 1.2.0" in raised.output
    assert raised.fix == "/update"
    healthy = {"helm": ok([helm_release("alga-core", "True")])}
    assert tracker.update(problems(healthy, threshold=900, after_bootstrap=True), NOW + 500) == []


def test_flux_objects_count_only_after_the_bootstrap() -> None:
    failing = {"helm": ok([helm_release("db", "False")]), "kustomizations": ok([])}
    assert problems(failing, threshold=0, after_bootstrap=False) == []
    assert len(problems(failing, threshold=0, after_bootstrap=True)) == 1


def test_node_not_ready_and_a_full_disk_block_at_once_and_clear() -> None:
    tracker = RuntimeBlockers()
    bad = {"nodes": ok([node(False, cond("DiskPressure", "True"))]), "host": host(93.5)}
    raised = tracker.update(problems(bad, threshold=900, after_bootstrap=False), NOW)
    assert [b.key for b in raised] == ["node/alga-appliance", "disk/state"]
    disk = raised[1]
    assert disk.message == "the state volume is 94 % full"
    assert disk.at == NOW  # the API gives no start: first seen
    assert "DiskPressure=True" in raised[0].output
    # Still there a minute later: same start time.
    again = tracker.update(problems(bad, threshold=900, after_bootstrap=False), NOW + 60)
    assert [b.at for b in again] == [b.at for b in raised]
    fine = {"nodes": ok([node(True)]), "host": host(50.0)}
    assert tracker.update(problems(fine, threshold=900, after_bootstrap=False), NOW + 120) == []
    # A new occurrence starts afresh.
    (disk_again,) = tracker.update(
        problems({"host": host(95.0)}, threshold=900, after_bootstrap=False), NOW + 180
    )
    assert disk_again.at == NOW + 180


# -- layers --------------------------------------------------------------------------------


def test_a_layer_that_cannot_be_read_says_why() -> None:
    refused = Reading(
        error="The connection to the server 127.0.0.1:6443 was refused - did you specify the "
        "right host or port?",
        tried_at=NOW,
        cycles=1,
    )
    layer = layers.helm_layer(refused, NOW)
    assert layer["health"] == "unknown"
    assert layer["headline"].startswith("Cannot be read: k3s is not running")
    timeout = Reading(
        value=[helm_release("db", "True")],
        read_at=NOW - 30,
        error="context deadline exceeded (Client.Timeout)",
        tried_at=NOW,
        cycles=5,
    )
    stale = layers.helm_layer(timeout, NOW)
    assert "did not answer in time" in stale["error"]
    assert "as read 30s ago" in stale["headline"]
    assert stale["items"][0]["text"] == "db: Ready, chart 1.2.0"
    upgrading = helm_release("alga-core", "Unknown", "Running 'upgrade' action")
    upgrading["status"]["lastAttemptedRevision"] = "1.3.0"
    (item,) = layers.helm_layer(ok([upgrading]), NOW)["items"]
    assert (item["health"], item["text"]) == ("progress", "alga-core: in progress, chart 1.2.0")
    assert item["detail"] == "last attempted 1.3.0; Running 'upgrade' action"


def test_before_k3s_the_cluster_layers_wait_instead_of_failing() -> None:
    skipped = Reading(tried_at=NOW, cycles=1, skipped="k3s is not installed yet")
    layer = layers.k3s_layer(skipped, skipped, NOW)
    assert (layer["health"], layer["headline"]) == ("waiting", "k3s is not installed yet")


def test_flux_compares_revisions_with_the_selected_release() -> None:
    digest = "sha256:" + "ab" * 32
    controllers = [
        {"metadata": {"name": n}, "status": {"conditions": [cond("Available", "True")]}}
        for n in layers.FLUX_CONTROLLERS
    ]
    source = {
        "metadata": {"name": "alga-appliance", "namespace": "flux-system"},
        "status": {
            "conditions": [cond("Ready", "True")],
            "artifact": {"revision": "old@" + "sha256:" + "cd" * 32},
        },
    }
    layer = layers.flux_layer(
        ok(controllers),
        ok([source]),
        ok([]),
        NOW,
        expected={"OCIRepository/flux-system/alga-appliance": digest},
    )
    assert layer["health"] == "progress"
    assert "selected " + digest in layer["items"][-1]["detail"]
    source["status"]["artifact"]["revision"] = f"latest@{digest}"
    layer = layers.flux_layer(
        ok(controllers),
        ok([source]),
        ok([]),
        NOW,
        expected={"OCIRepository/flux-system/alga-appliance": digest},
    )
    assert layer["health"] == "ok"
    assert "(the selected release)" in layer["items"][-1]["detail"]


def test_host_layer_flags_a_full_disk() -> None:
    layer = layers.host_layer(host(91.0), NOW)
    assert layer["health"] == "bad"
    assert layer["items"][0]["text"].startswith("State volume: 91 % used")
    assert dict(map(tuple, layer["facts"]))["Up for"] == "2h"


def _status(phase: str, done: int) -> dict[str, Any]:
    names = [
        "preflight",
        "k3s",
        "storage",
        "flux",
        "release",
        "values",
        "apply",
        "source",
        "reconcile",
    ]
    steps = [
        {
            "name": n,
            "title": n.title(),
            "status": "done" if i < done else "pending",
            "message": "",
            "details": [],
            "seconds": None,
            "already_done": False,
        }
        for i, n in enumerate(names)
    ]
    blocker = None
    if phase == "blocked":
        steps[done]["status"] = "blocked"
        blocker = {
            "step": names[done],
            "message": "quota denied",
            "cause": "c",
            "next_step": "n",
            "output": "",
            "at": NOW - 60,
        }
    return {"phase": phase, "steps": steps, "blocker": blocker, "running": phase == "running"}


def test_headline_and_progress_in_human_words() -> None:
    blocked = overview(_status("blocked", 6), [], [], {})
    assert blocked["state"] == "bad"
    assert blocked["headline"] == "Setup stopped at step 7 of 9, Apply"
    assert blocked["progress"] == {"done": 6, "total": 9, "at": "step 7 of 9, Apply"}
    assert blocked["bootstrap_blocker"]["fix"] == "/setup"
    assert blocked["steps"][6]["status_text"] == "Stopped"
    assert blocked["running_now"] == "Nothing: setup waits where it stopped until you retry."
    fresh = overview(_status("awaiting-setup", 0), [], [], {})
    assert (fresh["state"], fresh["headline"]) == ("waiting", "Not set up yet")
    healthy_layers = [{"title": "Host", "health": "ok"}]
    done = overview(_status("reconciled", 9), healthy_layers, [], {})
    assert (done["state"], done["headline"]) == ("ok", "Running normally")
    degraded = overview(
        _status("reconciled", 9), [{"title": "Helm releases", "health": "bad"}], [], {}
    )
    assert (degraded["state"], degraded["headline"]) == ("warn", "Running, with problems")
    assert "blocked" not in str([blocked["headline"], done["headline"], degraded["headline"]])


# -- pollers -------------------------------------------------------------------------------


def test_a_poller_reads_at_its_interval_survives_errors_and_stops() -> None:
    calls: list[int] = []
    fail = threading.Event()

    def read() -> list[int]:
        calls.append(1)
        if fail.is_set():
            raise RuntimeError("boom")
        return [len(calls)]

    poller = Poller("things", read, interval=0.05)
    poller.start()
    try:
        wait_until(lambda: poller.reading.cycles >= 2, 10, "two reads")
        fail.set()
        failed = wait_until(
            lambda: poller.reading if poller.reading.error else None, 10, "a failed read"
        )
        assert failed.error == "boom"
        assert failed.value  # the last good value is kept, with its time
        assert failed.read_at is not None
    finally:
        poller.stop()
    assert not poller.alive


def test_kicks_never_read_closer_than_the_minimum_gap() -> None:
    calls: list[int] = []
    poller = Poller("things", lambda: calls.append(1), interval=30.0)
    poller.min_gap = 2.0  # the fifty kicks below certainly land within it
    poller.start()
    try:
        poller.wait_cycles(1, 10)
        for _ in range(50):
            poller.kick()
        wait_until(lambda: poller.reading.cycles >= 2, 10, "the kicked read")
        # Fifty kicks within the gap are one extra read, not fifty (none follows it).
        assert poller.wait_cycles(3, 1.0).cycles == 2
        assert len(calls) == 2
    finally:
        poller.stop()
