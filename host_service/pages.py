"""Server-rendered pages (jinja2) that work without JavaScript: the renderer every page uses,
login and setup (status and workloads: ``operate/http.py``; updates: ``update/http.py``)."""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path
from typing import Any

import jinja2

from host_service.auth import CSRF_FIELD, PRELOGIN_COOKIE, Auth
from host_service.intent import InputErrors, parse_setup
from host_service.service import Conflict, Service
from host_service.store import StateWriteFailed
from host_service.wsgi import HttpError, Request, Response, new_nonce

TEMPLATES = Path(__file__).resolve().parent / "templates"
SETUP_FIELDS = ("app_url", "channel", "release", "proxy", "no_proxy")
STATIC = Path(__file__).resolve().parent / "static"


class Pages:
    def __init__(self, service: Service, auth: Auth) -> None:
        self.service = service
        self.auth = auth
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
        )
        # Inlined under the page's CSP nonce: no unauthenticated static route is needed.
        self.css = (STATIC / "app.css").read_text(encoding="utf-8")

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        nonce = new_nonce()
        session = context.pop("session", None)
        text = self.env.get_template(template).render(
            nonce=nonce,
            css=self.css,
            csrf=session.csrf if session else "",
            csrf_field=CSRF_FIELD,
            logged_in=session is not None,
            build=self.service.settings.build,
            standin=self.service.settings.standin,
            **context,
        )
        return Response.html(text, status, nonce=nonce)

    # -- routes ------------------------------------------------------------------------

    def index(self, request: Request) -> Response:
        return Response.redirect("/status" if self.service.intents.load() else "/setup")

    def login_form(self, request: Request) -> Response:
        if self.auth.session(request) is not None:
            return Response.redirect("/")
        return self._login_page(request, error=None, status=200)

    def _login_page(self, request: Request, *, error: str | None, status: int) -> Response:
        # The same nonce goes into a cookie and the form; a cross-site form cannot know it.
        nonce = secrets.token_urlsafe(18)
        page = self.render("login.html", status, error=error, nonce_value=nonce)
        Auth.set_prelogin(page, nonce)
        return page

    def login(self, request: Request) -> Response:
        form = request.form()
        Auth.check_prelogin(request, form.get("nonce"))
        try:
            _, cookie = self.auth.login(request, form.get("token", ""))
        except HttpError as exc:
            page = self._login_page(request, error=exc.message, status=exc.status)
            page.headers.extend(exc.headers)
            return page
        response = Response.redirect("/")
        self.auth.set_session_cookie(response, cookie)
        response.clear_cookie(PRELOGIN_COOKIE)
        return response

    def logout(self, request: Request) -> Response:
        response = Response.redirect("/login")
        self.auth.logout(request, response)
        return response

    def setup_form(self, request: Request) -> Response:
        intent = self.service.intents.load()
        values = intent.public() if intent else {}
        form = {
            "app_url": values.get("app_url") or "",
            "channel": values.get("channel") or "",
            "release": values.get("release") or "",
            "proxy": values.get("proxy") or "",  # with the user name, without the password
            "no_proxy": ", ".join(values.get("no_proxy") or []),
        }
        return self._setup_page(request, form, errors={}, status=200)

    def _setup_page(
        self, request: Request, form: dict[str, str], *, errors: dict[str, str], status: int
    ) -> Response:
        view = self.service.status()
        stored = self.service.intents.load()
        return self.render(
            "setup.html",
            status,
            session=request.session,
            form=form,
            errors=errors,
            default_channel=self.service.settings.registry.default_channel,
            running=view["running"],
            proxy_password_set=bool(stored and stored.public()["proxy_password_set"]),
        )

    def setup(self, request: Request) -> Response:
        form = request.form()
        fields = {k: form.get(k, "") for k in SETUP_FIELDS}
        data: dict[str, object] = {k: v for k, v in fields.items() if v.strip()}
        # The password field is never filled in: empty keeps the stored password.
        if form.get("proxy_password"):
            data["proxy_password"] = form["proxy_password"]
        if form.get("proxy_password_clear"):
            data["proxy_password_clear"] = True
        # What the operator typed comes back on an error page, a password in the URL not.
        fields["proxy"] = _without_password(fields["proxy"])
        try:
            intent = parse_setup(
                data,
                default_channel=self.service.settings.registry.default_channel,
                stored=self.service.intents.load(),
            )
            self.service.submit_setup(intent)
        except InputErrors as exc:
            return self._setup_page(request, fields, errors=exc.errors, status=400)
        except Conflict as exc:
            return self._setup_page(request, fields, errors={"_": str(exc)}, status=409)
        except StateWriteFailed as exc:
            return self._setup_page(request, fields, errors={"_": str(exc)}, status=503)
        return Response.redirect("/status")

    def retry(self, request: Request) -> Response:
        with contextlib.suppress(Conflict, StateWriteFailed):
            # Already running, nothing to retry or a full disk: the status page shows which.
            self.service.retry()
        return Response.redirect("/status")


def _without_password(text: str) -> str:
    """``text`` as typed, without what could be a password: between the user name and the
    last ``@``. Not parsed as a URL: what is shown again did not pass as one (no scheme,
    ``ops:pw@host``, reads as scheme ``ops``; an unclosed ``[`` does not parse at all)."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return text
    return f"{scheme}{sep}{userinfo.partition(':')[0]}@{host}"
