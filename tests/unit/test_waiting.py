"""wait_until: the first truthy answer, a timeout that names what was awaited, a pause hook."""

from __future__ import annotations

import pytest

from tests.waiting import WaitTimedOut, wait_until


def test_returns_the_first_truthy_answer() -> None:
    answers = iter([None, 0, "", "ready", "later"])
    assert wait_until(lambda: next(answers), 10, "an answer", interval=0) == "ready"
    assert next(answers) == "later"  # not asked again once it held


def test_a_timeout_names_what_was_awaited_and_the_last_state() -> None:
    seen: list[int] = []

    def never() -> bool:
        seen.append(len(seen))
        return False

    with pytest.raises(WaitTimedOut, match=r"after 0 s waiting for the registry"):
        wait_until(never, 0, "the registry")
    assert seen == [0]  # checked once, even with no time at all
    with pytest.raises(AssertionError, match="waiting for phase x; still 2"):
        wait_until(never, 0, lambda: f"phase x; still {len(seen)}")


def test_the_pause_hook_runs_between_checks_with_the_time_left() -> None:
    state = {"version": 0}
    pauses: list[float] = []

    def long_poll(left: float) -> None:  # what a long-poll does: returns with news
        pauses.append(left)
        state["version"] += 1

    assert wait_until(lambda: state["version"] >= 3, 600, "version 3", pause=long_poll)
    assert len(pauses) == 3
    assert all(0 < left <= 600 for left in pauses)


def test_an_error_in_the_condition_ends_the_wait() -> None:
    def exited() -> bool:
        raise RuntimeError("docker-registry exited with 1")

    with pytest.raises(RuntimeError, match="exited with 1"):
        wait_until(exited, 600, "the registry")
