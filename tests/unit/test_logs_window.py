"""Log lines, cursors and the bounded windows of the log viewer (host_service/logs)."""

from __future__ import annotations

import pytest

from host_service.logs.lines import BadCursor, Cursor, LogLine, Numbering, number_text, parse_cursor
from host_service.logs.window import LineWindow, after, before

NS = 1_796_200_000 * 10**9  # 2026-12-02T...Z


def stamped(ns: int, text: str) -> LogLine:
    return LogLine(Cursor(ns), text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-05T07:00:00Z", Cursor(1_796_454_000 * 10**9)),
        ("2026-12-05T07:00:00.5Z", Cursor(1_796_454_000 * 10**9 + 500_000_000)),
        ("2026-12-05T07:00:00.123456789Z", Cursor(1_796_454_000 * 10**9 + 123_456_789)),
        ("2026-12-05T08:00:00.000000001+01:00", Cursor(1_796_454_000 * 10**9 + 1)),
        ("2026-12-05T07:00:00.000000001Z~3", Cursor(1_796_454_000 * 10**9 + 1, 3)),
    ],
)
def test_cursors_parse_rfc3339_as_the_kubelet_writes_it(text: str, expected: Cursor) -> None:
    assert parse_cursor(text) == expected


def test_a_cursor_prints_back_to_itself_and_sorts_as_text() -> None:
    cursors = [Cursor(NS), Cursor(NS, 2), Cursor(NS + 1), Cursor(NS + 10**9 - 1)]
    assert [parse_cursor(str(c)) for c in cursors] == cursors
    assert sorted(str(c) for c in cursors) == [str(c) for c in sorted(cursors)]
    assert str(Cursor(NS + 5)).endswith(".000000005Z")


@pytest.mark.parametrize(
    "text", ["yesterday", "2026-12-05 07:00:00Z", "2026-13-05T07:00:00Z", "2026-12-05T07:00:00", ""]
)
def test_a_bad_cursor_says_what_is_expected(text: str) -> None:
    with pytest.raises(BadCursor, match=r"RFC 3339|not a valid time"):
        parse_cursor(text)


def test_numbering_ranks_equal_stamps_and_keeps_unstamped_lines() -> None:
    text = (
        "2026-12-05T07:00:00.1Z first\n"
        "2026-12-05T07:00:00.1Z second, same nanosecond\n"
        "a line kubectl printed without a stamp\n"
        "2026-12-05T07:00:00.2Z  two leading spaces kept\n"
        "2026-12-05T07:00:00.3Z\n"
    )
    lines = number_text(text)
    assert [line.text for line in lines] == [
        "first",
        "second, same nanosecond",
        "a line kubectl printed without a stamp",
        " two leading spaces kept",
        "",
    ]
    assert [line.cursor.seq for line in lines] == [0, 1, 2, 0, 0]
    assert lines[0].cursor < lines[1].cursor < lines[2].cursor < lines[3].cursor
    assert lines[1].wire() == [
        "2026-12-05T07:00:00.100000000Z~1",
        "2026-12-05T07:00:00.100000000Z",
        "second, same nanosecond",
    ]
    assert Numbering().line("garbage only").text == "garbage only"


def test_a_window_keeps_the_last_lines_and_counts_what_it_dropped() -> None:
    window = LineWindow(3)
    for i in range(10):
        window.append(stamped(NS + i, f"line {i}"))
    assert len(window) == 3
    assert window.dropped == 7
    assert [line.text for line in window.lines()] == ["line 7", "line 8", "line 9"]
    assert window.first == Cursor(NS + 7)
    assert window.last == Cursor(NS + 9)
    with pytest.raises(ValueError, match="at least one"):
        LineWindow(0)


def test_after_a_cursor_the_window_says_when_lines_fell_off_its_front() -> None:
    window = LineWindow(3)
    for i in range(5):
        window.append(stamped(NS + i, f"line {i}"))
    newer, gap = window.after(Cursor(NS + 3))
    assert ([line.text for line in newer], gap) == (["line 4"], False)
    newer, gap = window.after(Cursor(NS + 0))  # lines 1 and 2 are gone
    assert ([line.text for line in newer], gap) == (["line 2", "line 3", "line 4"], True)
    assert window.after(None) == (window.lines(), False)
    assert window.after(Cursor(NS + 9)) == ([], False)
    small = LineWindow(10)
    small.append(stamped(NS + 5, "only"))
    assert small.after(Cursor(NS)) == (small.lines(), False)  # nothing dropped: no gap


def test_chunks_before_and_after_a_cursor() -> None:
    lines = [stamped(NS + i, f"line {i}") for i in range(10)]
    assert [line.text for line in before(lines, Cursor(NS + 5), 2)] == ["line 3", "line 4"]
    assert [line.text for line in before(lines, Cursor(NS + 1), 5)] == ["line 0"]
    assert before(lines, Cursor(NS), 5) == []
    assert [line.text for line in after(lines, Cursor(NS + 7))] == ["line 8", "line 9"]
    ranked = [LogLine(Cursor(NS, 0), "a"), LogLine(Cursor(NS, 1), "b"), LogLine(Cursor(NS, 2), "c")]
    assert [line.text for line in before(ranked, Cursor(NS, 2), 10)] == ["a", "b"]
    assert [line.text for line in after(ranked, Cursor(NS, 0))] == ["b", "c"]
