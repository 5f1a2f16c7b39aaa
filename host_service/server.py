"""The HTTP server the WSGI app runs on: one reception thread, a bounded set of workers.

The reception thread accepts connections and reads each request whole (line, headers,
body: ``request_reader``) without a thread of its own, under one deadline. Only a complete
request takes a worker thread, and at most ``max_connections`` run at once. Every answer
the server gives itself (a malformed request, too slow, too busy) is rendered by the app,
so it is JSON under /api/ or a page elsewhere, with the security headers.
"""

from __future__ import annotations

import contextlib
import email.utils
import io
import ipaddress
import logging
import selectors
import socket
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote
from wsgiref.handlers import SimpleHandler

from host_service.request_reader import Incoming, ProtocolError, RequestReader
from host_service.settings import HttpLimits
from host_service.wsgi import MAX_BODY, Environ, Response, StartResponse, wsgi_response

log = logging.getLogger(__name__)

BACKLOG = 128
LINGER_SECONDS = 2.0  # reading what a client still sends after an error answer
ACCEPTS_PER_ROUND = 64
RECV_BYTES = 16 * 1024  # bounds what a waiting connection buffers past the limits


class Application(Protocol):
    """The WSGI app, which also renders the server's own error answers."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]: ...

    def error_response(
        self, status: int, message: str, *, path: str, headers: Iterable[tuple[str, str]] = ()
    ) -> Response: ...


@dataclass
class _Waiting:
    """A connection whose request is still arriving, or that is being closed."""

    sock: socket.socket
    address: tuple[Any, ...]
    deadline: float
    reader: RequestReader
    draining: bool = False
    drained: int = 0


@dataclass
class _Counts:
    lock: threading.Lock = field(default_factory=threading.Lock)
    active: int = 0
    full: bool = False  # logged once per busy spell


class Server:
    """Bound at construction; ``serve_forever`` until ``shutdown``; ``server_close``."""

    def __init__(
        self, address: tuple[str, int], family: socket.AddressFamily, app: Application,
        limits: HttpLimits,
    ) -> None:  # fmt: skip
        self.app = app
        self.limits = limits
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                # Dual stack: [::] also accepts IPv4 clients (as ::ffff:a.b.c.d).
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            self.socket.bind(address)
            self.socket.listen(BACKLOG)
            self.socket.setblocking(False)
        except OSError:
            self.socket.close()
            raise
        self.server_address: tuple[Any, ...] = self.socket.getsockname()
        self._waiting: dict[socket.socket, _Waiting] = {}  # oldest first
        self._counts = _Counts()
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()

    # -- lifecycle (the socketserver names, which the CLI and tests use) -------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._stop.clear()
        self._stopped.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.socket, selectors.EVENT_READ, None)
                while not self._stop.is_set():
                    timeout = poll_interval
                    if self._waiting:
                        soonest = min(w.deadline for w in self._waiting.values())
                        timeout = max(0.0, min(timeout, soonest - time.monotonic()))
                    for key, _ in selector.select(timeout):
                        if key.data is None:
                            self._accept(selector)
                        else:
                            self._receive_guarded(selector, key.data)
                    self._expire(selector)
                for waiting in list(self._waiting.values()):
                    self._close(selector, waiting)
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` and wait for it; requests being answered finish alone."""
        self._stop.set()
        self._stopped.wait()

    def server_close(self) -> None:
        self.socket.close()

    # -- reception ---------------------------------------------------------------------

    def _accept(self, selector: selectors.BaseSelector) -> None:
        for _ in range(ACCEPTS_PER_ROUND):
            try:
                sock, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: try again next round
                log.warning("cannot accept a connection: %s", exc)
                return
            sock.setblocking(False)
            if len(self._waiting) >= self.limits.max_waiting:
                oldest = next(iter(self._waiting.values()))
                self._refuse(selector, oldest, 503, "too many open connections; try again")
                self._close(selector, oldest)  # no lingering: it must make room now
            deadline = time.monotonic() + self.limits.request_timeout
            waiting = _Waiting(sock, address, deadline, RequestReader(max_body=MAX_BODY))
            self._waiting[sock] = waiting
            selector.register(sock, selectors.EVENT_READ, waiting)

    def _receive_guarded(self, selector: selectors.BaseSelector, waiting: _Waiting) -> None:
        try:
            self._receive(selector, waiting)
        except Exception:  # a bug: it ends this connection, not the server for everyone
            log.exception("%s: reading the request failed", _client(waiting.address))
            self._close(selector, waiting)

    def _receive(self, selector: selectors.BaseSelector, waiting: _Waiting) -> None:
        if self._waiting.get(waiting.sock) is not waiting:
            return  # closed earlier in this round
        try:
            data = waiting.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away (or finished sending after our answer)
            self._close(selector, waiting)
            return
        if waiting.draining:
            waiting.drained += len(data)
            if waiting.drained > 4 * MAX_BODY:
                self._close(selector, waiting)
            return
        try:
            incoming = waiting.reader.feed(data)
        except ProtocolError as exc:
            method = exc.method.upper()
            self._answer(selector, waiting, exc.status, exc.message, exc.target, method)
            return
        if incoming is not None:
            selector.unregister(waiting.sock)
            del self._waiting[waiting.sock]
            self._dispatch(incoming, waiting.sock, waiting.address)

    def _expire(self, selector: selectors.BaseSelector) -> None:
        now = time.monotonic()
        for waiting in [w for w in self._waiting.values() if w.deadline <= now]:
            if waiting.draining or not waiting.reader.started:
                self._close(selector, waiting)  # idle, or nothing more to say: just close
            else:
                seconds = f"{self.limits.request_timeout:g}"
                message = f"the request did not arrive within {seconds} s"
                self._refuse(selector, waiting, 408, message)

    def _refuse(
        self, selector: selectors.BaseSelector, waiting: _Waiting, status: int, message: str
    ) -> None:
        if waiting.draining or not waiting.reader.started:
            self._close(selector, waiting)
            return
        reader = waiting.reader
        self._answer(selector, waiting, status, message, reader.target, reader.method.upper())

    def _answer(
        self,
        selector: selectors.BaseSelector,
        waiting: _Waiting,
        status: int,
        message: str,
        target: str,
        method: str,
    ) -> None:
        """Send the server's own answer, then read (and drop) what the client still sends
        for a moment: closing with unread data would reset the connection and lose it."""
        log.debug("%s: %d %s", _client(waiting.address), status, message)
        data = self._render(status, message, target=target, head=method == "HEAD")
        try:
            # A fresh connection's send buffer holds a small answer whole; never block.
            waiting.sock.send(data)
            waiting.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(selector, waiting)
            return
        waiting.draining = True
        waiting.deadline = time.monotonic() + min(LINGER_SECONDS, self.limits.request_timeout)

    def _close(self, selector: selectors.BaseSelector, waiting: _Waiting) -> None:
        self._waiting.pop(waiting.sock, None)
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(waiting.sock)
        waiting.sock.close()

    def _render(
        self, status: int, message: str, *, target: str, head: bool,
        headers: Iterable[tuple[str, str]] = (),
    ) -> bytes:  # fmt: skip
        path = unquote(target.partition("?")[0], "iso-8859-1")
        response = self.app.error_response(status, message, path=path, headers=headers)
        captured: list[Any] = []

        def start_response(status_line: str, response_headers: list[tuple[str, str]]) -> None:
            captured[:] = [status_line, response_headers]

        body = b"".join(wsgi_response(response, start_response, head=head))
        status_line, response_headers = captured
        lines = [
            f"HTTP/1.0 {status_line}",
            f"Date: {email.utils.formatdate(usegmt=True)}",
            *(f"{name}: {value}" for name, value in response_headers),
            "Connection: close",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    # -- workers -----------------------------------------------------------------------

    def _dispatch(self, incoming: Incoming, sock: socket.socket, address: tuple[Any, ...]) -> None:
        counts = self._counts
        with counts.lock:
            free = counts.active < self.limits.max_connections
            if free:
                counts.active += 1
                counts.full = False
            elif not counts.full:
                counts.full = True
                log.warning(
                    "all %d request slots are busy: answering 503 (and /healthz) until one is free",
                    self.limits.max_connections,
                )
        if free:
            thread = threading.Thread(
                target=self._work, args=(incoming, sock, address), daemon=True
            )
            try:
                thread.start()
                return
            except RuntimeError as exc:  # the system's thread limit: as busy as it gets
                log.warning("cannot start a request thread: %s", exc)
                with counts.lock:
                    counts.active -= 1
        path = unquote(incoming.target.partition("?")[0], "iso-8859-1")
        if incoming.method in ("GET", "HEAD") and path == "/healthz":
            # Cheap and never waits: answered here, so a monitor sees a live service.
            self._serve(incoming, sock, address, send_timeout=1.0)
            return
        data = self._render(
            503, "the service is busy; try again in a moment", target=incoming.target,
            head=incoming.method == "HEAD", headers=[("Retry-After", "1")],
        )  # fmt: skip
        with contextlib.suppress(OSError):
            sock.send(data)
        _close_quietly(sock)

    def _work(self, incoming: Incoming, sock: socket.socket, address: tuple[Any, ...]) -> None:
        try:
            self._serve(incoming, sock, address, send_timeout=self.limits.send_timeout)
        finally:
            with self._counts.lock:
                self._counts.active -= 1

    def _serve(
        self, incoming: Incoming, sock: socket.socket, address: tuple[Any, ...], *,
        send_timeout: float,
    ) -> None:  # fmt: skip
        try:
            sock.settimeout(send_timeout)
            with sock.makefile("wb") as out:
                handler = _Handler(self.app, self._environ(incoming, address), out)
                handler.run(self.app)
        except OSError as exc:
            log.info("%s: connection lost while answering: %s", _client(address), exc)
        finally:
            _close_quietly(sock)

    def _environ(self, incoming: Incoming, address: tuple[Any, ...]) -> Environ:
        path, _, query = incoming.target.partition("?")
        headers = incoming.headers
        environ: Environ = {
            "SERVER_NAME": str(self.server_address[0]),
            "SERVER_PORT": str(self.server_address[1]),
            "SERVER_PROTOCOL": incoming.version,
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REQUEST_METHOD": incoming.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, "iso-8859-1"),
            "QUERY_STRING": query,
            "REMOTE_ADDR": str(address[0]),
            "CONTENT_TYPE": headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(incoming.body)),
            "wsgi.input": io.BytesIO(incoming.body),
        }
        for name, value in headers.items():
            if "_" in name:  # X_CSRF_Token would pose as X-CSRF-Token
                continue
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            value = value.strip()
            # Repeated fields join with commas (RFC 9110), but cookies with "; " (RFC 6265:
            # an HTTP/2 proxy may send each cookie in a header of its own).
            joint = "; " if key == "HTTP_COOKIE" else ","
            environ[key] = f"{environ[key]}{joint}{value}" if key in environ else value
        return environ


class _Handler(SimpleHandler):
    """wsgiref's handler without the process environment in every request, without a
    ``Server:`` header, and with the app's own 500 answer; a lost client is one log line."""

    os_environ: dict[str, str] = {}  # noqa: RUF012 (wsgiref's own class attribute)
    server_software = None

    def __init__(self, app: Application, environ: Environ, out: Any) -> None:
        super().__init__(environ["wsgi.input"], out, sys.stderr, environ, multithread=True)
        self.app = app
        self.request = environ

    def handle_error(self) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # the client stopped reading or went away
            client = self.request["REMOTE_ADDR"]
            log.info("%s: connection lost while answering: %s", client, exc)
            return
        log.exception("%s %s failed", self.request["REQUEST_METHOD"], self.request["PATH_INFO"])
        if not getattr(self, "headers_sent", True):
            self.result = self.error_output(self.request, self.start_response)
            self.finish_response()

    def error_output(self, environ: Environ, start_response: StartResponse) -> list[bytes]:
        response = self.app.error_response(
            500, "internal error; see the service log", path=environ["PATH_INFO"]
        )
        return list(wsgi_response(response, start_response))


def _close_quietly(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
    sock.close()


def _client(address: tuple[Any, ...]) -> str:
    return str(address[0]) if address else "?"


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[V6]:PORT`` or ``:PORT`` (all addresses).

    An IPv6 address needs its brackets: ``::1:8080`` could be either of two addresses.
    """
    wrong = ValueError(f"--listen {text!r}: expected ADDR:PORT, [IPv6]:PORT or :PORT")
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise wrong
    if host.startswith("[") or host.endswith("]"):
        try:
            if not (host.startswith("[") and host.endswith("]")):
                raise ValueError(host)
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise wrong from None
        host = host[1:-1]
    elif ":" in host:
        raise wrong
    return host, int(port)


def make_server(host: str, port: int, app: Application, limits: HttpLimits | None = None) -> Server:
    """Bind ``host:port``; an empty host means every address, IPv6 and IPv4 when possible."""
    limits = limits or HttpLimits()
    if host == "":
        try:
            return Server(("::", port), socket.AF_INET6, app, limits)
        except OSError:  # no IPv6 on this host
            return Server(("0.0.0.0", port), socket.AF_INET, app, limits)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return Server((host, port), family, app, limits)
