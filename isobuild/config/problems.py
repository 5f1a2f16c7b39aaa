"""Every problem of one config file, collected so all are reported at once."""

from __future__ import annotations


class Problems:
    """Messages ``<source>: <key path>: <message>``, in the order found."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        where = f"{self.source}: {path}" if path else self.source
        self.items.append(f"{where}: {message}")
