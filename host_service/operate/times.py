"""Kubernetes timestamps and the human wording of durations."""

from __future__ import annotations

import datetime
import math
import re

UNKNOWN = "—"
# RFC 3339 5.7: a leap second is written 23:59:60 (with an offset, another minute's :60).
LEAP_SECOND = re.compile(r"(\d{4}-\d\d-\d\d.\d\d:\d\d):60(?!\d)")


def parse_time(value: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp as the API writes it, or None."""
    if not isinstance(value, str) or not value:
        return None
    # RFC 3339 lets "T" and "Z" be lower case (5.6); fromisoformat reads only "T" and "Z".
    text = value.upper()
    # fromisoformat refuses second 60: read it as :59 plus one second, as POSIX time does.
    text, leap = LEAP_SECOND.subn(r"\1:59", text, count=1)
    try:
        stamp = datetime.datetime.fromisoformat(text)  # reads "Z" since Python 3.11
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=datetime.UTC)
        return stamp.timestamp() + leap
    except (ValueError, OverflowError):
        return None


def duration(seconds: float | None) -> str:
    """``42s``, ``5m``, ``3h12m``, ``4d2h``: how kubectl words an age."""
    if seconds is None or not math.isfinite(seconds):
        return UNKNOWN
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
        return UNKNOWN
    try:
        moment = datetime.datetime.fromtimestamp(stamp, datetime.UTC)
    except (ValueError, OverflowError, OSError):  # past year 9999 or before year 1 in UTC
        return UNKNOWN
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
