"""Kubernetes events as an operator reads them: the recent warnings, newest first, per pod.
Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from host_service.operate.times import parse_time

PER_POD = 3  # the newest warnings shown beside a pod
RECENT = 10  # on the status page


@dataclass(frozen=True, kw_only=True)
class EventView:
    namespace: str
    kind: str
    name: str  # the object it is about
    reason: str
    message: str
    count: int
    last: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "kind": self.kind,
            "name": self.name,
            "reason": self.reason,
            "message": self.message,
            "count": self.count,
            "last": self.last,
        }


def _view(event: Mapping[str, Any]) -> EventView:
    involved = event.get("involvedObject") or event.get("regarding") or {}
    series = event.get("series") or {}
    count = series.get("count") or event.get("count") or 1
    last = (
        parse_time(series.get("lastObservedTime"))
        or parse_time(event.get("lastTimestamp"))
        or parse_time(event.get("eventTime"))
        or parse_time((event.get("metadata") or {}).get("creationTimestamp"))
    )
    return EventView(
        namespace=str(
            involved.get("namespace") or (event.get("metadata") or {}).get("namespace") or ""
        ),
        kind=str(involved.get("kind") or ""),
        name=str(involved.get("name") or ""),
        reason=str(event.get("reason") or ""),
        message=str(event.get("message") or event.get("note") or ""),
        count=count if isinstance(count, int) else 1,
        last=last,
    )


def warnings(events: Iterable[Mapping[str, Any]]) -> list[EventView]:
    """Warning events, newest first."""
    found = [_view(e) for e in events if e.get("type") == "Warning"]
    return sorted(found, key=lambda e: e.last or 0.0, reverse=True)


def by_pod(views: Iterable[EventView]) -> dict[tuple[str, str], list[EventView]]:
    found: dict[tuple[str, str], list[EventView]] = {}
    for view in views:
        if view.kind == "Pod":
            mine = found.setdefault((view.namespace, view.name), [])
            if len(mine) < PER_POD:
                mine.append(view)
    return found
