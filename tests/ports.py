"""Loopback ports for the servers and guest forwards tests start: chosen at run time."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (another process may take it before
    it is bound: a server that fails to bind is retried by its fixture)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
