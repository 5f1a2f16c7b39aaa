"""Logs over HTTP: the page, chunks of a log (tail, older, download) and live events. Thin:
reading is ``reads``'s, sharing the upstream follow is the hub's."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any, Protocol

from host_service.kube import Kube, KubeError
from host_service.logs.hub import LogHub, TooManyFollows, Viewer
from host_service.logs.lines import LogLine
from host_service.logs.reads import older, recent
from host_service.logs.target import (
    InvalidLogRequest,
    LogTarget,
    NoSuchLog,
    count,
    cursor,
    parse_target,
    pick_container,
)
from host_service.wsgi import HttpError, Request, Response

TARGET_ARGS = frozenset({"namespace", "pod", "container", "previous", "all"})
PAGE_TAIL = 500  # lines the page shows first
MAX_CHUNK = 5_000  # lines in one JSON chunk
MAX_DOWNLOAD = 50_000  # lines in one download


class Renderer(Protocol):
    def render(self, template: str, status: int = 200, **context: Any) -> Response: ...


def _args(request: Request, allowed: frozenset[str]) -> dict[str, str]:
    args = {name: values[-1] for name, values in request.query.items()}
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise HttpError(
            400,
            "invalid log request: unknown parameter " + ", ".join(unknown),
            fields=dict.fromkeys(unknown, f"unknown; known: {', '.join(sorted(allowed))}"),
        )
    return args


def _owner(request: Request) -> str:
    """Whose streams these are: the session (hashed; the id never leaves the auth layer)."""
    return hashlib.sha256(str(getattr(request.session, "id", "")).encode()).hexdigest()[:16]


def _event(name: str, data: object, *, ident: str | None = None) -> bytes:
    head = f"id: {ident}\n" if ident else ""
    return f"{head}event: {name}\ndata: {json.dumps(data)}\n\n".encode()


class LogsHttp:
    def __init__(
        self, hub: LogHub, kube: Kube, namespaces: Sequence[str], pages: Renderer, *,
        js: str, css: str,
    ) -> None:  # fmt: skip
        self.hub = hub
        self.kube = kube
        self.namespaces = tuple(namespaces)
        self.pages = pages
        self.js = js
        self.css = css

    # -- what a request names ------------------------------------------------------------

    def _target(self, args: Mapping[str, str]) -> LogTarget:
        try:
            target = parse_target(args, self.namespaces)
            pod = self.kube.get("pods", target.pod, target.namespace)
            return pick_container(pod, target)
        except InvalidLogRequest as exc:
            raise HttpError(400, str(exc), fields=exc.fields) from exc
        except NoSuchLog as exc:
            raise HttpError(404, str(exc)) from exc
        except KubeError as exc:
            raise _unreadable(exc) from exc

    def _read(
        self, target: LogTarget, args: Mapping[str, str], *, most: int
    ) -> tuple[list[LogLine], bool]:
        try:
            before = cursor(args, "before")
            if before is not None:
                chunk = older(
                    self.kube, target, before, count(args, "limit", default=PAGE_TAIL, most=most)
                )
            else:
                chunk = recent(self.kube, target, count(args, "tail", default=PAGE_TAIL, most=most))
        except InvalidLogRequest as exc:
            raise HttpError(400, str(exc), fields=exc.fields) from exc
        except KubeError as exc:
            raise _log_refused(exc, target) from exc
        return chunk.lines, chunk.start

    # -- the page ------------------------------------------------------------------------

    def page(self, request: Request) -> Response:
        args = _args(request, TARGET_ARGS | {"tail"})
        target = self._target(args)
        lines, start = self._read(target, args, most=MAX_CHUNK)
        return self.pages.render(
            "logs.html",
            session=request.session,
            target=target,
            query=target.query(),
            lines=lines,
            start=start,
            read_at=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            max_chunk=MAX_CHUNK,
            js=self.js,
            logs_css=self.css,
        )

    # -- the API -------------------------------------------------------------------------

    def api_chunk(self, request: Request) -> Response:
        args = _args(request, TARGET_ARGS | {"tail", "before", "limit", "format"})
        fmt = args.get("format", "json")
        if fmt not in ("json", "text"):
            raise HttpError(400, "invalid log request", fields={"format": "json or text"})
        if "before" in args and "tail" in args:
            raise HttpError(
                400, "invalid log request", fields={"tail": "give tail or before, not both"}
            )
        target = self._target(args)
        lines, start = self._read(target, args, most=MAX_DOWNLOAD if fmt == "text" else MAX_CHUNK)
        if fmt == "text":
            name = "_".join([target.namespace, target.pod, target.container or ""])
            name += "_previous" if target.previous else ""
            body = "".join(f"{line.stamp} {line.text}\n" for line in lines).encode()
            response = Response(200, body)
            response.headers.append(("Content-Disposition", f'attachment; filename="{name}.log"'))
            return response
        return Response.json(
            {
                "namespace": target.namespace,
                "pod": target.pod,
                "container": target.container,
                "previous": target.previous,
                "lines": [line.wire() for line in lines],
                "start": start,
            }
        )

    def api_follow(self, request: Request) -> Response:
        args = _args(request, TARGET_ARGS | {"after"})
        target = self._target(args)
        if target.previous:
            raise HttpError(
                400,
                "a previous instance's log does not change: read it with GET /api/logs",
                fields={"previous": "not with follow"},
            )
        # A reconnecting EventSource says where it was; that wins over the page's cursor.
        resume = request.header("Last-Event-ID")
        try:
            after = cursor({"after": resume or args.get("after", "")}, "after")
        except InvalidLogRequest as exc:
            raise HttpError(400, str(exc), fields=exc.fields) from exc
        if request.method == "HEAD":  # no body is sent: nothing to follow (or to let go of)
            return Response(200, b"", content_type="text/event-stream")
        try:
            viewer = self.hub.subscribe(target.key, after, owner=_owner(request))
        except TooManyFollows as exc:
            raise HttpError(503, str(exc), headers=[("Retry-After", "5")]) from exc
        return Response(
            200,
            EventStream(self.hub, viewer),
            headers=[("X-Accel-Buffering", "no")],
            content_type="text/event-stream",
        )


class EventStream:
    """A viewer's server-sent events; ``close`` (the server calls it however the answer
    ends, also before the first event) lets go of the viewer."""

    def __init__(self, hub: LogHub, viewer: Viewer) -> None:
        self.hub = hub
        self.viewer = viewer
        self._events = self._run()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._events)

    def close(self) -> None:
        self._events.close()
        self.hub.unsubscribe(self.viewer)

    def _run(self) -> Generator[bytes, None, None]:
        limits = self.hub.limits
        deadline = time.monotonic() + limits.lifetime
        yield b"retry: 2000\n\n"
        while (left := deadline - time.monotonic()) > 0:
            batch = self.hub.take(self.viewer, min(limits.heartbeat, left))
            if batch.missed or batch.gap:
                yield _event("missed", {"count": batch.missed, "gap": batch.gap})
            if batch.lines:
                last = str(batch.lines[-1].cursor)
                yield _event("lines", [line.wire() for line in batch.lines], ident=last)
            elif not (batch.ended or batch.missed or batch.gap):
                yield b": keep-alive\n\n"
            if batch.ended:
                yield _event("end", {"reason": batch.ended})
                return


def _log_refused(exc: KubeError, target: LogTarget) -> HttpError:
    """The API's answer about this container's log, in words (the kubelet's reasons)."""
    said = f"{exc} {exc.output}"
    which = f"container {target.container!r} of pod {target.pod!r}"
    if "previous terminated container" in said:
        return HttpError(
            404, f"{which} has no previous instance: it has not restarted since the pod started"
        )
    if "is waiting to start" in said:
        first = str(exc) if "is waiting to start" in str(exc) else exc.output
        reason = first.split("is waiting to start:", 1)[1].strip().splitlines()[0]
        return HttpError(
            409,
            f"{which} has not started yet ({reason}), so it has logged nothing; "
            "the workloads view shows why it waits",
        )
    return _unreadable(exc)


def _unreadable(exc: KubeError) -> HttpError:
    return HttpError(
        502,
        f"cannot read from the cluster: {exc}; the status page shows whether k3s is up",
    )
