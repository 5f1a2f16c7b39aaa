"""The threaded stdlib HTTP server the WSGI app runs on."""

from __future__ import annotations

import logging
import socket
import socketserver
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from host_service.wsgi import MAX_BODY

log = logging.getLogger(__name__)

MAX_HEADER_LINE = 8192


class Handler(WSGIRequestHandler):
    # A stalled client must not hold a thread forever (reads only; SSE writes keep moving).
    timeout = 60

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(MAX_HEADER_LINE + 1)
        if len(self.raw_requestline) > MAX_HEADER_LINE:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        # Refuse oversized bodies before the app reads anything.
        length = self.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            self.send_error(413, f"request body larger than {MAX_BODY} bytes")
            self.close_connection = True
            return
        handler = ServerHandler(
            self.rfile,
            self.wfile,  # type: ignore[arg-type]
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(self.server.get_app())  # type: ignore[attr-defined]


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class ThreadingServer6(ThreadingServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        # Dual stack: [::] also accepts IPv4 clients (as ::ffff:a.b.c.d).
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT``, ``[V6]:PORT`` or ``:PORT`` (all addresses)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen {text!r}: expected ADDR:PORT, [IPv6]:PORT or :PORT")
    return host.strip("[]"), int(port)


def make_server(host: str, port: int, app: Any) -> ThreadingServer:
    """Bind ``host:port``; an empty host means every address, IPv6 and IPv4 when possible."""
    server: ThreadingServer
    if host == "":
        try:
            server = ThreadingServer6(("::", port), Handler)
        except OSError:  # no IPv6 on this host
            server = ThreadingServer(("0.0.0.0", port), Handler)
    elif ":" in host:
        server = ThreadingServer6((host, port), Handler)
    else:
        server = ThreadingServer((host, port), Handler)
    server.set_app(app)
    return server
