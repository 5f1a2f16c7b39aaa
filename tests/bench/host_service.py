"""Host service: idle RSS, cold start, and /api/status latency under 20 concurrent clients,
each as a ratio to a trivial stdlib HTTP server measured in the same run."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.fixtures.host_service import PROJECT
from tests.ports import free_port

CLIENTS = 20
REQUESTS_PER_CLIENT = 50
COLD_STARTS = 3

# The baseline: what any Python HTTP service costs at least (threaded stdlib server, JSON).
BASELINE = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
ThreadingHTTPServer.request_queue_size = 64  # as the service: 5 drops SYNs under 20 clients
server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
server.daemon_threads = True
server.serve_forever()
"""


@dataclass
class Figures:
    cold_start: float
    rss_kib: int
    p50: float
    p95: float
    p99: float
    rate: float


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _start(argv: list[str], url: str) -> tuple[subprocess.Popen[bytes], float]:
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=PROJECT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    while True:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return proc, time.perf_counter() - started
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[:3]} exited with {proc.returncode}")
        if time.perf_counter() - started > 30:
            proc.kill()
            raise RuntimeError(f"{argv[:3]} did not answer {url}")
        time.sleep(0.005)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _load(url: str, prepare: Callable[[requests.Session], None]) -> tuple[list[float], float]:
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS + 1)

    def client() -> None:
        with requests.Session() as session:
            prepare(session)
            mine = []
            barrier.wait()
            for _ in range(REQUESTS_PER_CLIENT):
                t = time.perf_counter()
                response = session.get(url, timeout=30)
                mine.append(time.perf_counter() - t)
                response.raise_for_status()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started


def _measure(
    argv: Callable[[int], list[str]],
    ready_path: str,
    load_path: str,
    prepare: Callable[[str, requests.Session], None],
) -> Figures:
    starts = []
    for _ in range(COLD_STARTS):
        port = free_port()
        proc, seconds = _start(argv(port), f"http://127.0.0.1:{port}{ready_path}")
        starts.append(seconds)
        _stop(proc)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, _ = _start(argv(port), base + ready_path)
    try:
        time.sleep(1.0)  # idle
        rss = _rss_kib(proc.pid)
        latencies, elapsed = _load(base + load_path, lambda s: prepare(base, s))
    finally:
        _stop(proc)
    latencies.sort()
    return Figures(
        cold_start=statistics.median(starts),
        rss_kib=rss,
        p50=latencies[len(latencies) // 2],
        p95=latencies[int(len(latencies) * 0.95)],
        p99=latencies[int(len(latencies) * 0.99)],
        rate=len(latencies) / elapsed,
    )


def run(cache: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="hs-bench-") as tmp:
        root = Path(tmp)
        baseline = _measure(
            lambda port: [sys.executable, "-c", BASELINE, str(port)],
            "/",
            "/",
            lambda base, session: None,
        )

        def login(base: str, session: requests.Session) -> None:
            token = (root / "var/lib/alga-appliance/setup-token").read_text().strip()
            session.post(base + "/api/login", json={"token": token}, timeout=10).raise_for_status()

        service = _measure(
            lambda port: [sys.executable, "-m", "host_service", "--root", str(root),
                          "--listen", f"127.0.0.1:{port}"],
            "/healthz", "/api/status", login,
        )  # fmt: skip
    rows = [
        ("cold start to first answer (s)", baseline.cold_start, service.cold_start),
        ("idle RSS (MiB)", baseline.rss_kib / 1024, service.rss_kib / 1024),
        (f"GET latency p50 (ms), {CLIENTS} clients", baseline.p50 * 1e3, service.p50 * 1e3),
        ("GET latency p95 (ms)", baseline.p95 * 1e3, service.p95 * 1e3),
        ("GET latency p99 (ms)", baseline.p99 * 1e3, service.p99 * 1e3),
        ("requests per second", baseline.rate, service.rate),
    ]
    print(f"{'figure':42} {'baseline':>10} {'service':>10} {'ratio':>7}")
    for name, base, measured in rows:
        print(f"{name:42} {base:10.2f} {measured:10.2f} {measured / base:7.2f}")
    print("baseline: stdlib ThreadingHTTPServer answering a small JSON document;")
    print(
        f"service: python3 -m host_service (awaiting setup), GET /api/status with a "
        f"session; {CLIENTS} clients x {REQUESTS_PER_CLIENT} requests each"
    )
    print(json.dumps({"baseline": baseline.__dict__, "service": service.__dict__}))
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(".cache")))
