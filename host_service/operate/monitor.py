"""The pollers of every layer, the runtime blockers they raise, and the views built from their
last readings: what ``/api/overview``, ``/api/workloads`` and the pages answer from."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from host_service.host import PROC
from host_service.manifests import SOURCE_NAME
from host_service.operate import layers
from host_service.operate.events import RECENT, by_pod, warnings
from host_service.operate.host_probe import TIMESYNC_FLAG, read_host
from host_service.operate.pods import PodView, normalize
from host_service.operate.poller import Poller
from host_service.operate.runtime_blockers import (
    RuntimeBlocker,
    RuntimeBlockers,
    problems,
    unchecked,
)
from host_service.operate.snapshot import Reading
from host_service.operate.workloads import group
from host_service.release import chart_source_name
from host_service.resolution import load_resolved, read_resolution
from host_service.runtime import Runtime
from host_service.settings import Settings, rooted
from host_service.state import STEPS, TITLES, BootstrapState, Phase, Step, StepStatus
from host_service.store import StateKeeper

log = logging.getLogger(__name__)

K3S_UNIT = "k3s.service"
K3S_VOLUME = "/var/lib/rancher/k3s"
KICK_CHECK = 0.5  # seconds between looks at the bootstrap's progress
GROUPS_KEPT = 16  # namespaces whose workloads view is kept for the current reading


def _k3s_step() -> str:
    return f"step {STEPS.index(Step.K3S) + 1} of {len(STEPS)}, {TITLES[Step.K3S]}"


class Monitor:
    def __init__(
        self, settings: Settings, runtime: Runtime, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.clock = clock
        self.interval = max(0.1, settings.timeouts.status_poll)  # 0 would spin
        self.threshold = settings.timeouts.not_ready_blocker
        self._keeper: StateKeeper | None = None
        self._blockers = RuntimeBlockers()
        self._raised: list[RuntimeBlocker] = []
        self._unchecked: RuntimeBlocker | None = None  # while the checks themselves fail
        self._lock = threading.Lock()
        self._pods: tuple[int, list[PodView]] = (-1, [])
        self._groups: dict[str | None, tuple[tuple[int, int], list[dict[str, Any]]]] = {}
        self._stop = threading.Event()
        self._kicker: threading.Thread | None = None
        kube = runtime.kube
        ns = settings.namespaces
        cluster = self._cluster_skip
        self.pollers = {
            p.name: p
            for p in (
                self._poller("host", self._read_host),
                self._poller("release", self._read_release),
                self._poller("k3s", self._read_k3s, skip=cluster),
                self._poller("nodes", lambda: kube.list("nodes"), skip=cluster),
                self._poller("pods", lambda: kube.list("pods"), skip=cluster),
                self._poller(
                    "controllers", lambda: kube.list("deployments", ns.flux), skip=cluster
                ),
                self._poller("sources", lambda: kube.list("ocirepositories"), skip=cluster),
                self._poller(
                    "kustomizations", lambda: kube.list("kustomizations", ns.flux), skip=cluster
                ),
                self._poller("helm", lambda: kube.list("helmreleases", ns.system), skip=cluster),
                self._poller("events", lambda: kube.list("events"), skip=cluster),
            )
        }

    def _poller(
        self, name: str, read: Callable[[], Any], *, skip: Callable[[], str | None] | None = None
    ) -> Poller:
        return Poller(
            name,
            read,
            interval=self.interval,
            clock=self.clock,
            skip=skip or (lambda: None),
            on_read=self._reevaluate,
        )

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, keeper: StateKeeper) -> None:
        self._keeper = keeper
        for poller in self.pollers.values():
            poller.start()
        self._kicker = threading.Thread(
            target=self._follow_bootstrap, name="poll-kick", daemon=True
        )
        self._kicker.start()

    def stop(self) -> None:
        self._stop.set()
        # In parallel: each may have to end a kubectl that hangs (SIGTERM, then SIGKILL).
        stopping = [threading.Thread(target=p.stop) for p in self.pollers.values()]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()
        if self._kicker is not None:
            self._kicker.join(timeout=KICK_CHECK * 4)

    def kick(self) -> None:
        for poller in self.pollers.values():
            poller.kick()

    def _follow_bootstrap(self) -> None:
        """Wake the pollers when the bootstrap moves to another step or phase, so the view
        is not a whole interval behind it."""
        keeper = self._keeper
        if keeper is None:
            return
        # A look every KICK_CHECK seconds (a lock and a tuple): no request's long-poll slot,
        # no waiter on the state for the life of the service.
        seen = _progress(keeper.snapshot()[1])
        while not self._stop.wait(KICK_CHECK):
            now = _progress(keeper.snapshot()[1])
            if now != seen:
                seen = now
                self.kick()

    # -- reads (poller threads) ----------------------------------------------------------

    def _cluster_skip(self) -> str | None:
        keeper = self._keeper
        if keeper is not None:
            state = keeper.state
            if state.phase is Phase.RECONCILED or state.record(Step.K3S).status is StepStatus.DONE:
                return None
        if self.settings.paths.kubeconfig.exists():
            return None
        return f"k3s is not installed yet: the bootstrap installs it ({_k3s_step()})"

    def _read_host(self) -> dict[str, Any]:
        paths = self.settings.paths
        return read_host(
            PROC,
            volumes={"state": paths.state, "k3s": rooted(paths.root, K3S_VOLUME)},
            timesync_flag=rooted(paths.root, TIMESYNC_FLAG),
            kernel_clock=self.runtime.host.clock_synchronized,
            addresses=self.runtime.host.addresses,
        )

    def _read_release(self) -> dict[str, Any] | None:
        """The selected release: what Flux's sources should be at, by digest."""
        resolution = read_resolution(self.settings.paths)
        if resolution is None:
            return None
        found = load_resolved(self.settings, resolution.ref)
        ns = self.settings.namespaces
        expected: dict[str, str] = {}
        if found is not None:
            release = found[1]
            bundle = release.config.digest
            expected[f"OCIRepository/{ns.flux}/{SOURCE_NAME}"] = bundle
            expected[f"Kustomization/{ns.flux}/{SOURCE_NAME}"] = bundle
            for chart, ref in release.charts.items():
                expected[f"OCIRepository/{ns.system}/{chart_source_name(chart)}"] = ref.digest
        return {
            "version": resolution.version,
            "manifest_digest": resolution.manifest_digest,
            "expected": expected,
        }

    def _read_k3s(self) -> dict[str, Any]:
        unit = self.runtime.systemd.unit_state(K3S_UNIT)
        result: dict[str, Any] = {"unit": unit.active, "sub": unit.sub, "restarts": unit.restarts}
        try:
            answer = self.runtime.kube.readyz()
        except Exception as exc:  # the API is part of what this reading reports
            result.update(api="failed", api_error=str(exc))
        else:
            ok = answer == "ok"
            result.update(api="ok" if ok else "failed", api_error="" if ok else answer)
        return result

    def _reevaluate(self) -> None:
        keeper = self._keeper
        after = keeper is not None and keeper.state.phase is Phase.RECONCILED
        now = self.clock()
        try:
            found = problems(self.readings(), threshold=self.threshold, after_bootstrap=after)
            raised = self._blockers.update(found, now)
        except Exception as exc:  # a reading the checks cannot take (a bug): say so
            error = f"{type(exc).__name__}: {exc}"
            with self._lock:
                before = self._unchecked
                since = before.at if before is not None else now
                self._unchecked = unchecked(error, since)
            if before is None or before.output != error:  # once, not after every read
                log.exception("the runtime blockers cannot be evaluated")
            return
        with self._lock:
            if self._unchecked is not None:
                log.info("the runtime blockers are evaluated again")
            self._raised = raised
            self._unchecked = None

    # -- views (request threads) ---------------------------------------------------------

    def readings(self) -> dict[str, Reading]:
        return {name: p.reading for name, p in self.pollers.items()}

    def blockers(self) -> list[RuntimeBlocker]:
        """The raised blockers; while the checks fail, the last ones evaluated and the one
        that says the checks stopped."""
        with self._lock:
            failing = [self._unchecked] if self._unchecked is not None else []
            return [*failing, *self._raised]

    def pods(self) -> tuple[Reading, list[PodView]]:
        """The pods reading, normalized once per read (not once per request)."""
        reading = self.pollers["pods"].reading
        with self._lock:
            cycles, views = self._pods
            if cycles != reading.cycles:
                views = [normalize(p) for p in reading.value or []]
                self._pods = (reading.cycles, views)
            return reading, views

    def expected_digests(self) -> dict[str, str]:
        value = self.pollers["release"].reading.value
        return dict(value["expected"]) if isinstance(value, dict) else {}

    def layers(self) -> list[dict[str, Any]]:
        now = self.clock()
        r = self.readings()
        pods_reading, pods = self.pods()
        workloads_ns = self.settings.namespaces.workloads
        groups = group(p for p in pods if p.namespace == workloads_ns)
        return [
            layers.host_layer(r["host"], now),
            layers.k3s_layer(r["k3s"], r["nodes"], now),
            layers.flux_layer(
                r["controllers"],
                r["sources"],
                r["kustomizations"],
                now,
                expected=self.expected_digests(),
            ),
            layers.helm_layer(r["helm"], now),
            layers.workloads_layer(pods_reading, groups, now),
        ]

    def workloads(self, namespace: str | None) -> dict[str, Any]:
        """Pods grouped by workload: of ``namespace``, or of every namespace (None)."""
        now = self.clock()
        reading, pods = self.pods()
        # Built once per read and namespace: twenty viewers share one rendering (pod ages are
        # as of that read, at most one interval old).
        events = self.pollers["events"].reading
        key = (reading.cycles, events.cycles)
        with self._lock:
            cached = self._groups.get(namespace)
        if cached is not None and cached[0] == key:
            groups = cached[1]
        else:
            chosen = [p for p in pods if namespace is None or p.namespace == namespace]
            groups = [g.to_json(now) for g in group(chosen)]
            uids = {(p.namespace, p.name): p.uid for p in chosen}
            per_pod = by_pod(warnings(events.value or []), uids)
            for g in groups:
                for item in g["items"]:
                    found = per_pod.get((item["namespace"], item["name"]), [])
                    item["events"] = [e.to_json() for e in found]
            with self._lock:
                # Only the current reading's views are worth keeping, and only so many of
                # them: every namespace a client names would otherwise add one for good.
                for name in [n for n, (k, _) in self._groups.items() if k != key]:
                    del self._groups[name]
                self._groups.pop(namespace, None)
                while len(self._groups) >= GROUPS_KEPT:
                    del self._groups[next(iter(self._groups))]
                self._groups[namespace] = (key, groups)
        return {
            "namespace": namespace,
            "all": namespace is None,
            "namespaces": sorted(
                {p.namespace for p in pods} | {self.settings.namespaces.workloads}
            ),
            "age_seconds": reading.age(now),
            "reads": reading.cycles,  # how many reads of the pods this view follows
            "error": reading.error,
            "skipped": reading.skipped,
            "groups": groups,
        }

    def recent_warnings(self) -> list[dict[str, Any]]:
        """The newest Warning events of the workloads' namespace."""
        events = self.pollers["events"].reading.value or []
        namespace = self.settings.namespaces.workloads
        found = [e for e in warnings(events) if e.namespace == namespace]
        return [e.to_json() for e in found[:RECENT]]

    def ages(self) -> dict[str, float | None]:
        now = self.clock()
        return {name: reading.age(now) for name, reading in self.readings().items()}


def _progress(state: BootstrapState) -> tuple[str, tuple[str, ...]]:
    return state.phase.value, tuple(r.status.value for r in state.steps)
