"""Who may do what: the token login with lockout, the session cookie, CSRF on every change."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime

from host_service import setup_token
from host_service.service import Service
from host_service.sessions import COOKIE, Session, same_secret
from host_service.wsgi import HttpError, Request, Response

log = logging.getLogger(__name__)

PRELOGIN_COOKIE = "appliance_login"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"


class Auth:
    def __init__(self, service: Service) -> None:
        self.service = service

    def session(self, request: Request) -> Session | None:
        return self.service.sessions.verify(request.cookies.get(COOKIE))

    def check_csrf(self, request: Request, session: Session, *, form: bool) -> None:
        presented = request.header(CSRF_HEADER)
        if presented is None and form:
            presented = request.form().get(CSRF_FIELD)
        if not self.service.sessions.csrf_ok(session, presented):
            raise HttpError(403, "missing or wrong CSRF token; reload the page and try again")

    def login(self, request: Request, typed: str) -> tuple[Session, str]:
        """Check the token with per-client lockout; the session and its cookie value."""
        lockout = self.service.lockout
        client = request.client
        wait = lockout.wait_seconds(client)
        if wait > 0:
            # Not logged: the lockout was, and a client hammering it would flood the log.
            raise _locked(wait)
        # What was typed is never logged: it may be the token with a typo.
        if not typed or not setup_token.matches(typed, self.service.token()):
            delay = lockout.failed(client)
            count = lockout.failures(client)
            if delay > 0:
                until = datetime.fromtimestamp(self.service.clock() + delay, UTC)
                log.warning(
                    "login from %s locked until %s (%d s) after %d wrong setup tokens in a row",
                    client, until.isoformat(timespec="seconds"), math.ceil(delay), count,
                )  # fmt: skip
                raise _locked(delay)
            log.warning(
                "login from %s refused: wrong setup token (%d in a row; lockout at %d)",
                client, count, lockout.free,
            )  # fmt: skip
            raise HttpError(
                401,
                "wrong setup token: use the token shown on the appliance's console",
                fields={"token": "does not match the token on the console"},
            )
        failed = lockout.failures(client)
        lockout.succeeded(client)
        log.info("login from %s%s", client, f" after {failed} wrong tokens" if failed else "")
        return self.service.sessions.issue()

    def set_session_cookie(self, response: Response, cookie: str) -> None:
        response.set_cookie(COOKIE, cookie, max_age=int(self.service.sessions.lifetime))

    def logout(self, request: Request, response: Response) -> None:
        session = self.session(request)
        if session is not None:
            self.service.sessions.revoke(session)
            log.info("logout from %s", request.client)
        response.clear_cookie(COOKIE)

    # -- login CSRF for the HTML form: a nonce in a cookie and in the form must agree --------

    @staticmethod
    def set_prelogin(response: Response, nonce: str) -> None:
        response.set_cookie(PRELOGIN_COOKIE, nonce, max_age=3600)

    @staticmethod
    def check_prelogin(request: Request, presented: str | None) -> None:
        expected = request.cookies.get(PRELOGIN_COOKIE)
        if not expected or not presented or not same_secret(expected, presented):
            raise HttpError(403, "the login form expired; reload the page and try again")


def _locked(seconds: float) -> HttpError:
    wait = max(1, math.ceil(seconds))
    return HttpError(
        429,
        f"too many wrong tokens from this address; try again in {wait} s",
        headers=[("Retry-After", str(wait))],
    )
