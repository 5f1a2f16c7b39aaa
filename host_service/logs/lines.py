"""Log lines as kubectl prints them with ``--timestamps``, and the cursors that name them."""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from host_service.errors import InvalidInput

# RFC 3339 with up to nine fraction digits (Go's RFC3339Nano trims trailing zeros), and a
# cursor's optional "~n": the n-th of several lines stamped with the same nanosecond.
_STAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)(?:~(\d{1,6}))?"
)


class BadCursor(InvalidInput):
    """Text that is neither an RFC 3339 timestamp nor a cursor this service handed out."""


@dataclass(frozen=True, slots=True, order=True)
class Cursor:
    """A line's place in its log: the kubelet's timestamp (ns) and its rank among equals."""

    ns: int
    seq: int = 0

    def __str__(self) -> str:
        text = format_stamp(self.ns)
        return f"{text}~{self.seq}" if self.seq else text


@dataclass(frozen=True, slots=True)
class LogLine:
    cursor: Cursor
    text: str

    @property
    def stamp(self) -> str:
        return format_stamp(self.cursor.ns)

    def wire(self) -> list[str]:
        """As the API sends it: ``[cursor, timestamp, text]``."""
        return [str(self.cursor), self.stamp, self.text]


def parse_cursor(text: str) -> Cursor:
    found = _STAMP.fullmatch(text.strip())
    if found is None:
        raise BadCursor(
            f"{text[:80]!r} is not a timestamp: expected RFC 3339 such as "
            "2026-12-05T07:00:00.123456789Z, or a cursor from an earlier answer"
        )
    year, month, day, hour, minute, second, fraction, zone, seq = found.groups()
    try:
        seconds = calendar.timegm(
            (int(year), int(month), int(day), int(hour), int(minute), int(second), 0, 0, 0)
        )
    except (OverflowError, ValueError) as exc:
        raise BadCursor(f"{text[:80]!r} is not a valid time") from exc
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31 and int(hour) < 24):
        raise BadCursor(f"{text[:80]!r} is not a valid time")
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    nanos = int((fraction or "0").ljust(9, "0"))
    return Cursor(seconds * 10**9 + nanos, int(seq or 0))


def format_stamp(ns: int) -> str:
    """RFC 3339 UTC with all nine fraction digits (so cursors sort as text too)."""
    seconds, nanos = divmod(ns, 10**9)
    year, month, day, hour, minute, second = _utc(seconds)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{nanos:09d}Z"


def _utc(seconds: int) -> tuple[int, int, int, int, int, int]:
    t = time.gmtime(seconds)
    return t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec


class Numbering:
    """Turns kubectl's ``--timestamps`` lines into ``LogLine``s, ranking equal stamps.

    A line without a leading timestamp (it should not happen, but a log is untrusted text)
    keeps the stamp of the line before it, so nothing is dropped.
    """

    def __init__(self) -> None:
        self._last = Cursor(0, -1)

    def line(self, raw: str) -> LogLine:
        stamp, _, text = raw.partition(" ")
        try:
            ns = parse_cursor(stamp).ns
        except BadCursor:
            ns, text = self._last.ns, raw
        seq = self._last.seq + 1 if ns == self._last.ns else 0
        self._last = Cursor(ns, seq)
        return LogLine(self._last, text)

    def lines(self, raws: Iterable[str]) -> Iterator[LogLine]:
        for raw in raws:
            yield self.line(raw)


def number_text(text: str) -> list[LogLine]:
    """A whole ``kubectl logs --timestamps`` answer as lines."""
    return list(Numbering().lines(text.splitlines()))
