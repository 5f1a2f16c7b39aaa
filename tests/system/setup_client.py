"""The technician's side of the setup service, over real HTTP from the test runner.

Speaks the documented JSON API: ``POST /api/login`` (token → session cookie + CSRF token),
``POST /api/setup``, and ``GET /api/status?wait=VERSION`` long-polls while the bootstrap runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.waiting import WaitTimedOut, wait_until

CSRF_HEADER = "X-CSRF-Token"
LONG_POLL_SECONDS = 25


class SetupApiError(Exception):
    """The service answered something other than what the flow expects."""


@dataclass
class SetupClient:
    base_url: str
    session: requests.Session = field(default_factory=requests.Session)
    csrf: str | None = None
    seen: list[dict[str, Any]] = field(default_factory=list)

    def _url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def healthz(self) -> requests.Response:
        return requests.get(self._url("/healthz"), timeout=10)

    def wait_healthy(self, *, timeout: float) -> int:
        """Poll /healthz until it answers 200 (the service binds after systemd started it)."""
        code = 0

        def healthy() -> bool:
            nonlocal code
            try:
                code = self.healthz().status_code
            except requests.RequestException:
                code = 0
            return code == 200

        with contextlib.suppress(WaitTimedOut):  # the caller reports the last answer
            wait_until(healthy, timeout, "/healthz", interval=1)
        return code

    def login(self, token: str) -> None:
        answer = self.session.post(self._url("/api/login"), json={"token": token}, timeout=30)
        if answer.status_code != 200:
            raise SetupApiError(f"login: HTTP {answer.status_code}: {answer.text[:300]}")
        self.csrf = answer.json()["csrf"]

    def _headers(self) -> dict[str, str]:
        return {CSRF_HEADER: self.csrf} if self.csrf else {}

    def submit_setup(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        answer = self.session.post(
            self._url("/api/setup"), json=dict(inputs), headers=self._headers(), timeout=30
        )
        if answer.status_code != 202:
            raise SetupApiError(f"setup: HTTP {answer.status_code}: {answer.text[:500]}")
        result: dict[str, Any] = answer.json()
        return result

    def retry(self) -> requests.Response:
        return self.session.post(self._url("/api/retry"), headers=self._headers(), timeout=30)

    def status(self, *, wait_after: int | None = None) -> dict[str, Any]:
        params = {} if wait_after is None else {"wait": wait_after, "timeout": LONG_POLL_SECONDS}
        answer = self.session.get(
            self._url("/api/status"), params=params, timeout=LONG_POLL_SECONDS + 30
        )
        if answer.status_code != 200:
            raise SetupApiError(f"status: HTTP {answer.status_code}: {answer.text[:300]}")
        status: dict[str, Any] = answer.json()
        return status

    def watch(self, until: Callable[[dict[str, Any]], bool], *, timeout: float) -> dict[str, Any]:
        """Follow the status by long-poll until ``until(status)``; every version is kept."""
        status = self.status()
        self.seen.append(status)

        def next_version(_left: float) -> None:
            nonlocal status
            status = self.status(wait_after=int(status["version"]))
            self.seen.append(status)

        wait_until(
            lambda: until(status),
            timeout,
            lambda: (
                f"the expected status; last: phase={status.get('phase')} "
                f"current={status.get('current_step')} blocker={status.get('blocker')}"
            ),
            pause=next_version,
        )
        return status


def settled(status: Mapping[str, Any]) -> bool:
    """The bootstrap stopped: blocked at a step, or reconciled."""
    return status.get("phase") in ("blocked", "reconciled") and not status.get("running")


def step_states(status: Mapping[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for s in status.get("steps", [])}
