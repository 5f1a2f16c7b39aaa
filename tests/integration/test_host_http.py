"""Access over real HTTP: every endpoint but /healthz needs a session, CSRF, lockout,
reset-token ending sessions, live progress (server-sent events and long-poll)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from typing import Any

import requests

from host_service.app import PUBLIC, App
from host_service.sessions import Lockout
from tests.fixtures.host_service import (
    PROJECT,
    Client,
    InProcessService,
    ServiceProcess,
    setup_body,
)
from tests.ports import free_port


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


def reset_token(appliance: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "host_service", "reset-token",
         "--root", str(appliance.root), "--settings", str(appliance.settings_file)],
        cwd=PROJECT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_logout_and_reset_token_survive_a_restart(service_process: ServiceProcess) -> None:
    service = service_process
    service.start()
    ended, kept = Client(service.url), Client(service.url)
    for client in (ended, kept):
        assert client.login(service.appliance.token()).status_code == 200
    cookie = ended.http.cookies["appliance_session"]
    assert ended.post("/api/logout").status_code == 200
    service.stop()
    service.start()
    replayed = requests.Session()
    replayed.cookies.set("appliance_session", cookie)
    assert replayed.get(service.url + "/api/status", timeout=10).status_code == 401
    assert kept.get("/api/status").status_code == 200  # only the ended session ended
    revoked = service.appliance.state_dir / "revoked-sessions.json"
    assert revoked.stat().st_mode & 0o777 == 0o600
    assert cookie not in revoked.read_text()
    # reset-token ends every session, also across a restart.
    assert reset_token(service.appliance).returncode == 0
    assert kept.get("/api/status").status_code == 401
    service.stop()
    service.start()
    assert kept.get("/api/status").status_code == 401
    fresh = Client(service.url)
    assert fresh.login(service.appliance.token()).status_code == 200
    assert fresh.get("/api/status").status_code == 200


def test_failed_logins_lockouts_and_resets_are_logged(service_process: ServiceProcess) -> None:
    service = service_process
    service.start()
    assert service.log is not None
    session = Client(service.url)
    assert session.login(service.appliance.token()).status_code == 200
    canary = "CANA-RY00-TOKE-N7Q2-ZZ9X"
    client = Client(service.url)
    for _ in range(4):
        assert client.login(canary).status_code == 401
    assert client.login(canary).status_code == 429  # the fifth: locked out
    assert client.login(canary).status_code == 429  # while locked: not checked, not logged
    assert reset_token(service.appliance).returncode == 0
    assert session.get("/api/status").status_code == 401  # the service notices the reset
    service.stop()
    text = service.log.read_text()
    lines = text.splitlines()
    refused = [line for line in lines if "wrong setup token (" in line]
    assert [re.search(r"\((\d) in a row", line).group(1) for line in refused] == list("1234")
    assert all("login from 127.0.0.1 refused" in line for line in refused)
    (locked,) = [line for line in lines if " locked until " in line]
    assert re.search(
        r"login from 127\.0\.0\.1 locked until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00 \(30 s\) "
        r"after 5 wrong setup tokens in a row",
        locked,
    ), locked
    assert "login from 127.0.0.1" in text
    assert "the session key was replaced (reset-token): every session has ended" in text
    for secret in (canary, canary.replace("-", ""), service.appliance.token()):
        assert secret not in text


def test_editing_the_proxy_keeps_its_credentials(service_process: ServiceProcess) -> None:
    service = service_process
    service.start()
    client = Client(service.url)
    assert client.login(service.appliance.token()).status_code == 200
    inputs = service.appliance.state_dir / "setup-inputs.json"

    def stored_proxy() -> str:
        return str(json.loads(inputs.read_text())["proxy"])

    # Nothing listens on the proxy's port: every run stops at preflight.
    proxy = f"127.0.0.1:{free_port()}"
    body = setup_body(proxy=f"http://ops:pw%2Fsecret@{proxy}")
    assert client.post("/api/setup", body).status_code == 202
    client.wait_phase("blocked", "reconciled")

    def submit_form(**fields: str) -> requests.Response:
        page = client.get("/setup")
        assert page.status_code == 200
        assert "pw%2Fsecret" not in page.text
        assert "pw/secret" not in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "app_url": "https://psa.example.com", "channel": "stable"}
        response = client.http.post(
            service.url + "/setup", data={**form, **fields}, allow_redirects=False, timeout=10
        )
        if response.status_code == 303:
            client.wait_phase("blocked", "reconciled")
        return response

    # The form shows the user name; sent back with only the port changed, the password stays.
    page = client.get("/setup").text
    assert f'value="http://ops@{proxy}"' in page
    assert "one is stored: leave empty to keep it" in page
    moved = f"127.0.0.1:{free_port()}"
    assert submit_form(proxy=f"http://ops@{moved}", proxy_password="").status_code == 303
    assert stored_proxy() == f"http://ops:pw%2Fsecret@{moved}"
    # A password typed into its own field replaces the stored one.
    assert submit_form(proxy=f"http://ops@{moved}", proxy_password="n3w:p@ss").status_code == 303
    assert stored_proxy() == f"http://ops:n3w%3Ap%40ss@{moved}"
    # The stored password is not sent to another host unasked.
    refused = submit_form(proxy=f"http://ops@localhost:{moved.split(':')[1]}")
    assert refused.status_code == 400
    assert "proxy host changed" in refused.text
    assert "n3w" not in refused.text
    assert stored_proxy() == f"http://ops:n3w%3Ap%40ss@{moved}"
    # Removing it is explicit.
    assert submit_form(proxy=f"http://ops@{moved}", proxy_password_clear="1").status_code == 303
    assert stored_proxy() == f"http://ops@{moved}"
    assert "Remove the stored password" not in client.get("/setup").text

    # The JSON API: the same rules.
    body = setup_body(proxy=f"http://ops@{moved}", proxy_password="api-pw")
    assert client.post("/api/setup", body).status_code == 202
    client.wait_phase("blocked", "reconciled")
    shown = client.get("/api/setup").json()["setup"]
    assert shown["proxy"] == f"http://ops@{moved}"
    assert shown["proxy_password_set"] is True
    assert "api-pw" not in client.get("/api/setup").text
    assert client.post("/api/setup", setup_body(proxy=f"http://ops@{proxy}")).status_code == 202
    client.wait_phase("blocked", "reconciled")
    assert stored_proxy() == f"http://ops:api-pw@{proxy}"
    answer = client.post("/api/setup", setup_body(proxy=f"http://ops@[::1]:{moved.split(':')[1]}"))
    assert answer.status_code == 400
    assert "proxy host changed" in answer.json()["fields"]["proxy_password"]
    body = setup_body(proxy=f"http://ops@{proxy}", proxy_password_clear=True)
    assert client.post("/api/setup", body).status_code == 202
    client.wait_phase("blocked", "reconciled")
    assert stored_proxy() == f"http://ops@{proxy}"
