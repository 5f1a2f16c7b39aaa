"""Updates over HTTP: the JSON API and the pages (check, preview with the diff, start, watch,
retry, history). Thin: every decision is the manager's."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

from host_service.intent import InputErrors
from host_service.update.manager import UpdateConflict, UpdateManager, digest_problem, ref_problem
from host_service.wsgi import HttpError, Request, Response

LONG_POLL_MAX = 60.0
LONG_POLL_DEFAULT = 25.0


class Renderer(Protocol):
    def render(self, template: str, status: int = 200, **context: Any) -> Response: ...


def when(stamp: object) -> str:
    if not isinstance(stamp, int | float):
        return "—"
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp))
    except (OverflowError, OSError, ValueError):  # a stamp from a damaged file: 1e300, NaN
        return "—"


def requested_by(request: Request) -> str:
    """Who asked: the session (a hash of its id, never the cookie) and the client address."""
    session = request.session
    sid = hashlib.sha256(str(getattr(session, "id", "")).encode()).hexdigest()[:8]
    return f"session {sid} from {request.client}"


def long_poll(request: Request) -> tuple[int, float] | None:
    """``?wait=<version>&timeout=<seconds>`` of a long-poll as (version, seconds), or None
    when no wait is asked for; a 400 names each argument that is not a number. (Shared with
    ``/api/status``: the request arguments of both long-polls are the same.)"""
    wait = request.arg("wait")
    if wait is None:
        return None
    errors: dict[str, str] = {}
    seen, timeout = 0, LONG_POLL_DEFAULT
    try:
        seen = int(wait)
    except ValueError:
        errors["wait"] = "expected an integer: the version of the answer seen last"
    try:
        timeout = float(request.arg("timeout") or LONG_POLL_DEFAULT)
    except ValueError:
        errors["timeout"] = "expected a number of seconds"
    if errors:
        raise HttpError(400, "invalid long-poll arguments", fields=errors)
    return seen, max(0.0, min(LONG_POLL_MAX, timeout))


def _fields(
    data: dict[str, Any], known: tuple[str, ...], problems: dict[str, str | None]
) -> dict[str, str]:
    """Field -> what is wrong with it: unknown fields, then the known ones' problems."""
    errors = dict.fromkeys(sorted(set(data) - set(known)), "unknown field")
    errors.update({field: problem for field, problem in problems.items() if problem})
    return errors


def _start_fields(data: dict[str, Any]) -> tuple[str, str, bool]:
    ref = data.get("ref")
    digest = data.get("manifest_digest")
    force = data.get("force", False)
    errors = _fields(
        data,
        ("ref", "manifest_digest", "force"),
        {
            "ref": ref_problem(ref),
            "manifest_digest": digest_problem(digest),
            "force": None if isinstance(force, bool) else "expected true or false",
        },
    )
    if errors:
        raise HttpError(400, "invalid update request", fields=errors)
    assert isinstance(ref, str)
    assert isinstance(digest, str)
    return ref, digest, bool(force)


def _invalid(exc: InputErrors, what: str) -> HttpError:
    """The manager's own check of a field (the handlers check first: defence in depth)."""
    return HttpError(400, f"invalid {what}", fields=exc.errors)


class UpdateHttp:
    def __init__(self, manager: UpdateManager, pages: Renderer, js: str) -> None:
        self.manager = manager
        self.pages = pages
        self.js = js

    # -- API -------------------------------------------------------------------------------

    def api_view(self, request: Request) -> Response:
        keeper = self.manager.keeper
        poll = long_poll(request)
        if poll is not None:
            version, run = keeper.wait_for_change(*poll)
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
        errors = _fields(data, ("ref",), {"ref": ref_problem(ref)})
        if errors:
            raise HttpError(400, "invalid preview request", fields=errors)
        assert isinstance(ref, str)
        try:
            return Response.json(self.manager.preview(ref))
        except InputErrors as exc:
            raise _invalid(exc, "preview request") from exc
        except UpdateConflict as exc:
            raise HttpError(409, str(exc)) from exc

    def api_start(self, request: Request) -> Response:
        ref, digest, force = _start_fields(request.json())
        try:
            self.manager.start_update(
                ref=ref, manifest_digest=digest, force=force, requested_by=requested_by(request)
            )
        except InputErrors as exc:
            raise _invalid(exc, "update request") from exc
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
        digest = request.arg("digest") or None
        if not ref:
            return self._page(request, 400, error="give a channel, a version or a digest")
        problems = {"ref": ref_problem(ref)}
        if digest is not None:
            problems["digest"] = digest_problem(digest)
        error = _page_error(problems)
        if error:
            return self._page(request, 400, error=error)
        try:
            preview = None
            if digest is not None:  # exactly what a check or preview showed, from the cache
                preview = self.manager.describe_cached(ref, digest)
            if preview is None:
                preview = self.manager.preview(ref)
        except InputErrors as exc:
            return self._page(request, 400, error=_page_error(exc.errors))
        except UpdateConflict as exc:
            return self._page(request, 409, error=str(exc))
        return self._page(request, preview=preview)

    def page_start(self, request: Request) -> Response:
        form = request.form()
        ref = form.get("ref", "")
        digest = form.get("manifest_digest", "")
        force = form.get("force") == "yes"
        error = _page_error({"ref": ref_problem(ref), "manifest_digest": digest_problem(digest)})
        if error:
            return self._page(request, 400, error=error)
        try:
            self.manager.start_update(
                ref=ref, manifest_digest=digest, force=force, requested_by=requested_by(request)
            )
        except InputErrors as exc:
            return self._page(request, 400, error=_page_error(exc.errors))
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


def _page_error(problems: Mapping[str, str | None]) -> str:
    """The page's error line: each bad field and what is wrong with it."""
    return "; ".join(f"{field}: {problem}" for field, problem in problems.items() if problem)
