"""Host service status views: /api/overview and /api/workloads latency under 20 concurrent
clients while the pollers read a Kubernetes API stand-in holding 200 pods (through the real
kubectl), as a ratio to a trivial stdlib HTTP server measured in the same run; and what those
clients cost the cluster (reads per kind against poll cycles)."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.bench.host_service import BASELINE, CLIENTS, REQUESTS_PER_CLIENT, _load, _start, _stop
from tests.fixtures.host_service import (
    DoublesConfig,
    flux_install_yaml,
    make_appliance,
)
from tests.fixtures.kube_api import condition, start_kube_api
from tests.fixtures.pods import pod
from tests.fixtures.registry import make_pki
from tests.ports import free_port

PODS = 200
POLL = 1.0  # seconds: five times the appliance's rate, so reads overlap the load
STATES = ("running",) * 8 + ("crashloop", "pending-unschedulable")
WORKLOADS = (
    "alga-core",
    "db",
    "redis",
    "pgbouncer",
    "temporal",
    "workflow-worker",
    "email-service",
    "temporal-worker",
)


def _fill(cluster: Any) -> None:
    """Flux's kinds, eight Ready HelmReleases and 200 pods in msp."""
    for doc in yaml.safe_load_all(flux_install_yaml()):
        if doc and doc.get("kind") in ("CustomResourceDefinition", "Namespace"):
            cluster.put(doc)
    for ns in ("msp", "alga-system"):
        cluster.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    cluster.flux_reconciles = False  # statuses stay as put
    for name in WORKLOADS:
        cluster.put(
            {
                "apiVersion": "helm.toolkit.fluxcd.io/v2",
                "kind": "HelmRelease",
                "metadata": {"name": name, "namespace": "alga-system"},
                "spec": {"interval": "10m", "releaseName": name},
                "status": {"conditions": [condition("Ready", True, "UpgradeSucceeded")]},
            }
        )
    for i in range(PODS):
        workload = WORKLOADS[i % len(WORKLOADS)]
        state = STATES[i % len(STATES)]
        cluster.put(pod(f"{workload}-5d8f9c7b6d-{i:05d}", state, workload=workload))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def run(cache: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="hs-status-bench-") as tmp:
        base_dir = Path(tmp)
        api, stop_api = start_kube_api(make_pki(base_dir / "pki"))
        try:
            _fill(api.cluster)
            appliance = make_appliance(base_dir / "a", registry_host="127.0.0.1:9", ca_path=None)
            appliance.set_timeouts(status_poll=POLL)
            api.write_kubeconfig(appliance.settings().paths.kubeconfig)
            record = appliance.work / "doubles.json"
            record.write_text(json.dumps({"calls": [], "units": {"k3s.service": "active"}}))
            doubles = DoublesConfig(
                record=str(record), root=str(appliance.root), kubeconfig=api.kubeconfig()
            ).save(appliance.work / "doubles-config.json")

            port = free_port()
            proc, _ = _start(
                [sys.executable, "-c", BASELINE, str(port)], f"http://127.0.0.1:{port}/"
            )
            try:
                base_lat, base_elapsed = _load(f"http://127.0.0.1:{port}/", lambda s: None)
            finally:
                _stop(proc)

            port = free_port()
            url = f"http://127.0.0.1:{port}"
            argv = [
                sys.executable,
                "-m",
                "tests.fixtures.host_service",
                "--root",
                str(appliance.root),
                "--settings",
                str(appliance.settings_file),
                "--listen",
                f"127.0.0.1:{port}",
                "--doubles",
                str(doubles),
            ]
            proc, _ = _start(argv, url + "/healthz")
            figures: dict[str, dict[str, float]] = {}
            try:

                def login(session: requests.Session) -> None:
                    token = appliance.token()
                    session.post(url + "/api/login", json={"token": token}, timeout=10)

                # Wait for the first read of the pods (no figures before the data exists).
                with requests.Session() as session:
                    login(session)
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline:
                        view = session.get(url + "/api/workloads", timeout=10).json()
                        if sum(len(g["items"]) for g in view["groups"]) >= PODS:
                            break
                        time.sleep(0.2)
                    else:
                        raise RuntimeError("the service never showed the 200 pods")
                reads_before = api.cluster.reads("pods")
                started = time.monotonic()
                for path in ("/api/overview", "/api/workloads"):
                    latencies, elapsed = _load(url + path, login)
                    figures[path] = {
                        "p50": _percentile(latencies, 0.50),
                        "p95": _percentile(latencies, 0.95),
                        "rate": len(latencies) / elapsed,
                    }
                window = time.monotonic() - started
                pod_reads = api.cluster.reads("pods") - reads_before
            finally:
                _stop(proc)
        finally:
            stop_api()

    base = {
        "p50": _percentile(base_lat, 0.5),
        "p95": _percentile(base_lat, 0.95),
        "rate": len(base_lat) / base_elapsed,
    }
    print(f"{'figure':46} {'baseline':>10} {'service':>10} {'ratio':>7}")
    for path, measured in figures.items():
        for key, label in (("p50", "p50 (ms)"), ("p95", "p95 (ms)")):
            b, m = base[key] * 1e3, measured[key] * 1e3
            print(f"{'GET ' + path + ' ' + label:46} {b:10.2f} {m:10.2f} {m / b:7.2f}")
        print(
            f"{'GET ' + path + ' requests/s':46} {base['rate']:10.1f} {measured['rate']:10.1f} "
            f"{measured['rate'] / base['rate']:7.2f}"
        )
    requests_made = 2 * CLIENTS * REQUESTS_PER_CLIENT
    print(
        f"cluster cost: {pod_reads} pod list reads in {window:.1f} s of load "
        f"({window / POLL:.1f} poll intervals of {POLL:g} s) for {requests_made} requests"
    )
    print(
        f"baseline: stdlib ThreadingHTTPServer, small JSON; service: {PODS} pods in the "
        f"stand-in, pollers every {POLL:g} s, {CLIENTS} clients x {REQUESTS_PER_CLIENT}"
    )
    print(
        json.dumps(
            {
                "baseline": base,
                "service": figures,
                "pod_reads": pod_reads,
                "window_s": window,
                "poll_s": POLL,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(".cache")))
