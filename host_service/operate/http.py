"""Operating over HTTP: ``/api/overview``, ``/api/workloads`` and the status and workloads
pages. Thin: every answer comes from the monitor's last readings, never from the cluster."""

from __future__ import annotations

import re
from typing import Any, Protocol

from host_service.operate.overview import overview
from host_service.operate.times import duration, utc_text
from host_service.service import Service
from host_service.wsgi import HttpError, Request, Response

# A namespace is a DNS label (RFC 1123).
NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class Renderer(Protocol):
    def render(self, template: str, status: int = 200, **context: Any) -> Response: ...


class OperateHttp:
    def __init__(self, service: Service, pages: Renderer, *, status_js: str, workloads_js: str):
        self.service = service
        self.monitor = service.monitor
        self.pages = pages
        self.status_js = status_js
        self.workloads_js = workloads_js

    def overview(self) -> dict[str, Any]:
        monitor = self.monitor
        return overview(
            self.service.status(),
            monitor.layers(),
            monitor.blockers(),
            monitor.ages(),
            monitor.recent_warnings(),
        )

    def _namespace(self, request: Request) -> str | None:
        """The namespace asked for; None for every namespace (``all=1``)."""
        if request.arg("all") in ("1", "true", "yes"):
            return None
        namespace = (request.arg("namespace") or "").strip()
        if not namespace:
            return self.service.settings.namespaces.workloads
        if not NAMESPACE.fullmatch(namespace):
            raise HttpError(
                400,
                "invalid namespace",
                fields={"namespace": "a Kubernetes namespace: lower-case letters, digits, '-'"},
            )
        return namespace

    # -- API -------------------------------------------------------------------------------

    def api_overview(self, request: Request) -> Response:
        return Response.json(self.overview())

    def api_workloads(self, request: Request) -> Response:
        return Response.json(self.monitor.workloads(self._namespace(request)))

    # -- pages -----------------------------------------------------------------------------

    def page_status(self, request: Request) -> Response:
        view = self.overview()
        return self.pages.render(
            "status.html",
            session=request.session,
            o=view,
            view=self.service.status(),
            update_check=self.service.updates.last_check(),
            refresh=self.monitor.interval,
            duration=duration,
            utc=utc_text,
            js=self.status_js,
        )

    def page_workloads(self, request: Request) -> Response:
        try:
            namespace = self._namespace(request)
        except HttpError as exc:
            default = self.service.settings.namespaces.workloads
            view = self.monitor.workloads(default)
            return self.pages.render(
                "workloads.html",
                400,
                session=request.session,
                w=view,
                error=f"{exc.message}: {exc.fields.get('namespace', '')}",
                refresh=self.monitor.interval,
                duration=duration,
                utc=utc_text,
                js=self.workloads_js,
                own_namespaces=self.service.settings.namespaces.all,
            )
        return self.pages.render(
            "workloads.html",
            session=request.session,
            w=self.monitor.workloads(namespace),
            error=None,
            refresh=self.monitor.interval,
            duration=duration,
            utc=utc_text,
            js=self.workloads_js,
            own_namespaces=self.service.settings.namespaces.all,
        )
