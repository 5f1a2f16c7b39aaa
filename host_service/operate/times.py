"""Kubernetes timestamps and the human wording of durations."""

from __future__ import annotations

import datetime


def parse_time(value: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp as the API writes it, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.datetime.fromisoformat(value)  # reads "Z" since Python 3.11
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.UTC)
    return stamp.timestamp()


def duration(seconds: float | None) -> str:
    """``42s``, ``5m``, ``3h12m``, ``4d2h``: how kubectl words an age."""
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def utc_text(stamp: float | None) -> str:
    if stamp is None:
        return "—"
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
