"""The WSGI app, called directly: access policy, CSRF, typed 400s, limits, pages."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from host_service.app import PUBLIC, App
from host_service.service import Service
from host_service.sessions import Lockout
from host_service.settings import default_settings
from tests.unit.test_host_worker import Script, runtime


class Answer:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.code = int(status.split()[0])
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def cookies(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie"]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class Browser:
    """Calls the app like a browser would, keeping cookies."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.jar: dict[str, str] = {}
        self.client = "192.0.2.50"

    def call(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str = "",
        headers: dict[str, str] | None = None,
    ) -> Answer:
        path, _, query = path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
            "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": content_type,
            "REMOTE_ADDR": self.client, "wsgi.input": io.BytesIO(body),
            "HTTP_COOKIE": "; ".join(f"{k}={v}" for k, v in self.jar.items()),
        }  # fmt: skip
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            captured["status"], captured["headers"] = status, headers

        chunks = self.app(environ, start_response)
        answer = Answer(captured["status"], captured["headers"], b"".join(chunks))
        for cookie in answer.cookies():
            name, _, rest = cookie.partition("=")
            value = rest.split(";")[0]
            if "Max-Age=0" in cookie:
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return answer

    def json(self, method: str, path: str, data: Any = None, csrf: str | None = None) -> Answer:
        headers = {"X-CSRF-Token": csrf} if csrf else {}
        return self.call(method, path, json.dumps(data or {}).encode(), "application/json", headers)

    def form(self, path: str, fields: dict[str, str]) -> Answer:
        return self.call(
            "POST", path, urlencode(fields).encode(), "application/x-www-form-urlencoded"
        )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    settings = default_settings(tmp_path)
    service = Service(
        settings,
        runtime(),
        implementations=Script().implementations(),
        lockout=Lockout(free=3, base=30),
    )
    service.start()
    yield service
    service.stop()


def login(browser: Browser, service: Service) -> str:
    answer = browser.json("POST", "/api/login", {"token": service.token()})
    assert answer.code == 200
    csrf: str = answer.json()["csrf"]
    return csrf


def test_every_route_but_health_and_login_needs_a_session(service: Service) -> None:
    app = App(service)
    browser = Browser(app)
    for route in app.router.routes:
        if route.name in PUBLIC:
            continue
        answer = browser.call(route.method, route.path)
        if route.path.startswith("/api/"):
            assert answer.code == 401, route
            assert "login required" in answer.json()["error"]
        else:
            assert (answer.code, answer.header("Location")) == (303, "/login"), route
    assert browser.call("GET", "/healthz").code == 200


def test_session_cookie_flags_and_security_headers(service: Service) -> None:
    browser = Browser(App(service))
    answer = browser.json("POST", "/api/login", {"token": service.token()})
    [cookie] = [c for c in answer.cookies() if c.startswith("appliance_session=")]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Max-Age=28800" in cookie
    assert answer.header("X-Frame-Options") == "DENY"
    assert answer.header("Cache-Control") == "no-store"
    assert "frame-ancestors 'none'" in (answer.header("Content-Security-Policy") or "")


def test_login_refuses_wrong_tokens_then_locks_out(service: Service) -> None:
    browser = Browser(App(service))
    for _ in range(2):
        answer = browser.json("POST", "/api/login", {"token": "AAAA-BBBB-CCCC-DDDD-EEEE"})
        assert answer.code == 401
        assert answer.json()["fields"] == {"token": "does not match the token on the console"}
    answer = browser.json("POST", "/api/login", {"token": "nope"})
    assert answer.code == 429
    assert answer.header("Retry-After") == "30"
    # Locked out: even the right token is refused until the wait is over.
    answer = browser.json("POST", "/api/login", {"token": service.token()})
    assert answer.code == 429
    other = Browser(App(service))
    other.client = "192.0.2.51"
    assert other.json("POST", "/api/login", {"token": service.token()}).code == 200


def test_login_api_wants_json_and_known_fields(service: Service) -> None:
    browser = Browser(App(service))
    answer = browser.call("POST", "/api/login", b"token=x", "application/x-www-form-urlencoded")
    assert answer.code == 415
    answer = browser.json("POST", "/api/login", {"token": "x", "user": "admin"})
    assert answer.code == 400
    assert answer.json()["fields"] == {"user": "unknown field"}
    assert browser.json("POST", "/api/login", {}).json()["fields"] == {
        "token": "required: a string"}  # fmt: skip


def test_state_changes_need_the_csrf_token(service: Service) -> None:
    browser = Browser(App(service))
    csrf = login(browser, service)
    body = {"app_url": "https://psa.example.com"}
    assert browser.json("POST", "/api/setup", body).code == 403
    assert browser.json("POST", "/api/setup", body, csrf="wrong").code == 403
    assert browser.json("POST", "/api/setup", body, csrf=csrf).code == 202
    assert browser.form("/retry", {}).code == 403  # a form without the csrf field
    assert browser.json("GET", "/api/status").code == 200  # reads need no token


def test_setup_errors_name_the_field(service: Service) -> None:
    browser = Browser(App(service))
    csrf = login(browser, service)
    answer = browser.json("POST", "/api/setup", {"app_url": "nope", "channel": "X!"}, csrf=csrf)
    assert answer.code == 400
    assert set(answer.json()["fields"]) == {"app_url", "channel"}


def test_limits_and_unknown_routes(service: Service) -> None:
    browser = Browser(App(service))
    csrf = login(browser, service)
    big = {"app_url": "https://a.example.com", "no_proxy": "x" * 20000}
    assert browser.json("POST", "/api/setup", big, csrf=csrf).code == 413
    assert browser.call("GET", "/nope").code == 404
    answer = browser.call("DELETE", "/api/setup")
    assert answer.code == 405
    assert answer.header("Allow") == "GET, POST"
    assert browser.call("GET", "/api/status?wait=x").code == 400


def test_form_login_needs_the_nonce_from_the_login_page(service: Service) -> None:
    browser = Browser(App(service))
    answer = browser.form("/login", {"token": service.token(), "nonce": "forged"})
    assert answer.code == 403  # no nonce cookie: a cross-site form post
    page = browser.call("GET", "/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce is not None
    answer = browser.form("/login", {"token": "WRONG", "nonce": nonce.group(1)})
    assert answer.code == 401
    assert "wrong setup token" in answer.text
    nonce = re.search(r'name="nonce" value="([^"]+)"', answer.text)  # the page renews it
    assert nonce is not None
    answer = browser.form("/login", {"token": service.token(), "nonce": nonce.group(1)})
    assert (answer.code, answer.header("Location")) == (303, "/")
    assert "appliance_session" in browser.jar


def test_pages_work_without_javascript(service: Service) -> None:
    browser = Browser(App(service))
    login(browser, service)
    assert browser.call("GET", "/").header("Location") == "/setup"
    setup = browser.call("GET", "/setup")
    assert setup.code == 200
    assert 'name="app_url"' in setup.text
    assert 'name="csrf"' in setup.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', setup.text)
    assert csrf is not None
    bad = browser.form("/setup", {"csrf": csrf.group(1), "app_url": "ftp://x"})
    assert bad.code == 400
    assert 'data-field="app_url"' in bad.text
    good = browser.form(
        "/setup", {"csrf": csrf.group(1), "app_url": "https://psa.example.com", "channel": "stable"}
    )
    assert (good.code, good.header("Location")) == (303, "/status")
    status = browser.call("GET", "/status")
    assert '<a href="/status" id="refresh">Refresh</a>' in status.text  # the no-JS reload
    assert 'id="step-preflight"' in status.text
    assert 'id="step-reconcile"' in status.text
    nonce = re.search(r"style-src 'nonce-([^']+)'", status.header("Content-Security-Policy") or "")
    assert nonce is not None
    assert f'<script nonce="{nonce.group(1)}">' in status.text


@pytest.mark.parametrize(
    ("proxy", "shown"),
    [
        # refused for another reason (no scheme; an unclosed bracket; a path): the page shows
        # the field again, without the password
        ("ops:Hunter2Canary@proxy.example.com:3128", "ops@proxy.example.com:3128"),
        ("http://ops:Hunter2Canary@[::1", "http://ops@[::1"),
        ("http://ops:Hunter2Canary@proxy.example.com:3128/x", "http://ops@proxy.example.com:3128/x"),
        ("http://ops:Hunter2@Canary@proxy.example.com:3128/x",
         "http://ops@proxy.example.com:3128/x"),
        ("http://ops:Hunter2/Canary@proxy.example.com/x", "http://ops@proxy.example.com/x"),
    ],
)  # fmt: skip
def test_a_refused_proxy_is_shown_again_without_its_password(
    service: Service, proxy: str, shown: str
) -> None:
    browser = Browser(App(service))
    login(browser, service)
    page = browser.call("GET", "/setup")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    answer = browser.form(
        "/setup", {"csrf": csrf.group(1), "app_url": "https://psa.example.com", "proxy": proxy}
    )
    assert answer.code == 400
    assert 'data-field="proxy"' in answer.text
    assert "Hunter2" not in answer.text
    assert "Canary" not in answer.text
    assert f'name="proxy" value="{shown}"' in answer.text.replace("&#34;", '"')


@pytest.mark.parametrize(
    "damage", [b"XXXX\n", b"\xff\xfe\x00garbage", b"UUUU-UUUU-UUUU-UUUU-UUUU\n"]
)
def test_a_damaged_token_is_replaced_and_the_console_shows_the_new_one_at_once(
    service: Service, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    # The console went on showing the old token until the banner timer ran again, and a
    # token file that was not ASCII failed every login (a 500).
    token_file = service.settings.paths.token_file
    old = service.token()
    assert old in service.settings.paths.issue.read_text()
    token_file.write_bytes(damage)
    browser = Browser(App(service))
    answer = browser.json("POST", "/api/login", {"token": damage.decode(errors="replace")})
    assert answer.code == 401
    new = token_file.read_text().strip()
    assert new != old
    assert token_file.stat().st_mode & 0o777 == 0o600
    issue = service.settings.paths.issue.read_text()
    assert new in issue
    assert old not in issue
    assert f"{token_file}: damaged; replaced by a new setup token" in caplog.text
    assert new not in caplog.text  # the token is shown on the console only
    assert browser.json("POST", "/api/login", {"token": new}).code == 200
