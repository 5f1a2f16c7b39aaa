"""Log cursors, numbering, windows and request parameters held to exact answers: the
messages word for word, every time field's bounds, the window's gap rule (mutation testing
found these unprotected; docs/testing.md, "Operator views")."""

from __future__ import annotations

import pytest

from host_service.errors import InvalidInput
from host_service.logs.lines import (
    BadCursor,
    Cursor,
    LogLine,
    Numbering,
    format_stamp,
    parse_cursor,
)
from host_service.logs.target import (
    FLAGS,
    InvalidLogRequest,
    LogTarget,
    NoSuchLog,
    container_names,
    count,
    cursor,
    flag,
    name_problem,
    parse_target,
    pick_container,
)
from host_service.logs.window import Chunk, LineWindow, after, before

S = 1_796_454_000  # 2026-12-05T07:00:00Z
NS = S * 10**9
OURS = ("flux-system", "alga-system", "msp")


# -- cursors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  2026-12-05T07:00:00Z \n", Cursor(NS)),  # surrounding space is not part of it
        ("2026-12-05T07:00:00.000000009Z", Cursor(NS + 9)),
        ("2026-12-05T07:00:00.12Z", Cursor(NS + 120_000_000)),
        ("2026-12-05T05:30:00-01:30", Cursor(NS)),
        ("2026-12-05T09:15:00+02:15", Cursor(NS)),
        ("2026-12-05T07:00:00Z~0", Cursor(NS)),
        ("2026-12-05T07:00:00Z~123456", Cursor(NS, 123456)),
        ("1970-01-01T00:00:00Z", Cursor(0)),
        ("2024-02-29T23:59:59Z", Cursor(1_709_251_199 * 10**9)),
        ("2026-12-31T00:00:00Z", Cursor(1_798_675_200 * 10**9)),
        ("2026-01-01T00:00:00Z", Cursor(1_767_225_600 * 10**9)),
    ],
)
def test_cursors_parse_exactly(text: str, expected: Cursor) -> None:
    assert parse_cursor(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-00-05T07:00:00Z",
        "2026-12-00T07:00:00Z",
        "2026-12-32T07:00:00Z",
        "2026-12-05T24:00:00Z",
    ],
)
def test_a_time_out_of_range_is_not_valid(text: str) -> None:
    with pytest.raises(BadCursor) as caught:
        parse_cursor(text)
    assert str(caught.value) == f"{text!r} is not a valid time"
    assert isinstance(caught.value, InvalidInput)


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-05T07:00:00.1234567891Z",  # ten fraction digits
        "2026-12-05T07:00:00Z~1234567",
        "2026-12-05T07:00:00+0100",
        "x2026-12-05T07:00:00Z",
        "2026-12-05T07:00:00Zx",
    ],
)
def test_a_malformed_cursor_says_what_is_expected(text: str) -> None:
    with pytest.raises(BadCursor) as caught:
        parse_cursor(text)
    assert str(caught.value) == (
        f"{text!r} is not a timestamp: expected RFC 3339 such as "
        "2026-12-05T07:00:00.123456789Z, or a cursor from an earlier answer"
    )


def test_a_long_bad_cursor_is_quoted_short() -> None:
    text = "y" * 200
    with pytest.raises(BadCursor) as caught:
        parse_cursor(text)
    assert str(caught.value).startswith(repr("y" * 80) + " is not a timestamp")


def test_stamps_and_cursors_print_with_nine_digits() -> None:
    assert format_stamp(NS + 5) == "2026-12-05T07:00:00.000000005Z"
    assert format_stamp(0) == "1970-01-01T00:00:00.000000000Z"
    assert format_stamp(1_709_251_199 * 10**9 + 999_999_999) == "2024-02-29T23:59:59.999999999Z"
    assert str(Cursor(NS, 0)) == "2026-12-05T07:00:00.000000000Z"
    assert str(Cursor(NS, 4)) == "2026-12-05T07:00:00.000000000Z~4"
    line = LogLine(Cursor(NS + 1, 2), "hello")
    assert line.stamp == "2026-12-05T07:00:00.000000001Z"
    assert line.wire() == ["2026-12-05T07:00:00.000000001Z~2", line.stamp, "hello"]


def test_numbering_keeps_counting_within_a_stamp_and_restarts_at_the_next() -> None:
    numbering = Numbering()
    lines = list(
        numbering.lines(
            [
                "no stamp before any line",
                "2026-12-05T07:00:00Z a",
                "2026-12-05T07:00:00Z b",
                "2026-12-05T07:00:00Z c",
                "2026-12-05T07:00:01Z d",
                "2026-12-05T07:00:01Z",
            ]
        )
    )
    assert [(line.cursor, line.text) for line in lines] == [
        (Cursor(0, 0), "no stamp before any line"),
        (Cursor(NS, 0), "a"),
        (Cursor(NS, 1), "b"),
        (Cursor(NS, 2), "c"),
        (Cursor(NS + 10**9, 0), "d"),
        (Cursor(NS + 10**9, 1), ""),
    ]
    # The same object goes on where it stopped.
    assert numbering.line("2026-12-05T07:00:01Z e").cursor == Cursor(NS + 10**9, 2)


# -- windows -------------------------------------------------------------------------------


def stamped(i: int) -> LogLine:
    return LogLine(Cursor(NS + i), f"line {i}")


def test_an_empty_window() -> None:
    window = LineWindow(1)
    assert (len(window), window.first, window.last, window.dropped) == (0, None, None, 0)
    assert window.lines() == []
    assert window.after(Cursor(NS)) == ([], False)
    assert window.after(None) == ([], False)
    assert window.capacity == 1
    with pytest.raises(ValueError, match=r"^a line window holds at least one line$"):
        LineWindow(-3)


def test_a_window_of_one_counts_each_line_it_lets_go() -> None:
    window = LineWindow(1)
    window.append(stamped(0))
    assert window.dropped == 0
    window.append(stamped(1))
    window.append(stamped(2))
    assert (window.dropped, window.first, window.last) == (2, Cursor(NS + 2), Cursor(NS + 2))


def test_a_full_window_that_dropped_nothing_has_no_gap() -> None:
    window = LineWindow(3)
    for i in range(3):
        window.append(stamped(i))
    assert window.dropped == 0
    assert window.after(Cursor(NS - 1)) == (window.lines(), False)
    window.append(stamped(3))
    assert window.after(Cursor(NS - 1)) == (window.lines(), True)
    newer, gap = window.after(Cursor(NS + 1))  # the cursor is the first kept line's neighbour
    assert ([line.text for line in newer], gap) == (["line 2", "line 3"], False)


def test_chunks() -> None:
    lines = [stamped(i) for i in range(5)]
    assert before(lines, Cursor(NS + 3), 1) == [lines[2]]
    assert before(lines, Cursor(NS + 3), 0) == []
    assert before(lines, Cursor(NS + 99), 2) == lines[3:]
    assert before([], Cursor(NS), 5) == []
    assert after(lines, Cursor(NS - 1)) == lines
    assert after(lines, Cursor(NS + 2, 1)) == lines[3:]
    assert after([], Cursor(NS)) == []
    chunk = Chunk(lines=lines[:2], start=True)
    assert (chunk.lines, chunk.start) == (lines[:2], True)


# -- request parameters --------------------------------------------------------------------


def test_flags() -> None:
    assert FLAGS == {"1": True, "true": True, "yes": True, "0": False, "false": False,
                     "no": False, "": False}  # fmt: skip
    errors: dict[str, str] = {}
    assert flag({"all": " YES "}, "all", errors) is True
    assert flag({"all": "False"}, "all", errors) is False
    assert flag({}, "all", errors) is False
    assert errors == {}
    assert flag({"all": "y" * 50}, "all", errors) is False
    assert errors == {"all": f"expected 1 or 0, got {'y' * 20!r}"}


def test_name_problems_word_for_word() -> None:
    assert name_problem("", subdomain=True) == "required"
    assert name_problem("a" * 63, subdomain=False) is None
    assert name_problem("a" * 64, subdomain=False) == "at most 63 characters, got 64"
    assert name_problem("a" * 253, subdomain=True) is None
    assert name_problem("a.b-c", subdomain=True) is None
    assert name_problem("A", subdomain=False) == (
        "'A' is not a DNS-1123 label (lowercase letters, digits, '-')"
    )
    assert name_problem("a_b", subdomain=True) == (
        "'a_b' is not a DNS-1123 subdomain (lowercase letters, digits, '-', '.')"
    )
    assert name_problem("-" * 100, subdomain=True) == (
        f"{'-' * 80!r} is not a DNS-1123 subdomain (lowercase letters, digits, '-', '.')"
    )


def test_a_target_with_every_field_and_its_query() -> None:
    target = parse_target(
        {"namespace": "kube-system", "pod": "coredns-1", "container": "coredns",
         "previous": "true", "all": "yes"},
        OURS,
    )  # fmt: skip
    assert target == LogTarget(namespace="kube-system", pod="coredns-1", container="coredns",
                               previous=True, all_namespaces=True)  # fmt: skip
    assert target.query() == (
        "namespace=kube-system&pod=coredns-1&container=coredns&previous=1&all=1"
    )
    plain = parse_target({"namespace": "msp", "pod": "p", "container": ""}, OURS)
    assert plain == LogTarget(namespace="msp", pod="p", container=None)
    assert (plain.previous, plain.all_namespaces) == (False, False)
    assert plain.key == ("msp", "p", "")
    assert plain.query() == "namespace=msp&pod=p"


def test_every_problem_of_a_request_is_named_in_one_message() -> None:
    with pytest.raises(InvalidLogRequest) as caught:
        parse_target({"namespace": "Msp", "pod": "P", "container": "C", "all": "x"}, OURS)
    assert caught.value.fields == {
        "all": "expected 1 or 0, got 'x'",
        "namespace": "'Msp' is not a DNS-1123 label (lowercase letters, digits, '-')",
        "pod": "'P' is not a DNS-1123 subdomain (lowercase letters, digits, '-', '.')",
        "container": "'C' is not a DNS-1123 label (lowercase letters, digits, '-')",
    }
    assert str(caught.value) == "invalid log request: " + "; ".join(
        f"{k}: {v}" for k, v in caught.value.fields.items()
    )
    assert isinstance(caught.value, InvalidInput)
    with pytest.raises(InvalidLogRequest) as caught:
        parse_target({"namespace": "default", "pod": "p"}, ("msp",))
    assert caught.value.fields == {
        "namespace": "'default' is not one of the appliance's namespaces (msp); "
        "add all=1 to read another namespace"
    }


def test_counts_at_their_bounds() -> None:
    assert count({"tail": ""}, "tail", default=7, most=10) == 7
    assert count({"tail": "1"}, "tail", default=7, most=10) == 1
    assert count({"tail": "10"}, "tail", default=7, most=10) == 10
    with pytest.raises(InvalidLogRequest) as caught:
        count({"tail": "11"}, "tail", default=7, most=10)
    assert caught.value.fields == {"tail": "expected a whole number from 1 to 10, got '11'"}
    with pytest.raises(InvalidLogRequest) as caught:
        count({"limit": "9" * 30}, "limit", default=7, most=10)
    assert caught.value.fields == {
        "limit": f"expected a whole number from 1 to 10, got {'9' * 20!r}"
    }


def test_cursor_parameters() -> None:
    assert cursor({"after": ""}, "after") is None
    assert cursor({"after": "2026-12-05T07:00:00Z~2"}, "after") == Cursor(NS, 2)
    with pytest.raises(InvalidLogRequest) as caught:
        cursor({"after": "soon"}, "after")
    assert caught.value.fields == {
        "after": "'soon' is not a timestamp: expected RFC 3339 such as "
        "2026-12-05T07:00:00.123456789Z, or a cursor from an earlier answer"
    }


def test_container_names_in_spec_order_of_kinds() -> None:
    pod = {
        "spec": {
            "containers": [{"name": "app"}, {"image": "no-name"}, "junk"],
            "initContainers": [{"name": "migrate"}],
            "ephemeralContainers": [{"name": "debugger-x7"}],
        }
    }
    assert container_names(pod) == ["migrate", "app", "debugger-x7"]
    assert container_names({"spec": {"containers": {"name": "not a list"}}}) == []
    assert container_names({"spec": "junk"}) == []
    assert container_names({}) == []


def test_picking_a_container_word_for_word() -> None:
    target = LogTarget(namespace="msp", pod="p", container=None)
    with pytest.raises(InvalidLogRequest) as caught:
        pick_container({"spec": {}}, target)
    assert caught.value.fields == {
        "container": "required: pod 'p' in namespace 'msp' has containers (none)"
    }
    with pytest.raises(NoSuchLog) as missing:
        pick_container(None, target)
    assert str(missing.value) == (
        "pod 'p' in namespace 'msp' does not exist (it may have been replaced: open the "
        "workloads view)"
    )
    named = LogTarget(namespace="msp", pod="p", container="app")
    with pytest.raises(NoSuchLog) as no_container:
        pick_container({"spec": {}}, named)
    assert str(no_container.value) == (
        "pod 'p' in namespace 'msp' has no container 'app'; its containers: (none)"
    )
    two = {"spec": {"containers": [{"name": "web"}, {"name": "sidecar"}]}}
    with pytest.raises(NoSuchLog) as no_container:
        pick_container(two, named)
    assert str(no_container.value).endswith("its containers: web, sidecar")
    assert isinstance(no_container.value, InvalidInput)


def test_a_request_without_names_says_they_are_required() -> None:
    with pytest.raises(InvalidLogRequest) as caught:
        parse_target({}, OURS)
    assert caught.value.fields == {"namespace": "required", "pod": "required"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-05T17:00:00+10:00", Cursor(NS)),
        ("2026-12-04T20:00:00-11:00", Cursor(NS)),
        ("2026-12-05T19:45:00+12:45", Cursor(NS)),
    ],
)
def test_offsets_of_ten_hours_and_more(text: str, expected: Cursor) -> None:
    assert parse_cursor(text) == expected


@pytest.mark.parametrize("stamp", ["2026-13-05T07:00:00Z", "2026-12-32T07:00:00Z"])
def test_an_invalid_time_padded_with_space_is_quoted_short(stamp: str) -> None:
    text = " " * 70 + stamp
    with pytest.raises(BadCursor) as caught:
        parse_cursor(text)
    assert str(caught.value) == f"{text[:80]!r} is not a valid time"
