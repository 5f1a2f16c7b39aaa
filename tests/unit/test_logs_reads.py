"""Chunks of a log through the ``Kube`` seam: the tail, and older lines found by reading
longer tails (the API has no "before")."""

from __future__ import annotations

from typing import cast

import pytest

from host_service.kube import Kube
from host_service.logs.lines import Cursor, format_stamp
from host_service.logs.reads import older, recent
from host_service.logs.target import LogTarget
from host_service.logs.window import Chunk
from tests.fixtures.host_service import FAKE_LOG_EPOCH_NS, FakeKube

TARGET = LogTarget(namespace="msp", pod="db-0", container="postgres")


def kube_with(lines: int) -> FakeKube:
    kube = FakeKube()
    kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db-0", "namespace": "msp"},
              "spec": {"containers": [{"name": "postgres"}]}})  # fmt: skip
    kube.add_log("msp", "db-0", *(f"line {i}" for i in range(lines)))
    return kube


def test_the_tail_says_whether_it_reaches_the_start() -> None:
    kube = kube_with(30)
    chunk = recent(kube, TARGET, 10)
    assert [line.text for line in chunk.lines] == [f"line {i}" for i in range(20, 30)]
    assert not chunk.start
    assert recent(kube, TARGET, 29).start is False
    assert recent(kube, TARGET, 30).start  # it reads one more line than it shows
    assert recent(kube, TARGET, 31).start


def test_older_chunks_read_longer_tails_until_they_reach_back() -> None:
    kube = kube_with(20_000)
    cursor: Cursor | None = recent(kube, TARGET, 500).lines[0].cursor
    seen = 500
    reads_before = len(kube.calls)
    chunk = older(kube, TARGET, cursor, 2_000)
    assert [line.text for line in chunk.lines] == [f"line {i}" for i in range(17_500, 19_500)]
    assert not chunk.start
    assert len(kube.calls) - reads_before == 1  # a tail of 2 x 2,000 lines reached back
    reads_before = len(kube.calls)
    further = older(kube, TARGET, chunk.lines[0].cursor, 2_000)
    assert [line.text for line in further.lines] == [f"line {i}" for i in range(15_500, 17_500)]
    assert len(kube.calls) - reads_before == 2  # 4,000 lines were not enough, 16,000 were
    while not chunk.start:
        seen += len(chunk.lines)
        cursor = chunk.lines[0].cursor
        chunk = older(kube, TARGET, cursor, 2_000)
    assert seen + len(chunk.lines) == 20_000
    assert chunk.lines[0].text == "line 0"


def test_the_previous_instance_is_read_the_same_way() -> None:
    kube = kube_with(3)
    kube.previous_logs[("msp", "db-0")] = ["FATAL: out of memory", "exit 137"]
    previous = LogTarget(namespace="msp", pod="db-0", container="postgres", previous=True)
    chunk = recent(kube, previous, 100)
    assert [line.text for line in chunk.lines] == ["FATAL: out of memory", "exit 137"]
    assert chunk.start
    assert older(kube, previous, chunk.lines[1].cursor, 10).lines == chunk.lines[:1]


class StampedLog:
    """A container log whose lines carry the stamps given (a multi-line write shares one),
    read through the ``Kube`` seam's ``logs`` as kubectl answers ``--tail --timestamps``."""

    def __init__(self, stamped: list[tuple[int, str]]) -> None:
        self.stamped = stamped
        self.tails: list[int | None] = []

    def logs(self, namespace: str, pod: str, *, tail: int | None = None, **_: object) -> str:
        self.tails.append(tail)
        lines = self.stamped[-tail:] if tail else self.stamped
        return "".join(f"{format_stamp(FAKE_LOG_EPOCH_NS + ns)} {text}\n" for ns, text in lines)


def burst_log(lines: int, burst: range) -> StampedLog:
    """``lines`` lines a millisecond apart, but those in ``burst`` written at once."""
    stamps = [burst.start if i in burst else i for i in range(lines)]
    return StampedLog([(ms * 1_000_000, f"line {i}") for i, ms in enumerate(stamps)])


def texts(chunk: Chunk) -> list[str]:
    return [line.text for line in chunk.lines]


def test_load_older_after_a_tail_that_began_in_a_burst_skips_nothing() -> None:
    # Lines 3-7 share one stamp (a stack trace written at once). A tail of 4 began in the
    # burst and ranked its lines from 0 there; a longer read ranks the same lines 2-4, so
    # "older" than the first line of the tail was line 2, and lines 3-5 were never shown.
    log = burst_log(10, range(3, 8))
    tail = recent(cast(Kube, log), TARGET, 4)
    assert texts(tail) == ["line 6", "line 7", "line 8", "line 9"]
    assert [str(line.cursor)[-2:] for line in tail.lines[:2]] == ["~3", "~4"]
    earlier = older(cast(Kube, log), TARGET, tail.lines[0].cursor, 100)
    assert texts(earlier) == [f"line {i}" for i in range(6)]
    assert earlier.start


@pytest.mark.parametrize("page", [1, 2, 3, 4, 7])
def test_paging_back_through_bursts_shows_every_line_once(page: int) -> None:
    log = burst_log(40, range(10, 25))
    chunk = recent(cast(Kube, log), TARGET, page)
    shown = texts(chunk)
    while not chunk.start:
        chunk = older(cast(Kube, log), TARGET, chunk.lines[0].cursor, page)
        shown = texts(chunk) + shown
    assert shown == [f"line {i}" for i in range(40)]


def test_a_log_that_is_one_burst_is_read_whole() -> None:
    log = StampedLog([(5, f"line {i}") for i in range(6)])
    assert texts(recent(cast(Kube, log), TARGET, 2)) == ["line 4", "line 5"]
    assert log.tails == [3, 12]  # a tail inside the burst ranks nothing: the whole log


@pytest.mark.parametrize("page", [250, 600])
def test_paging_back_a_long_log_whose_reads_begin_in_bursts(page: int) -> None:
    # The first page's read (one line more than a page) and the older chunks' reads of 1,000
    # and 4,000 lines from the end each begin inside a burst; the log ends in one.
    bursts = [range(1990, 2011), range(2390, 2411), range(2740, 2761), range(2990, 3000)]
    stamps = [next((b.start for b in bursts if i in b), i) for i in range(3000)]
    log = StampedLog([(ms * 1_000_000, f"line {i}") for i, ms in enumerate(stamps)])
    chunk = recent(cast(Kube, log), TARGET, page)
    shown = texts(chunk)
    while not chunk.start:
        chunk = older(cast(Kube, log), TARGET, chunk.lines[0].cursor, page)
        shown = texts(chunk) + shown
    assert shown == [f"line {i}" for i in range(3000)]
