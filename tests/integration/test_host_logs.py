"""The log viewer's endpoints against the Kubernetes API stand-in through the real kubectl:
live lines over server-sent events, one upstream follow shared by every viewer and reaped
after the last, the previous instance, older chunks, and a stuck viewer that stalls no one."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tests.fixtures.host_service import Appliance, Client, InProcessService
from tests.fixtures.kube_api import KubeApi, KubeCluster
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

POD = "alga-core-7c9d5b-x2x4q"
TARGET = {"namespace": "msp", "pod": POD, "container": "app"}


def put_pod(cluster: KubeCluster, name: str = POD, *containers: str) -> None:
    cluster.put({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": name, "namespace": "msp"},
                 "spec": {"containers": [{"name": c, "image": "x"}
                                         for c in containers or ("app", "sidecar")]},
                 "status": {"phase": "Running", "pinned": True}})  # fmt: skip


def path(base: str, **params: str) -> str:
    return f"{base}?{urlencode({**TARGET, **params})}"


class Events:
    """A server-sent events client on its own connection, read line by line as it comes."""

    def __init__(self, client: Client, target: str, headers: dict[str, str] | None = None) -> None:
        url = urlsplit(client.url)
        self.connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
        cookie = "; ".join(f"{c.name}={c.value}" for c in client.http.cookies)
        self.connection.request("GET", target, headers={"Cookie": cookie, **(headers or {})})
        # Kept here: http.client hands a closing connection's socket to the response.
        self.sock = self.connection.sock
        self.response = self.connection.getresponse()
        self.events: list[tuple[str, Any]] = []
        self.ids: list[str] = []
        self.done = threading.Event()
        if self.response.status == 200:
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
        else:
            self.body = json.loads(self.response.read())
            self.done.set()

    def _read(self) -> None:
        name, data = "message", ""
        try:
            while line := self.response.readline():
                text = line.decode().rstrip("\n")
                if text.startswith("event: "):
                    name = text[7:]
                elif text.startswith("data: "):
                    data = text[6:]
                elif text.startswith("id: "):
                    self.ids.append(text[4:])
                elif text == "" and data:
                    self.events.append((name, json.loads(data)))
                    name, data = "message", ""
        except (OSError, ValueError):
            pass
        finally:
            self.done.set()

    def texts(self) -> list[str]:
        return [line[2] for name, data in list(self.events) if name == "lines" for line in data]

    def close(self) -> None:
        """The viewer goes away: its end of the connection closes."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.done.wait(10)  # the reader saw the end: the response is no longer read
        self.response.close()


@pytest.fixture
def running(start_service: Any, kube_api: KubeApi, appliance: Appliance) -> InProcessService:
    """The service on an appliance whose k3s is up (its kubeconfig names the stand-in)."""
    put_pod(kube_api.cluster)
    kubeconfig = appliance.settings().paths.kubeconfig
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    kubeconfig.write_text(kube_api.kubeconfig())
    kubeconfig.chmod(0o600)
    service: InProcessService = start_service()
    hub = service.service.logs
    # Quick heartbeats: a viewer that left is noticed on the next write to it.
    hub.limits = dataclasses.replace(hub.limits, grace=0.3, heartbeat=0.3, stop_grace=3.0)
    return service


@pytest.fixture
def opened() -> Any:
    streams: list[Events] = []

    def open_events(client: Client, target: str, **headers: str) -> Events:
        events = Events(client, target, headers)
        streams.append(events)
        return events

    yield open_events
    for events in streams:
        events.close()


def kubectl_follows() -> list[str]:
    """``kubectl logs --follow`` processes this test process started and has not reaped
    (a zombie counts: it was not waited for)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == os.getpid() and b"logs" in argv and b"--follow" in argv:
            found.append(entry.name)
    return found


def test_a_line_logged_while_following_reaches_the_event_stream(
    running: InProcessService, kube_api: KubeApi, opened: Any
) -> None:
    cluster = kube_api.cluster
    cluster.add_log("msp", POD, "starting", "listening on :3000", container="app")
    cluster.add_log("msp", POD, "sidecar noise", container="sidecar")
    client = running.logged_in()
    answer = client.get(path("/api/logs", tail="10"))
    assert answer.status_code == 200, answer.text
    chunk = answer.json()
    assert [line[2] for line in chunk["lines"]] == ["starting", "listening on :3000"]
    assert chunk["start"] is True
    assert chunk["lines"][0][0] < chunk["lines"][1][0]  # cursors sort as text
    last = chunk["lines"][-1][0]

    events = opened(client, path("/api/logs/follow", after=last))
    assert events.response.getheader("Content-Type") == "text/event-stream"
    cluster.add_log("msp", POD, "GET /healthz 200", container="app")
    wait_until(lambda: "GET /healthz 200" in events.texts(), 20, "the live line")
    assert events.texts() == ["GET /healthz 200"]  # nothing the page already had, no sidecar
    assert events.ids[-1] > last

    running.service.logs.close()  # the service stops: the stream ends with a reason
    wait_until(events.done.is_set, 20, "the stream to end")
    assert events.events[-1] == ("end", {"reason": "the service is stopping"})


def test_two_viewers_share_one_upstream_follow_reaped_after_the_last_leaves(
    running: InProcessService, kube_api: KubeApi, opened: Any
) -> None:
    cluster = kube_api.cluster
    cluster.add_log("msp", POD, "boot", container="app")
    first = opened(running.logged_in(), path("/api/logs/follow"))
    second = opened(running.logged_in(), path("/api/logs/follow"))  # another browser
    for viewer in (first, second):
        wait_until(lambda v=viewer: v.texts() == ["boot"], 20, "the tail at each viewer")
    cluster.add_log("msp", POD, "shared line", container="app")
    for viewer in (first, second):
        wait_until(lambda v=viewer: "shared line" in v.texts(), 20, "the live line at each")
    assert (cluster.log_follows, cluster.log_follows_open) == (1, 1)
    assert len(kubectl_follows()) == 1
    hub = running.service.logs
    assert hub.streams() == {("msp", POD, "app"): 2}

    first.close()
    wait_until(lambda: hub.streams() == {("msp", POD, "app"): 1}, 20, "one viewer left")
    cluster.add_log("msp", POD, "still followed", container="app")
    wait_until(lambda: "still followed" in second.texts(), 20, "the line at the viewer left")
    second.close()
    wait_until(lambda: hub.streams() == {}, 20, "the upstream follow stopped")
    wait_until(lambda: cluster.log_follows_open == 0, 20, "kubectl's request ended")
    assert kubectl_follows() == []  # kubectl ended and reaped, no zombie


def test_the_previous_instance_after_a_restart(
    running: InProcessService, kube_api: KubeApi, opened: Any
) -> None:
    cluster = kube_api.cluster
    client = running.logged_in()
    missing = client.get(path("/api/logs", previous="1"))
    assert missing.status_code == 404
    assert "has no previous instance: it has not restarted" in missing.json()["error"]
    cluster.previous_logs[("msp", POD)] = ["panic: database unreachable", "exit status 2"]
    cluster.add_log("msp", POD, "restarted", container="app")
    chunk = client.get(path("/api/logs", previous="1")).json()
    assert [line[2] for line in chunk["lines"]] == ["panic: database unreachable", "exit status 2"]
    assert chunk["previous"] is True
    page = client.get(path("/logs", previous="1"))
    assert page.status_code == 200
    assert "panic: database unreachable" in page.text
    assert "restarted" not in page.text
    assert 'id="log-previous"' in page.text
    refused = opened(client, path("/api/logs/follow", previous="1"))
    assert refused.response.status == 400
    assert "does not change" in refused.body["error"]


def test_older_chunks_load_before_a_cursor_back_to_the_start(
    running: InProcessService, kube_api: KubeApi
) -> None:
    kube_api.cluster.add_log("msp", POD, *(f"line {i}" for i in range(3000)), container="app")
    client = running.logged_in()
    chunk = client.get(path("/api/logs", tail="500")).json()
    assert chunk["lines"][0][2] == "line 2500"
    assert chunk["start"] is False
    seen = [line[2] for line in chunk["lines"]]
    while not chunk["start"]:
        chunk = client.get(path("/api/logs", before=chunk["lines"][0][0], limit="1200")).json()
        assert len(chunk["lines"]) <= 1200
        seen = [line[2] for line in chunk["lines"]] + seen
    assert seen == [f"line {i}" for i in range(3000)]  # whole, in order, nothing twice
    download = client.get(path("/api/logs", format="text", tail="3"))
    assert download.headers["Content-Disposition"] == (f'attachment; filename="msp_{POD}_app.log"')
    assert [line.split(" ", 1)[1] for line in download.text.splitlines()] == [
        "line 2997",
        "line 2998",
        "line 2999",
    ]


def test_a_viewer_that_stops_reading_does_not_stall_another(
    running: InProcessService, kube_api: KubeApi, opened: Any
) -> None:
    cluster = kube_api.cluster
    client = running.logged_in()
    hub = running.service.logs
    key = ("msp", POD, "app")
    fast = opened(client, path("/api/logs/follow"))
    # A viewer that never reads its socket: what the server sends piles up in the buffers.
    stuck = socket.create_connection(("127.0.0.1", int(urlsplit(running.url).port or 0)))
    cookie = "; ".join(f"{c.name}={c.value}" for c in client.http.cookies)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(
        f"GET {path('/api/logs/follow')} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n".encode()
    )
    try:
        wait_until(lambda: hub.streams().get(key) == 2, 20, "both viewers")
        padding = "x" * 300
        total = 0
        for block in range(20):
            lines = [f"line {block * 1000 + i} {padding}" for i in range(1000)]
            cluster.add_log("msp", POD, *lines, container="app")
            total += len(lines)
            # the fast viewer keeps up while the stuck one holds at most its bound
            wait_until(lambda n=total: len(fast.texts()) + missed(fast) >= n, 60, f"{total} lines")
            assert max(hub.backlogs(key)) <= hub.limits.viewer_lines
        texts = fast.texts()
        assert texts[-1] == f"line {total - 1} {padding}"
        assert missed(fast) == 0, "the fast viewer fell behind"
        assert len(texts) == total
        # the stuck viewer is at its bound: it lost its oldest lines, nobody waited for it
        assert max(hub.backlogs(key)) == hub.limits.viewer_lines
    finally:
        stuck.close()


def missed(events: Events) -> int:
    return sum(data["count"] for name, data in list(events.events) if name == "missed")


def test_parameters_are_checked_and_named(
    running: InProcessService, kube_api: KubeApi, opened: Any
) -> None:
    client = running.logged_in()
    bad = client.get("/api/logs?namespace=msp&pod=Not_A_Pod&container=app")
    assert bad.status_code == 400
    assert "DNS-1123 subdomain" in bad.json()["fields"]["pod"]
    foreign = client.get("/api/logs?namespace=kube-system&pod=coredns-1")
    assert foreign.status_code == 400
    assert "add all=1" in foreign.json()["fields"]["namespace"]
    assert client.get("/api/logs?namespace=kube-system&pod=coredns-1&all=1").status_code == 404
    unknown = client.get(path("/api/logs", tial="5"))
    assert unknown.status_code == 400
    assert "unknown parameter tial" in unknown.json()["error"]
    gone = client.get("/api/logs?namespace=msp&pod=ghost-1&container=app")
    assert gone.status_code == 404
    assert "pod 'ghost-1' in namespace 'msp' does not exist" in gone.json()["error"]
    no_container = client.get(path("/api/logs", container="web"))
    assert no_container.status_code == 404
    assert "its containers: app, sidecar" in no_container.json()["error"]
    which = client.get(f"/api/logs?namespace=msp&pod={POD}")
    assert which.status_code == 400
    assert "has containers app, sidecar" in which.json()["fields"]["container"]
    assert client.get(path("/api/logs", before="yesterday")).status_code == 400
    assert client.get(path("/api/logs", tail="0")).status_code == 400
    put_pod(kube_api.cluster, "web-1", "web")
    kube_api.cluster.set_status("pods", "msp", "web-1", {
        "phase": "Pending", "pinned": True,
        "containerStatuses": [
            {"name": "web", "state": {"waiting": {"reason": "ImagePullBackOff"}}}],
    })  # fmt: skip
    waiting = client.get("/api/logs?namespace=msp&pod=web-1&container=web")
    assert waiting.status_code == 409
    assert waiting.json()["error"] == (
        "container 'web' of pod 'web-1' has not started yet (ImagePullBackOff), so it has "
        "logged nothing; the workloads view shows why it waits"
    )
    page = client.get("/logs?namespace=msp&pod=ghost-1&container=app")
    assert page.status_code == 404
    assert "does not exist" in page.text

    hub = running.service.logs
    assert client.http.head(running.url + path("/api/logs/follow"), timeout=10).ok
    assert hub.streams() == {}  # a HEAD follows nothing
    hub.limits = dataclasses.replace(hub.limits, max_follows_per_session=1, max_follows=1)
    first = opened(client, path("/api/logs/follow"))
    assert first.response.status == 200
    refused = opened(running.logged_in(), path("/api/logs/follow"))  # another session
    assert refused.response.status == 503
    assert refused.response.getheader("Retry-After") == "5"
    assert "1 live log streams are open on this appliance" in refused.body["error"]
    # the same session again (a reloaded tab): its old stream ends with the reason
    second = opened(client, path("/api/logs/follow"))
    assert second.response.status == 200
    wait_until(first.done.is_set, 20, "the older stream to end")
    assert "so the oldest stopped" in first.events[-1][1]["reason"]


def test_the_page_shows_the_tail_without_javascript(
    running: InProcessService, kube_api: KubeApi
) -> None:
    kube_api.cluster.add_log("msp", POD, "<script>alert(1)</script>", "ready", container="app")
    client = running.logged_in()
    page = client.get(path("/logs"))
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp
    assert "script-src 'nonce-" in csp
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text  # log text is escaped
    assert "<script>alert(1)" not in page.text
    assert 'id="reload-link"' in page.text
    download = page.text.split('id="download-link"')[0].rsplit('href="', 1)[1].split('"')[0]
    text = client.get(download.replace("&amp;", "&")).text
    assert text.splitlines()[-1].endswith(" ready")
