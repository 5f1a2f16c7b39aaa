"""Access over real HTTP: every endpoint but /healthz needs a session, CSRF, lockout,
reset-token ending sessions, live progress (server-sent events and long-poll)."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from typing import Any

import requests

from host_service.app import PUBLIC, App
from host_service.sessions import Lockout
from tests.fixtures.host_service import PROJECT, Client, InProcessService, setup_body


def test_every_endpoint_refuses_without_a_session(start_service: Any) -> None:
    running: InProcessService = start_service()
    anonymous = requests.Session()
    routes = App(running.service).router.routes
    assert len(routes) >= 15
    for route in routes:
        response = anonymous.request(
            route.method, running.url + route.path, allow_redirects=False, timeout=10
        )
        if route.name in PUBLIC:
            assert response.status_code != 401, route
        elif route.path.startswith("/api/"):
            assert response.status_code == 401, route
        else:
            assert response.status_code == 303, route
            assert response.headers["Location"] == "/login"
    assert anonymous.get(running.url + "/healthz", timeout=10).json() == {"ok": True}
    # A forged cookie is no session either.
    anonymous.cookies.set("appliance_session", "eyJzaWQiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.AAAA")
    assert anonymous.get(running.url + "/api/status", timeout=10).status_code == 401


def test_csrf_is_required_for_changes(start_service: Any) -> None:
    running: InProcessService = start_service()
    client = running.logged_in()
    csrf = client.csrf
    client.csrf = ""
    assert client.post("/api/setup", setup_body()).status_code == 403
    assert client.post("/api/retry").status_code == 403
    response = client.http.post(
        running.url + "/setup",
        data={"app_url": "https://x.example"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 403
    client.csrf = csrf
    assert client.post("/api/retry").status_code == 409  # allowed through, nothing to retry


def test_lockout_after_wrong_tokens(start_service: Any) -> None:
    running: InProcessService = start_service(lockout=Lockout(free=3, base=60))
    client = running.client()
    assert client.login("AAAA-BBBB-CCCC-DDDD-EEEE").status_code == 401
    assert client.login("AAAA-BBBB-CCCC-DDDD-EEEE").status_code == 401
    locked = client.login("AAAA-BBBB-CCCC-DDDD-EEEE")
    assert locked.status_code == 429
    assert locked.headers["Retry-After"] == "60"
    assert "try again in 60 s" in locked.json()["error"]
    assert client.login(running.appliance.token()).status_code == 429


def test_reset_token_ends_every_session(start_service: Any) -> None:
    running: InProcessService = start_service()
    client = running.logged_in()
    old_token = running.appliance.token()
    assert client.get("/api/status").status_code == 200
    result = subprocess.run(
        [sys.executable, "-m", "host_service", "reset-token",
         "--root", str(running.appliance.root), "--settings",
         str(running.appliance.settings_file)],
        cwd=PROJECT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    new_token = running.appliance.token()
    assert new_token != old_token
    assert new_token not in result.stdout + result.stderr  # only the console shows it
    assert "every session has ended" in result.stdout
    assert client.get("/api/status").status_code == 401
    assert running.client().login(old_token).status_code == 401
    issue = (running.appliance.root / "etc/issue").read_text()
    assert f"Setup token:  {new_token}" in issue
    assert old_token not in issue
    assert running.client().login(new_token).status_code == 200
    token_file = running.appliance.state_dir / "setup-token"
    assert token_file.stat().st_mode & 0o777 == 0o600


def test_logout(start_service: Any) -> None:
    running: InProcessService = start_service()
    client = running.logged_in()
    assert client.post("/api/logout").status_code == 200
    assert client.get("/api/status").status_code == 401


def test_server_sent_events_follow_progress(start_service: Any, published_release: Any) -> None:
    running: InProcessService = start_service()
    client = running.logged_in()
    events: list[tuple[int, str]] = []
    subscribed = threading.Event()
    done = threading.Event()

    def listen() -> None:
        with client.http.get(running.url + "/api/events", stream=True, timeout=60) as stream:
            assert stream.headers["Content-Type"] == "text/event-stream"
            ident = 0
            # chunk_size=1: the default buffers 512 bytes, which holds back the last event.
            for line in stream.iter_lines(chunk_size=1, decode_unicode=True):
                if line.startswith("id: "):
                    ident = int(line[4:])
                elif line.startswith("data: "):
                    phase = re.search(r'"phase": "([a-z-]+)"', line)
                    events.append((ident, phase.group(1) if phase else "?"))
                    subscribed.set()
                    if phase and phase.group(1) == "reconciled":
                        done.set()
                        return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    # Setup starts only once the stream has delivered its first event: none is missed.
    assert subscribed.wait(30), "no event from /api/events"
    assert client.post("/api/setup", setup_body()).status_code == 202
    assert done.wait(120), events[-3:]
    ids = [i for i, _ in events]
    assert ids == sorted(ids)
    assert len(ids) > 10
    assert events[0][1] == "awaiting-setup"
    assert events[-1][1] == "reconciled"


def test_long_poll_returns_on_change(start_service: Any, monkeypatch: Any) -> None:
    running: InProcessService = start_service()
    client: Client = running.logged_in()
    # The state keeper, telling the test when a request waits on it and for how long.
    keeper = running.service.state_keeper
    waits: list[float] = []
    waiting = threading.Event()
    wait_for_change = keeper.wait_for_change

    def recording(version: int, timeout: float) -> tuple[int, Any]:
        waits.append(timeout)
        waiting.set()
        return wait_for_change(version, timeout)

    monkeypatch.setattr(keeper, "wait_for_change", recording)
    version = client.status()["version"]
    unchanged = client.get(f"/api/status?wait={version}&timeout=0.5").json()
    assert unchanged["version"] == version
    assert waits == [0.5]  # it waited for a change, as long as asked, and none came

    waiting.clear()
    answers: list[dict[str, Any]] = []
    poller = running.logged_in()
    poll = threading.Thread(
        target=lambda: answers.append(poller.get(f"/api/status?wait={version}&timeout=20").json())
    )
    poll.start()
    assert waiting.wait(20), "the long-poll never waited"
    assert client.post("/api/setup", setup_body(channel="nightly")).status_code == 202
    poll.join(30)
    assert answers, "the long-poll did not return on the change"
    assert answers[0]["version"] > version
