"""Who may do what: the token login with lockout, the session cookie, CSRF on every change."""

from __future__ import annotations

import math

from host_service import setup_token
from host_service.service import Service
from host_service.sessions import COOKIE, Session, same_secret
from host_service.wsgi import HttpError, Request, Response

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
        wait = lockout.wait_seconds(request.client)
        if wait > 0:
            raise _locked(wait)
        if not typed or not setup_token.matches(typed, self.service.token()):
            delay = lockout.failed(request.client)
            if delay > 0:
                raise _locked(delay)
            raise HttpError(
                401,
                "wrong setup token: use the token shown on the appliance's console",
                fields={"token": "does not match the token on the console"},
            )
        lockout.succeeded(request.client)
        return self.service.sessions.issue()

    def set_session_cookie(self, response: Response, cookie: str) -> None:
        response.set_cookie(COOKIE, cookie, max_age=int(self.service.sessions.lifetime))

    def logout(self, request: Request, response: Response) -> None:
        session = self.session(request)
        if session is not None:
            self.service.sessions.revoke(session)
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
