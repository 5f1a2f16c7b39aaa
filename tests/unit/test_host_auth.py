"""Login, lockout, logout and CSRF through the WSGI app: the exact answers, cookies and log
lines, on a lockout clock the test moves."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from host_service.app import App
from host_service.service import Service
from host_service.sessions import Lockout
from host_service.settings import default_settings
from tests.unit.test_host_app import Browser, login
from tests.unit.test_host_worker import Script, runtime

WRONG = "AAAA-BBBB-CCCC-DDDD-EEEE"
NOW = 1_800_000_000.0  # the service's wall clock: 2027-01-15T08:00:00Z


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(tmp_path: Path, clock: Clock) -> Iterator[Service]:
    service = Service(
        default_settings(tmp_path),
        runtime(),
        implementations=Script().implementations(),
        lockout=Lockout(free=2, base=0.4, clock=clock),
        clock=lambda: NOW,
    )
    service.start()
    yield service
    service.stop()


def test_a_lockout_under_a_second_still_says_one_second(service: Service, clock: Clock) -> None:
    browser = Browser(App(service))
    assert browser.json("POST", "/api/login", {"token": WRONG}).code == 401
    answer = browser.json("POST", "/api/login", {"token": WRONG})
    assert answer.code == 429
    assert answer.json()["error"] == "too many wrong tokens from this address; try again in 1 s"
    assert ("Retry-After", "1") in answer.headers
    clock.now += 0.3  # 0.1 s of the lockout left: the right token still waits
    answer = browser.json("POST", "/api/login", {"token": service.token()})
    assert answer.code == 429
    assert ("Retry-After", "1") in answer.headers
    clock.now += 0.2
    assert browser.json("POST", "/api/login", {"token": service.token()}).code == 200


def test_login_logs_say_who_how_often_and_when_the_lockout_starts(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    browser = Browser(App(service))
    with caplog.at_level(logging.INFO, logger="host_service.auth"):
        browser.json("POST", "/api/login", {"token": WRONG})
        browser.json("POST", "/api/login", {"token": WRONG})
    assert caplog.messages[0] == (
        "login from 192.0.2.50 refused: wrong setup token (1 in a row; lockout at 2)"
    )
    assert caplog.messages[1] == (
        "login from 192.0.2.50 locked until 2027-01-15T08:00:00+00:00 (1 s) after 2 wrong "
        "setup tokens in a row"
    )
    assert WRONG not in caplog.text


def test_logout_ends_the_session_and_clears_its_cookie(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    browser = Browser(App(service))
    csrf = login(browser, service)
    cookie = browser.jar["appliance_session"]
    caplog.clear()  # the login's own line, kept when an earlier test left INFO enabled
    with caplog.at_level(logging.INFO, logger="host_service.auth"):
        answer = browser.json("POST", "/api/logout", csrf=csrf)
    assert answer.code in (200, 204)
    assert any(c.startswith("appliance_session=;") and "Max-Age=0" in c for c in answer.cookies())
    assert caplog.messages == ["logout from 192.0.2.50"]
    # The old cookie is dead even if a client kept it.
    browser.jar["appliance_session"] = cookie
    assert browser.json("GET", "/api/status").code == 401


def test_the_logout_form_ends_the_session(service: Service) -> None:
    browser = Browser(App(service))
    csrf = login(browser, service)
    cookie = browser.jar["appliance_session"]
    answer = browser.form("/logout", {"csrf": csrf})
    assert answer.code == 303
    browser.jar["appliance_session"] = cookie
    assert browser.json("GET", "/api/status").code == 401


def test_a_missing_or_wrong_csrf_token_is_refused_with_what_to_do(service: Service) -> None:
    browser = Browser(App(service))
    login(browser, service)
    for csrf in (None, "wrong"):
        answer = browser.json("POST", "/api/setup", {"app_url": "https://a.example"}, csrf=csrf)
        assert answer.code == 403
        assert answer.json()["error"] == (
            "missing or wrong CSRF token; reload the page and try again"
        )


def test_the_login_page_nonce_lives_an_hour_and_must_match(service: Service) -> None:
    browser = Browser(App(service))
    page = browser.call("GET", "/login")
    [cookie] = [c for c in page.cookies() if c.startswith("appliance_login=")]
    assert "Max-Age=3600" in cookie
    answer = browser.form("/login", {"token": service.token(), "nonce": "forged"})
    assert answer.code == 403
    assert (
        '<p class="error" role="alert">the login form expired; reload the page and try again</p>'
        in answer.text
    )
    answer = browser.form("/login", {"token": service.token()})
    assert answer.code == 403
    assert "appliance_session" not in browser.jar


def test_a_login_after_wrong_tokens_says_how_many_and_starts_afresh(
    service: Service, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    browser = Browser(App(service))
    answer = browser.json("POST", "/api/login", {"token": WRONG})
    assert answer.json()["error"] == (
        "wrong setup token: use the token shown on the appliance's console"
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="host_service.auth"):
        assert browser.json("POST", "/api/login", {"token": service.token()}).code == 200
        assert browser.json("POST", "/api/login", {"token": service.token()}).code == 200
        browser.json("POST", "/api/login", {"token": WRONG})
    assert caplog.messages == [
        "login from 192.0.2.50 after 1 wrong tokens",
        "login from 192.0.2.50",
        "login from 192.0.2.50 refused: wrong setup token (1 in a row; lockout at 2)",
    ]
