"""isobuild.interrupt: real signals sent to this process, raised only where it is safe."""

from __future__ import annotations

import signal
import threading

import pytest

from isobuild import interrupt


def stop_outside_a_section(steps: list[str]) -> None:
    signal.raise_signal(signal.SIGTERM)
    steps.append("after the signal")


def test_outside_a_deferred_section_a_signal_stops_at_once_with_128_plus_its_number() -> None:
    steps: list[str] = []
    with interrupt.handled(), pytest.raises(interrupt.Interrupted) as caught:
        stop_outside_a_section(steps)
    assert steps == []
    assert caught.value.signum == signal.SIGTERM
    assert caught.value.exit_code == 143
    assert str(caught.value) == "SIGTERM"


def stop_inside_a_section(steps: list[str]) -> None:
    with interrupt.deferred() as checkpoint:
        signal.raise_signal(signal.SIGINT)
        steps.append("after the signal")  # the section was not torn here
        checkpoint()
        steps.append("after the checkpoint")


def test_inside_a_deferred_section_it_waits_for_the_checkpoint() -> None:
    steps: list[str] = []
    with interrupt.handled(), pytest.raises(interrupt.Interrupted) as caught:
        stop_inside_a_section(steps)
    assert steps == ["after the signal"]
    assert caught.value.exit_code == 130


def stop_with_no_checkpoint(steps: list[str]) -> None:
    with interrupt.deferred():
        signal.raise_signal(signal.SIGINT)
        steps.append("rest of the section")
    steps.append("after the section")


def test_a_signal_left_pending_is_raised_when_the_section_ends() -> None:
    steps: list[str] = []
    with interrupt.handled(), pytest.raises(interrupt.Interrupted):
        stop_with_no_checkpoint(steps)
    assert steps == ["rest of the section"]


def stop_in_nested_sections(steps: list[str]) -> None:
    with interrupt.deferred():
        with interrupt.deferred():
            signal.raise_signal(signal.SIGINT)
        steps.append("outer section goes on")
    steps.append("after the outer section")


def test_nested_sections_raise_only_when_the_outermost_one_ends() -> None:
    steps: list[str] = []
    with interrupt.handled(), pytest.raises(interrupt.Interrupted):
        stop_in_nested_sections(steps)
    assert steps == ["outer section goes on"]


def stop_then_signal_during_cleanup(steps: list[str]) -> None:
    try:
        signal.raise_signal(signal.SIGINT)
    finally:
        signal.raise_signal(signal.SIGINT)  # a second Ctrl-C while cleaning up
        signal.raise_signal(signal.SIGTERM)
        steps.append("cleaned up")


def test_once_stopping_further_signals_do_not_tear_the_cleanup() -> None:
    steps: list[str] = []
    with interrupt.handled(), pytest.raises(interrupt.Interrupted) as caught:
        stop_then_signal_during_cleanup(steps)
    assert steps == ["cleaned up"]
    assert caught.value.signum == signal.SIGINT


def test_the_previous_handlers_come_back_and_state_starts_fresh() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with interrupt.handled(), pytest.raises(interrupt.Interrupted):
        signal.raise_signal(signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    with interrupt.handled(), pytest.raises(interrupt.Interrupted):
        signal.raise_signal(signal.SIGTERM)  # not ignored as if still stopping


def test_off_the_main_thread_the_block_runs_with_the_signals_as_they_were() -> None:
    before = signal.getsignal(signal.SIGINT)
    seen: list[object] = []

    def body() -> None:
        with interrupt.handled():
            seen.append(signal.getsignal(signal.SIGINT))

    worker = threading.Thread(target=body)
    worker.start()
    worker.join()
    assert seen == [before]


def test_a_section_off_the_main_thread_does_not_hold_back_the_main_threads_signals() -> None:
    inside = threading.Event()
    leave = threading.Event()

    def worker() -> None:
        with interrupt.deferred():
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(5)
    try:
        with interrupt.handled(), pytest.raises(interrupt.Interrupted):
            signal.raise_signal(signal.SIGINT)  # raised at once, not deferred
    finally:
        leave.set()
        thread.join()
