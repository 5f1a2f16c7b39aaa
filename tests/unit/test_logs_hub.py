"""The log hub: one upstream follow per container shared by its viewers, bounded per stream
and per viewer; a viewer that does not read never holds up another."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from host_service.command import _registered
from host_service.logs.hub import LogHub, LogLimits, TooManyFollows, Viewer
from host_service.logs.lines import Cursor, format_stamp
from tests.waiting import wait_until

NS = 1_796_454_000 * 10**9
KEY = ("msp", "alga-core-1", "app")


class Upstream:
    """A pod's log as the ``Kube`` seam follows it, written by the test; ending it (the hub
    stopping kubectl) is seen as the program being terminated."""

    def __init__(self) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.terminated = threading.Event()

    def poll(self) -> int | None:
        return -15 if self.terminated.is_set() else None

    def terminate(self) -> None:
        self.terminated.set()
        self.lines.put(None)

    kill = terminate


class FollowedKube:
    """The part of ``Kube`` the hub uses: ``follow_logs``, one ``Upstream`` per call."""

    def __init__(self) -> None:
        self.follows: list[tuple[tuple[str, str, str], Upstream]] = []
        self.calls = 0

    def follow_logs(self, namespace: str, pod: str, **options: Any) -> Iterator[str]:
        assert options["timestamps"] is True
        upstream = Upstream()
        self.follows.append(((namespace, pod, options["container"] or ""), upstream))
        with _registered(upstream):
            while (line := upstream.lines.get()) is not None:
                yield line

    def write(self, index: int, *numbers: int) -> None:
        for n in numbers:
            self.follows[index][1].lines.put(f"{format_stamp(NS + n)} line {n}")

    def end(self, index: int) -> None:
        self.follows[index][1].lines.put(None)


@pytest.fixture
def kube() -> FollowedKube:
    return FollowedKube()


@contextlib.contextmanager
def make_hub(kube: FollowedKube, **limits: Any) -> Iterator[LogHub]:
    hub = LogHub(kube, LogLimits(**{"grace": 0.05, "stop_grace": 1.0, **limits}))  # type: ignore[arg-type]
    yield hub
    hub.close()


@pytest.fixture
def hub(kube: FollowedKube) -> Iterator[LogHub]:
    with make_hub(kube) as running:
        yield running


def texts(hub: LogHub, viewer: Viewer) -> list[str]:
    return [line.text for line in hub.take(viewer, 0).lines]


def test_viewers_of_one_container_share_one_upstream_follow(
    hub: LogHub, kube: FollowedKube
) -> None:
    first = hub.subscribe(KEY, None, owner="a")
    second = hub.subscribe(KEY, None, owner="b")
    other = hub.subscribe(("msp", "alga-core-1", "sidecar"), None, owner="a")
    wait_until(lambda: len(kube.follows) == 2, 5, "two upstream follows")
    assert [key for key, _ in kube.follows] == [KEY, ("msp", "alga-core-1", "sidecar")]
    assert hub.started == 2
    kube.write(0, 1, 2)
    wait_until(lambda: len(first.queue) == 2 and len(second.queue) == 2, 5, "both viewers fed")
    assert texts(hub, first) == ["line 1", "line 2"]
    assert texts(hub, second) == ["line 1", "line 2"]
    assert hub.take(other, 0).lines == []
    assert hub.streams() == {KEY: 2, ("msp", "alga-core-1", "sidecar"): 1}


def test_a_viewer_that_does_not_read_never_holds_up_another_and_stays_bounded(
    kube: FollowedKube,
) -> None:
    with make_hub(kube, viewer_lines=10) as hub:
        fast = hub.subscribe(KEY, None, owner="a")
        stuck = hub.subscribe(KEY, None, owner="b")
        wait_until(lambda: kube.follows, 5, "the upstream follow")
        got: list[str] = []
        for n in range(100):
            kube.write(0, n)
            wait_until(lambda: fast.queue, 5, f"line {n} at the fast viewer")
            got += texts(hub, fast)
            assert len(stuck.queue) <= 10  # its memory is bounded whatever it does
        assert got == [f"line {n}" for n in range(100)]
        batch = hub.take(stuck, 0)
        assert batch.missed == 90  # told how many it lost, then the newest lines
        assert [line.text for line in batch.lines] == [f"line {n}" for n in range(90, 100)]
        assert (hub.take(stuck, 0).missed, stuck.delivered, fast.delivered) == (0, 10, 100)


def test_a_stream_keeps_a_bounded_window_a_new_viewer_catches_up_from(kube: FollowedKube) -> None:
    with make_hub(kube, ring_lines=50) as hub:
        first = hub.subscribe(KEY, None, owner="a")
        wait_until(lambda: kube.follows, 5, "the upstream follow")
        kube.write(0, *range(200))
        wait_until(lambda: first.delivered + len(first.queue) >= 200, 5, "200 lines")
        stream = first.stream
        assert (len(stream.window), stream.window.dropped) == (50, 150)
        # the page showed up to line 179: the viewer gets the rest, from the window
        late = hub.subscribe(KEY, Cursor(NS + 179), owner="b")
        batch = hub.take(late, 0)
        assert [line.text for line in batch.lines] == [f"line {n}" for n in range(180, 200)]
        assert not batch.gap
        # the page is older than the window: what is missing is said, not hidden
        stale = hub.subscribe(KEY, Cursor(NS + 10), owner="c")
        batch = hub.take(stale, 0)
        assert batch.gap
        assert len(batch.lines) == 50
        assert hub.started == 1


def test_lines_a_viewer_already_has_are_not_sent_again(hub: LogHub, kube: FollowedKube) -> None:
    viewer = hub.subscribe(KEY, Cursor(NS + 4), owner="a")
    wait_until(lambda: kube.follows, 5, "the upstream follow")
    kube.write(0, *range(8))  # the upstream's tail starts before what the page showed
    wait_until(lambda: len(viewer.stream.window) == 8, 5, "8 lines")
    assert texts(hub, viewer) == ["line 5", "line 6", "line 7"]


def test_the_upstream_is_stopped_after_the_last_viewer_leaves(
    hub: LogHub, kube: FollowedKube
) -> None:
    first = hub.subscribe(KEY, None, owner="a")
    second = hub.subscribe(KEY, None, owner="b")
    wait_until(lambda: kube.follows, 5, "the upstream follow")
    upstream = kube.follows[0][1]
    hub.unsubscribe(first)
    hub.unsubscribe(first)  # twice is harmless
    assert not upstream.terminated.wait(0.2)  # one viewer is left: it keeps following
    hub.unsubscribe(second)
    wait_until(upstream.terminated.is_set, 5, "the upstream follow stopped")
    wait_until(lambda: hub.streams() == {}, 5, "no stream left")
    hub.subscribe(KEY, None, owner="a")  # a new viewer starts a new one
    wait_until(lambda: len(kube.follows) == 2, 5, "a second upstream follow")


def test_a_viewer_back_within_the_grace_period_keeps_the_upstream(kube: FollowedKube) -> None:
    with make_hub(kube, grace=30.0) as hub:
        hub.unsubscribe(hub.subscribe(KEY, None, owner="a"))
        again = hub.subscribe(KEY, None, owner="a")  # a page reload
        wait_until(lambda: kube.follows, 5, "the upstream follow")
        kube.write(0, 1)
        wait_until(lambda: again.queue, 5, "a line")
        assert hub.started == 1
        assert not kube.follows[0][1].terminated.is_set()


def test_a_huge_line_is_cut_and_says_so(kube: FollowedKube) -> None:
    with make_hub(kube, max_line_chars=10) as hub:
        viewer = hub.subscribe(KEY, None, owner="a")
        wait_until(lambda: kube.follows, 5, "the upstream follow")
        kube.follows[0][1].lines.put(f"{format_stamp(NS)} {'y' * 25}")
        kube.write(0, 1)
        wait_until(lambda: len(viewer.queue) == 2, 5, "two lines")
        assert texts(hub, viewer) == [
            "y" * 10 + " [… cut: the line has 25 characters; download the log for all]",
            "line 1",
        ]


def test_the_end_of_the_container_ends_every_viewer(hub: LogHub, kube: FollowedKube) -> None:
    viewer = hub.subscribe(KEY, None, owner="a")
    wait_until(lambda: kube.follows, 5, "the upstream follow")
    kube.write(0, 1, 2)
    kube.end(0)
    wait_until(lambda: viewer.stream.ended, 5, "the stream ended")
    batch = hub.take(viewer, 1.0)
    assert [line.text for line in batch.lines] == ["line 1", "line 2"]
    assert batch.ended == "the container ended"


def test_closing_the_hub_wakes_every_viewer_and_stops_the_upstream(kube: FollowedKube) -> None:
    hub = LogHub(kube, LogLimits(stop_grace=1.0))
    viewer = hub.subscribe(KEY, None, owner="a")
    wait_until(lambda: kube.follows, 5, "the upstream follow")
    taken: list[str | None] = []
    waiter = threading.Thread(target=lambda: taken.append(hub.take(viewer, 60).ended))
    waiter.start()
    hub.close()
    waiter.join(10)
    assert taken == ["the service is stopping"]
    assert kube.follows[0][1].terminated.is_set()
    with pytest.raises(TooManyFollows, match="stopping"):
        hub.subscribe(KEY, None, owner="a")


def test_live_streams_are_capped_overall_and_a_session_gives_up_its_oldest(
    kube: FollowedKube,
) -> None:
    with make_hub(kube, max_follows=3, max_follows_per_session=2) as hub:
        first, second = (hub.subscribe(KEY, None, owner="me") for _ in range(2))
        third = hub.subscribe(KEY, None, owner="me")  # a reloaded tab: the oldest goes
        batch = hub.take(first, 5)
        assert batch.ended is not None
        assert "this session opened more than 2 live logs, so the oldest stopped" in batch.ended
        assert hub.take(second, 0).ended is None
        hub.unsubscribe(first)  # its stream closing later changes nothing
        hub.subscribe(KEY, None, owner="you")
        with pytest.raises(TooManyFollows, match="3 live log streams are open"):
            hub.subscribe(KEY, None, owner="them")
        hub.unsubscribe(third)
        hub.subscribe(KEY, None, owner="them")  # room again
        assert hub.streams() == {KEY: 3}


def test_an_evicted_viewer_leaves_its_container_to_be_stopped(kube: FollowedKube) -> None:
    with make_hub(kube, max_follows_per_session=1) as hub:
        hub.subscribe(KEY, None, owner="me")
        wait_until(lambda: kube.follows, 5, "the first upstream")
        other = ("msp", "db-0", "postgres")
        hub.subscribe(other, None, owner="me")
        wait_until(lambda: kube.follows[0][1].terminated.is_set(), 5, "the first stopped")
        assert hub.streams() == {other: 1}
        hub.unsubscribe(hub.subscribe(other, None, owner="me"))  # its bookkeeping held up


def test_a_follow_that_fails_ends_its_viewers_with_the_reason() -> None:
    from host_service.kube import KubeError

    class Failing:
        def follow_logs(self, namespace: str, pod: str, **options: Any) -> Iterator[str]:
            raise KubeError('pods "gone" not found', argv=["kubectl"])
            yield ""

    hub = LogHub(Failing())  # type: ignore[arg-type]
    viewer = hub.subscribe(KEY, None, owner="a")
    assert hub.take(viewer, 5).ended == 'reading the log failed: pods "gone" not found'
    hub.close()
