"""The last reading of each resource kind: value, when it was read, why it could not be."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reading:
    """One poller's latest result. ``value`` is the last good read (kept when a later read
    fails, so the page can show it with its age); ``error`` says why the last read failed."""

    value: Any = None
    error: str | None = None
    read_at: float | None = None  # the last good read
    tried_at: float | None = None  # the last attempt, good or not
    cycles: int = 0  # completed reads, good or not
    skipped: str | None = None  # not read on purpose (k3s not installed yet): why

    def age(self, now: float) -> float | None:
        return None if self.read_at is None else max(0.0, now - self.read_at)


NOT_READ = Reading()


def not_installed(error: str) -> bool:
    """The cluster does not know the kind yet: its CRDs are still being installed."""
    text = error.lower()
    return "doesn't have a resource type" in text or "no matches for kind" in text


def why(error: str) -> str:
    """An operator's reading of a kubectl/systemctl failure: what it most likely means."""
    text = error.lower()
    if "timed out" in text or "timeout" in text or "deadline exceeded" in text:
        return f"the Kubernetes API did not answer in time ({error})"
    if "connection refused" in text or "no such host" in text or "was refused" in text:
        return f"k3s is not running: its API refuses connections ({error})"
    if not_installed(error):
        return f"not installed yet: the cluster does not know this kind ({error})"
    if "not found" in text and ("kubectl" in text or "k3s" in text or "no such file" in text):
        return f"kubectl is missing on this host ({error})"
    if "forbidden" in text or "unauthorized" in text:
        return f"the service's credentials were refused ({error})"
    return error
