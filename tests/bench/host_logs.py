"""Host service log follow: 2,000 lines/s from one container to 5 viewers (each its own
session) and one viewer that never reads, through the real kubectl and the Kubernetes API
stand-in; lines delivered and lost per viewer, and the service's RSS idle (the baseline),
after one load and after a second (bounded: the second load adds nothing)."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import requests

from tests.fixtures.host_service import PROJECT, DoublesConfig, make_appliance
from tests.fixtures.kube_api import start_kube_api
from tests.fixtures.registry import make_pki
from tests.ports import free_port
from tests.waiting import wait_until

VIEWERS = 5
RATE = 2_000  # lines per second
SECONDS = 10  # per load
BATCH = 100  # lines written at once (every 50 ms)
POD = "bench-7c9d5b-x2x4q"
FOLLOW = "/api/logs/follow?" + urlencode({"namespace": "msp", "pod": POD, "container": "app"})
PADDING = "x" * 120  # a log line of about 150 bytes


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Viewer:
    """One browser's event stream, counted as it arrives."""

    port: int
    cookie: str
    delivered: int = 0
    missed: int = 0
    last: int = -1
    out_of_order: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        connection.request("GET", FOLLOW, headers={"Cookie": self.cookie})
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"follow answered {response.status}: {response.read()[:200]!r}")
        self.response = response
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        name = ""
        try:
            while line := self.response.readline():
                if line.startswith(b"event: "):
                    name = line[7:].strip().decode()
                elif line.startswith(b"data: ") and name == "lines":
                    for _, _, text in json.loads(line[6:]):
                        number = int(text.split(" ", 2)[1])
                        self.out_of_order += number <= self.last
                        self.last = number
                        self.delivered += 1
                elif line.startswith(b"data: ") and name == "missed":
                    self.missed += json.loads(line[6:])["count"]
        except (OSError, ValueError):
            pass
        finally:
            self.done.set()


def _write(cluster: object, first: int, count: int) -> float:
    """``count`` lines at ``RATE`` per second; returns the rate achieved."""
    started = time.perf_counter()
    for offset in range(0, count, BATCH):
        due = started + offset / RATE
        time.sleep(max(0.0, due - time.perf_counter()))
        numbers = range(first + offset, first + min(offset + BATCH, count))
        cluster.add_log("msp", POD, *(f"seq {n} {PADDING}" for n in numbers), container="app")  # type: ignore[attr-defined]
    return count / (time.perf_counter() - started)


def run(cache: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="hs-logs-bench-") as tmp:
        base = Path(tmp)
        pki = make_pki(base / "pki")
        kube, stop_kube = start_kube_api(pki)
        proc: subprocess.Popen[bytes] | None = None
        try:
            appliance = make_appliance(
                base / "appliance", registry_host="127.0.0.1:1", ca_path=None
            )
            kube.cluster.put({"apiVersion": "v1", "kind": "Pod",
                              "metadata": {"name": POD, "namespace": "msp"},
                              "spec": {"containers": [{"name": "app", "image": "x"}]},
                              "status": {"phase": "Running", "pinned": True}})  # fmt: skip
            kubeconfig = appliance.settings().paths.kubeconfig
            kubeconfig.parent.mkdir(parents=True, exist_ok=True)
            kubeconfig.write_text(kube.kubeconfig())
            kubeconfig.chmod(0o600)
            doubles = DoublesConfig(
                record=str(base / "doubles.json"),
                root=str(appliance.root),
                kubeconfig=kube.kubeconfig(),
            ).save(base / "doubles-config.json")
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.fixtures.host_service", "--root", str(appliance.root),
                 "--settings", str(appliance.settings_file), "--listen", f"127.0.0.1:{port}",
                 "--doubles", str(doubles)],
                cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            url = f"http://127.0.0.1:{port}"

            def up() -> bool:
                try:
                    return requests.get(url + "/healthz", timeout=1).status_code == 200
                except requests.RequestException:
                    return False

            wait_until(up, 30, "the service to answer")
            viewers = []
            for _ in range(VIEWERS):  # each viewer its own session, as five browsers
                session = requests.Session()
                login = session.post(
                    url + "/api/login", json={"token": appliance.token()}, timeout=10
                )
                login.raise_for_status()
                cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
                viewers.append(Viewer(port, cookie))
            for viewer in viewers:
                viewer.start()
            # and one more that never reads its socket: it may only cost its bounded queue
            stuck = socket.create_connection(("127.0.0.1", port))
            stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.sendall(f"GET {FOLLOW} HTTP/1.1\r\nHost: bench\r\nCookie: {viewers[0].cookie}"
                          "\r\n\r\n".encode())  # fmt: skip
            wait_until(lambda: kube.cluster.log_follows_open == 1, 30, "the upstream follow")
            time.sleep(1.0)  # idle
            rss_idle = _rss_kib(proc.pid)
            rows = []
            written = 0
            for load in (1, 2):
                count = RATE * SECONDS
                rate = _write(kube.cluster, written, count)
                written += count
                wait_until(
                    lambda n=written: all(v.delivered + v.missed >= n for v in viewers),
                    60, f"{written} lines at every viewer",
                )  # fmt: skip
                rows.append((load, rate, _rss_kib(proc.pid), [
                    (v.delivered, v.missed, written - v.delivered, v.out_of_order) for v in viewers
                ]))  # fmt: skip
            follows = kube.cluster.log_follows
            stuck.close()
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            stop_kube()
    print(f"{VIEWERS} viewers and one that never reads, {RATE} lines/s of ~150 bytes, "
          f"{SECONDS} s per load; upstream kubectl follows: {follows}")  # fmt: skip
    print(f"{'load':6} {'write rate':>11} {'RSS (MiB)':>10} {'ratio to idle':>14}")
    print(f"{'idle':6} {'':>11} {rss_idle / 1024:10.1f} {1.0:14.2f}")
    for load, rate, rss, _ in rows:
        print(f"{load:<6} {rate:11.0f} {rss / 1024:10.1f} {rss / rss_idle:14.2f}")
    print(f"{'viewer':7} {'delivered':>10} {'missed':>8} {'lost':>6} {'reordered':>10}")
    for index, (delivered, missed, lost, reordered) in enumerate(rows[-1][3]):
        print(f"{index:<7} {delivered:10} {missed:8} {lost:6} {reordered:10}")
    print("(totals after both loads; missed: dropped by the service and announced)")
    print(json.dumps({"rss_idle_kib": rss_idle, "loads": rows, "follows": follows}))
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(".cache")))
