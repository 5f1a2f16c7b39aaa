"""The monitor over in-memory fakes: cluster reads wait for k3s, a bootstrap that advances
wakes every poller at once (long before its interval), views come from the readings, and a
stop leaves no thread."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from host_service.operate.monitor import Monitor
from host_service.runtime import Runtime
from host_service.settings import default_settings
from host_service.state import BootstrapState, Phase
from host_service.store import StateKeeper
from host_service.systemd import UnitState
from tests.fixtures.host_service import FakeHost, FakeKube
from tests.fixtures.pods import pod
from tests.waiting import wait_until


class ActiveSystemd:
    def unit_state(self, unit: str) -> UnitState:
        return UnitState(active="active", sub="running")

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the monitor only reads unit states ({name})")


def monitor_for(tmp_path: Path, kube: FakeKube) -> tuple[Monitor, StateKeeper]:
    settings = default_settings(tmp_path)
    # Thirty seconds: any read within a test's wait came from a kick, not the interval.
    timeouts = dataclasses.replace(settings.timeouts, status_poll=30.0)
    settings = dataclasses.replace(settings, timeouts=timeouts)
    runtime = Runtime(
        kube=kube, systemd=ActiveSystemd(), k3s=ActiveSystemd(), host=FakeHost(),
        registry=lambda settings, intent: None,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    (tmp_path / "var/lib/alga-appliance").mkdir(parents=True)
    keeper = StateKeeper(tmp_path / "state.json", BootstrapState())
    return Monitor(settings, runtime), keeper


def test_cluster_reads_wait_for_k3s_then_a_bootstrap_step_wakes_them(tmp_path: Path) -> None:
    kube = FakeKube()
    kube.put(pod("alga-core-5d8f9c7b6d-a1b2c", "crashloop", workload="alga-core"))
    monitor, keeper = monitor_for(tmp_path, kube)
    monitor.start(keeper)
    try:
        pods = monitor.pollers["pods"]
        first = pods.wait_cycles(1, 10)
        assert first.skipped is not None
        assert "k3s is not installed yet" in first.skipped
        assert not [c for c in kube.calls if c[0] == "list"]  # nothing asked of the cluster
        k3s = next(x for x in monitor.layers() if x["name"] == "k3s")
        assert k3s["health"] == "waiting"
        assert monitor.pollers["host"].reading.value["cpus"] >= 1

        keeper.update(lambda s: dataclasses.replace(s, phase=Phase.RECONCILED))
        read = wait_until(
            lambda: pods.reading if pods.reading.read_at else None, 10, "the kicked read"
        )
        assert read.cycles == 2  # one kick, one read: the interval is 30 s
        view = monitor.workloads("msp")
        core = next(g for g in view["groups"] if g["name"] == "alga-core")
        assert [p["status"] for p in core["items"]] == ["CrashLoopBackOff"]
        assert view["age_seconds"] is not None
    finally:
        monitor.stop()
    assert not any(p.alive for p in monitor.pollers.values())


def test_views_are_built_once_per_reading(tmp_path: Path) -> None:
    kube = FakeKube()
    kube.put(pod("db-0", workload="db", owner_kind="StatefulSet"))
    monitor, keeper = monitor_for(tmp_path, kube)
    keeper.update(lambda s: dataclasses.replace(s, phase=Phase.RECONCILED))
    monitor.start(keeper)
    try:
        monitor.pollers["pods"].wait_cycles(1, 10)
        _, first = monitor.pods()
        _, again = monitor.pods()
        assert first is again  # normalized once for every viewer of this reading
        groups = monitor.workloads("msp")["groups"]
        assert monitor.workloads("msp")["groups"] is groups
        assert monitor.workloads(None)["groups"] is not groups  # another namespace choice
    finally:
        monitor.stop()
