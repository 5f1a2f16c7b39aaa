"""Updates over HTTP: the JSON API and the pages (check, preview with the diff, start, watch,
retry, history). Thin: every decision is the manager's."""

from __future__ import annotations

import hashlib
import time
from typing import Any, Protocol
from urllib.parse import quote

from host_service.intent import DIGEST
from host_service.update.manager import UpdateConflict, UpdateManager
from host_service.wsgi import HttpError, Request, Response

LONG_POLL_MAX = 60.0


class Renderer(Protocol):
    def render(self, template: str, status: int = 200, **context: Any) -> Response: ...


def when(stamp: object) -> str:
    if not isinstance(stamp, int | float):
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))


def requested_by(request: Request) -> str:
    """Who asked: the session (a hash of its id, never the cookie) and the client address."""
    session = request.session
    sid = hashlib.sha256(str(getattr(session, "id", "")).encode()).hexdigest()[:8]
    return f"session {sid} from {request.client}"


def _start_fields(data: dict[str, Any]) -> tuple[str, str, bool]:
    errors: dict[str, str] = {}
    unknown = sorted(set(data) - {"ref", "manifest_digest", "force"})
    for key in unknown:
        errors[key] = "unknown field"
    ref = data.get("ref")
    if not isinstance(ref, str) or not ref:
        errors["ref"] = "required: the channel, version or digest that was previewed"
    digest = data.get("manifest_digest")
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        errors["manifest_digest"] = "required: sha256:<64 hex>, as the preview or check showed"
    force = data.get("force", False)
    if not isinstance(force, bool):
        errors["force"] = "expected true or false"
    if errors:
        raise HttpError(400, "invalid update request", fields=errors)
    assert isinstance(ref, str)
    assert isinstance(digest, str)
    return ref, digest, bool(force)


class UpdateHttp:
    def __init__(self, manager: UpdateManager, pages: Renderer, js: str) -> None:
        self.manager = manager
        self.pages = pages
        self.js = js

    # -- API -------------------------------------------------------------------------------

    def api_view(self, request: Request) -> Response:
        keeper = self.manager.keeper
        wait = request.arg("wait")
        if wait is not None:
            try:
                seen = int(wait)
                timeout = min(LONG_POLL_MAX, float(request.arg("timeout") or 25))
            except ValueError as exc:
                raise HttpError(400, "wait and timeout must be numbers") from exc
            version, run = keeper.wait_for_change(seen, max(0.0, timeout))
        else:
            version, run = keeper.snapshot()
        return Response.json(self.manager.view(version, run))

    def api_check(self, request: Request) -> Response:
        try:
            return Response.json(self.manager.check(requested_by=requested_by(request)))
        except UpdateConflict as exc:
            raise HttpError(409, str(exc)) from exc

    def api_preview(self, request: Request) -> Response:
        data = request.json()
        ref = data.get("ref")
        if set(data) - {"ref"} or not isinstance(ref, str) or not ref:
            fields = {"ref": "required: a channel, a version or a digest"}
            raise HttpError(400, "invalid preview request", fields=fields)
        try:
            return Response.json(self.manager.preview(ref))
        except UpdateConflict as exc:
            raise HttpError(409, str(exc)) from exc

    def api_start(self, request: Request) -> Response:
        ref, digest, force = _start_fields(request.json())
        try:
            self.manager.start_update(
                ref=ref, manifest_digest=digest, force=force, requested_by=requested_by(request)
            )
        except UpdateConflict as exc:
            raise HttpError(409, str(exc)) from exc
        version, current = self.manager.keeper.snapshot()
        return Response.json(self.manager.view(version, current), 202)

    def api_retry(self, request: Request) -> Response:
        try:
            self.manager.retry()
        except UpdateConflict as exc:
            raise HttpError(409, str(exc)) from exc
        version, run = self.manager.keeper.snapshot()
        return Response.json(self.manager.view(version, run), 202)

    def api_history(self, request: Request) -> Response:
        return Response.json({"history": list(reversed(self.manager.history()))})

    # -- pages -----------------------------------------------------------------------------

    def _page(self, request: Request, status: int = 200, **extra: Any) -> Response:
        version, run = self.manager.keeper.snapshot()
        view = self.manager.view(version, run)
        if view["check"]:
            view["check"]["checked_at_text"] = when(view["check"].get("checked_at"))
        for entry in view["history"]:
            entry["requested_at_text"] = when(entry.get("requested_at"))
        return self.pages.render(
            "update.html", status, session=request.session, view=view, js=self.js, **extra
        )

    def page(self, request: Request) -> Response:
        return self._page(request)

    def page_check(self, request: Request) -> Response:
        try:
            self.manager.check(requested_by=requested_by(request))
        except UpdateConflict as exc:
            return self._page(request, 409, error=str(exc))
        return Response.redirect("/update")

    def page_preview(self, request: Request) -> Response:
        ref = (request.arg("ref") or "").strip()
        digest = request.arg("digest")
        if not ref:
            return self._page(request, 400, error="give a channel, a version or a digest")
        try:
            preview = None
            if digest:  # exactly what a check showed, from the cache
                preview = self.manager.describe_cached(ref, digest)
            if preview is None:
                preview = self.manager.preview(ref)
        except UpdateConflict as exc:
            return self._page(request, 409, error=str(exc))
        return self._page(request, preview=preview)

    def page_start(self, request: Request) -> Response:
        form = request.form()
        ref = form.get("ref", "")
        digest = form.get("manifest_digest", "")
        force = form.get("force") == "yes"
        try:
            self.manager.start_update(
                ref=ref, manifest_digest=digest, force=force, requested_by=requested_by(request)
            )
        except UpdateConflict as exc:
            back = f"/update/preview?ref={quote(ref)}&digest={quote(digest)}"
            return self._page(request, 409, error=str(exc), back=back)
        return Response.redirect("/update")

    def page_retry(self, request: Request) -> Response:
        try:
            self.manager.retry()
        except UpdateConflict as exc:
            return self._page(request, 409, error=str(exc))
        return Response.redirect("/update")
