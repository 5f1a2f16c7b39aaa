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
    uid: str  # of that object, when the event names it: which pod of that name
    reason: str
    message: str
    count: int
    last: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
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
        uid=str(involved.get("uid") or ""),
        reason=str(event.get("reason") or ""),
        message=str(event.get("message") or event.get("note") or ""),
        count=count if isinstance(count, int) else 1,
        last=last,
    )


def warnings(events: Iterable[Mapping[str, Any]]) -> list[EventView]:
    """Warning events, newest first."""
    found = [_view(e) for e in events if e.get("type") == "Warning"]
    return sorted(found, key=lambda e: e.last or 0.0, reverse=True)


def by_pod(
    views: Iterable[EventView], uids: Mapping[tuple[str, str], str] | None = None
) -> dict[tuple[str, str], list[EventView]]:
    """The newest ``PER_POD`` warnings of each pod, by (namespace, name). ``uids``: each
    pod's uid now; an event naming another uid is about an earlier pod of that name (a
    StatefulSet's db-0 recreated) and is left out."""
    current = uids or {}
    found: dict[tuple[str, str], list[EventView]] = {}
    for view in views:
        if view.kind != "Pod":
            continue
        key = (view.namespace, view.name)
        uid = current.get(key)
        if view.uid and uid and view.uid != uid:
            continue
        mine = found.setdefault(key, [])
        if len(mine) < PER_POD:
            mine.append(view)
    return found
