"""isobuild.overlap.Stage: consumers see every chunk in order, errors reach the caller."""

from __future__ import annotations

import threading

import pytest

from isobuild.overlap import Stage


def _feed(stage: Stage, chunks: list[bytes]) -> None:
    offset = 0
    for chunk in chunks:
        view = stage.take()
        view[: len(chunk)] = chunk
        stage.give(len(chunk), offset)
        offset += len(chunk)


def test_every_consumer_sees_every_chunk_in_order_on_its_own_thread() -> None:
    seen: dict[str, list[tuple[bytes, int]]] = {"a": [], "b": []}
    threads: set[str] = set()

    def consumer(name: str):  # type: ignore[no-untyped-def]
        def consume(view: memoryview, offset: int) -> None:
            threads.add(threading.current_thread().name)
            seen[name].append((bytes(view), offset))

        return consume

    chunks = [bytes([n]) * (1000 + n) for n in range(20)]  # more chunks than buffers
    with Stage(consumer("a"), consumer("b"), name="t", chunk=4096, depth=3) as stage:
        _feed(stage, chunks)
    offsets = [sum(len(c) for c in chunks[:n]) for n in range(len(chunks))]
    assert seen["a"] == seen["b"] == list(zip(chunks, offsets, strict=True))
    assert stage.consumed == sum(len(c) for c in chunks)
    assert threading.current_thread().name not in threads
    assert len(threads) == 2


def test_a_consumer_error_is_raised_in_the_caller_and_stops_consuming() -> None:
    consumed: list[int] = []

    def fails_on_the_third(view: memoryview, offset: int) -> None:
        if len(consumed) == 2:
            raise OSError(5, "Input/output error")
        consumed.append(offset)

    with (
        pytest.raises(OSError, match="Input/output error"),
        Stage(fails_on_the_third, name="t", chunk=16, depth=2) as stage,
    ):
        _feed(stage, [b"x" * 16] * 50)
    assert consumed == [0, 16]


def test_leaving_on_an_exception_stops_the_consumers_without_waiting_for_the_rest() -> None:
    release = threading.Event()
    consumed: list[int] = []

    def slow(view: memoryview, offset: int) -> None:
        release.wait(10)
        consumed.append(offset)

    def stopped_half_way() -> None:
        with Stage(slow, name="t", chunk=16, depth=4) as stage:
            _feed(stage, [b"y" * 16] * 3)
            release.set()
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stopped_half_way()
    assert len(consumed) <= 3


def test_a_give_needs_a_take() -> None:
    with (
        Stage(lambda view, offset: None, name="t", chunk=16, depth=1) as stage,
        pytest.raises(AssertionError, match="give\\(\\) without take\\(\\)"),
    ):
        stage.give(1)
