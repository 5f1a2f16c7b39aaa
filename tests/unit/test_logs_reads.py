"""Chunks of a log through the ``Kube`` seam: the tail, and older lines found by reading
longer tails (the API has no "before")."""

from __future__ import annotations

from host_service.logs.lines import Cursor
from host_service.logs.reads import older, recent
from host_service.logs.target import LogTarget
from tests.fixtures.host_service import FakeKube

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
    assert recent(kube, TARGET, 30).start is False  # exactly as many: it cannot tell yet
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
