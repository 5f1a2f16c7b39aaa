"""The JSON API: login, status (with long-poll), server-sent events, setup, retry."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from host_service.auth import Auth
from host_service.intent import InputErrors, parse_setup
from host_service.service import Conflict, Service
from host_service.store import StateWriteFailed
from host_service.update.http import long_poll
from host_service.wsgi import HttpError, Request, Response

SSE_HEARTBEAT = 15.0
SSE_LIFETIME = 600.0  # the browser reconnects; no thread is held forever


class Api:
    def __init__(self, service: Service, auth: Auth) -> None:
        self.service = service
        self.auth = auth

    def healthz(self, request: Request) -> Response:
        worker = self.service.worker
        ok = worker is not None and worker.alive
        return Response.json({"ok": ok}, 200 if ok else 503)

    def login(self, request: Request) -> Response:
        data = request.json()
        unknown = sorted(set(data) - {"token"})
        if unknown:
            raise HttpError(400, "unknown field", fields=dict.fromkeys(unknown, "unknown field"))
        token = data.get("token")
        if not isinstance(token, str):
            raise HttpError(400, "token is required", fields={"token": "required: a string"})
        session, cookie = self.auth.login(request, token)
        response = Response.json({"csrf": session.csrf, "expires": session.expires})
        self.auth.set_session_cookie(response, cookie)
        return response

    def logout(self, request: Request) -> Response:
        response = Response.json({"ok": True})
        self.auth.logout(request, response)
        return response

    def session(self, request: Request) -> Response:
        session = request.session
        return Response.json({"csrf": session.csrf, "expires": session.expires})

    def status(self, request: Request) -> Response:
        keeper = self.service.state_keeper
        poll = long_poll(request)
        if poll is not None:
            version, state = keeper.wait_for_change(*poll)
        else:
            version, state = keeper.snapshot()
        return Response.json(self.service.status_view(version, state))

    def events(self, request: Request) -> Response:
        keeper = self.service.state_keeper
        service = self.service

        def stream() -> Iterator[bytes]:
            version, state = keeper.snapshot()
            deadline = time.monotonic() + SSE_LIFETIME
            yield b"retry: 2000\n\n"
            yield _event(version, service.status_view(version, state))
            while time.monotonic() < deadline:
                new_version, state = keeper.wait_for_change(version, SSE_HEARTBEAT)
                if new_version == version:
                    yield b": keep-alive\n\n"
                    continue
                version = new_version
                yield _event(version, service.status_view(version, state))

        return Response(
            200,
            stream(),
            headers=[("X-Accel-Buffering", "no")],
            content_type="text/event-stream",
        )

    def get_setup(self, request: Request) -> Response:
        intent = self.service.intents.load()
        return Response.json({"setup": intent.public() if intent else None})

    def post_setup(self, request: Request) -> Response:
        data = request.json()
        try:
            intent = parse_setup(
                data,
                default_channel=self.service.settings.registry.default_channel,
                stored=self.service.intents.load(),
            )
        except InputErrors as exc:
            raise HttpError(400, "invalid setup input", fields=exc.errors) from exc
        try:
            self.service.submit_setup(intent)
        except Conflict as exc:
            raise HttpError(409, str(exc)) from exc
        except StateWriteFailed as exc:
            raise HttpError(503, f"{exc}; free space there, then submit again") from exc
        return Response.json(self.service.status(), 202)

    def retry(self, request: Request) -> Response:
        try:
            self.service.retry()
        except Conflict as exc:
            raise HttpError(409, str(exc)) from exc
        except StateWriteFailed as exc:
            raise HttpError(503, f"{exc}; free space there, then retry again") from exc
        return Response.json(self.service.status(), 202)


def _event(version: int, data: object) -> bytes:
    return f"id: {version}\nevent: status\ndata: {json.dumps(data)}\n\n".encode()
