"""The WSGI application: the route table and the access policy in front of every route."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from host_service.api import Api
from host_service.auth import Auth
from host_service.logs.http import LogsHttp
from host_service.operate.http import OperateHttp
from host_service.pages import STATIC, Pages
from host_service.service import Service
from host_service.support.http import SupportHttp
from host_service.update.http import UpdateHttp
from host_service.wsgi import (
    Environ,
    HttpError,
    Request,
    Response,
    Route,
    Router,
    StartResponse,
    wsgi_response,
)

log = logging.getLogger(__name__)

# The only routes answered without a session: health, and the login itself.
PUBLIC = frozenset({"healthz", "login-form", "login", "api-login"})
SAFE_METHODS = frozenset({"GET", "HEAD"})


def routes(
    api: Api,
    pages: Pages,
    support: SupportHttp,
    update: UpdateHttp,
    operate: OperateHttp,
    logs: LogsHttp,
) -> list[Route]:
    return [
        Route("GET", "/logs", logs.page, "logs"),
        Route("GET", "/api/logs", logs.api_chunk, "api-logs"),
        Route("GET", "/api/logs/follow", logs.api_follow, "api-logs-follow"),
        Route("GET", "/healthz", api.healthz, "healthz"),
        Route("GET", "/login", pages.login_form, "login-form"),
        Route("POST", "/login", pages.login, "login"),
        Route("POST", "/logout", pages.logout, "logout"),
        Route("GET", "/", pages.index, "index"),
        Route("GET", "/setup", pages.setup_form, "setup-form"),
        Route("POST", "/setup", pages.setup, "setup"),
        Route("GET", "/status", operate.page_status, "status"),
        Route("POST", "/retry", pages.retry, "retry"),
        Route("POST", "/api/login", api.login, "api-login"),
        Route("POST", "/api/logout", api.logout, "api-logout"),
        Route("GET", "/api/session", api.session, "api-session"),
        Route("GET", "/api/status", api.status, "api-status"),
        Route("GET", "/api/events", api.events, "api-events"),
        Route("GET", "/api/setup", api.get_setup, "api-setup-get"),
        Route("POST", "/api/setup", api.post_setup, "api-setup"),
        Route("POST", "/api/retry", api.retry, "api-retry"),
        Route("POST", "/support-bundle", support.page_create, "support-bundle-create"),
        Route("GET", "/support-bundle", support.page_download, "support-bundle"),
        Route("POST", "/api/support-bundle", support.api_create, "api-support-bundle-create"),
        Route("GET", "/api/support-bundles", support.api_list, "api-support-bundles"),
        Route("GET", "/update", update.page, "update"),
        Route("POST", "/update/check", update.page_check, "update-check"),
        Route("GET", "/update/preview", update.page_preview, "update-preview"),
        Route("POST", "/update/start", update.page_start, "update-start"),
        Route("POST", "/update/retry", update.page_retry, "update-retry"),
        Route("GET", "/api/update", update.api_view, "api-update"),
        Route("POST", "/api/update", update.api_start, "api-update-start"),
        Route("POST", "/api/update/check", update.api_check, "api-update-check"),
        Route("POST", "/api/update/preview", update.api_preview, "api-update-preview"),
        Route("POST", "/api/update/retry", update.api_retry, "api-update-retry"),
        Route("GET", "/api/update/history", update.api_history, "api-update-history"),
        Route("GET", "/workloads", operate.page_workloads, "workloads"),
        Route("GET", "/api/overview", operate.api_overview, "api-overview"),
        Route("GET", "/api/workloads", operate.api_workloads, "api-workloads"),
    ]


def _static(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def wants_json(path: str) -> bool:
    """Errors under /api/ (and for /healthz) are JSON; everywhere else they are pages."""
    return path.startswith("/api/") or path == "/healthz"


class App:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.auth = Auth(service)
        self.api = Api(service, self.auth)
        self.pages = Pages(service, self.auth)
        self.support = SupportHttp(service.support)
        live_js = _static("live.js")  # the live-update plumbing the page scripts share
        self.update = UpdateHttp(service.updates, self.pages, live_js + _static("update.js"))
        self.operate = OperateHttp(
            service,
            self.pages,
            status_js=live_js + _static("status.js"),
            workloads_js=live_js + _static("workloads.js"),
        )
        self.logs = LogsHttp(
            service.logs, service.runtime.kube, service.settings.namespaces.all, self.pages,
            js=_static("logs.js"), css=_static("logs.css"),
        )  # fmt: skip
        self.router = Router(
            routes(self.api, self.pages, self.support, self.update, self.operate, self.logs)
        )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request = Request.from_environ(environ)
        api = wants_json(request.path)
        try:
            response = self.handle(request)
        except HttpError as exc:
            response = self.error(exc, api=api)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            response = self.error(HttpError(500, "internal error; see the service log"), api=api)
        return wsgi_response(response, start_response, head=request.method == "HEAD")

    def handle(self, request: Request) -> Response:
        route = self.router.match(request)
        if route.name not in PUBLIC:
            session = self.auth.session(request)
            if session is None:
                if request.path.startswith("/api/"):
                    raise HttpError(401, "login required: POST /api/login with the setup token")
                return Response.redirect("/login")
            request.session = session
            if request.method not in SAFE_METHODS:
                self.auth.check_csrf(request, session, form=not request.path.startswith("/api/"))
        return route.handler(request)

    def error_response(
        self, status: int, message: str, *, path: str, headers: Iterable[tuple[str, str]] = ()
    ) -> Response:
        """The answer to a request the server refused before routing (malformed, too large,
        too slow, too busy): JSON or a page as for any other error, by the path."""
        return self.error(HttpError(status, message, headers=headers), api=wants_json(path))

    def error(self, exc: HttpError, *, api: bool) -> Response:
        if api:
            body: dict[str, object] = {"error": exc.message}
            if exc.fields:
                body["fields"] = exc.fields
            response = Response.json(body, exc.status)
        else:
            try:
                response = self.pages.render(
                    "error.html", exc.status, message=exc.message, code=exc.status
                )
            except Exception:  # a broken template must not hide the original error
                log.exception("rendering the error page failed")
                response = Response(exc.status, f"{exc.status}: {exc.message}\n".encode())
        response.headers.extend(exc.headers)
        return response
