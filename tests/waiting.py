"""The one way a test waits for something: until a condition holds, or a deadline naming it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimedOut(AssertionError):
    """What a test waited for did not happen within its deadline."""


def wait_until(
    condition: Callable[[], T | None],
    timeout: float,
    what: str | Callable[[], str],
    *,
    interval: float = 0.02,
    pause: Callable[[float], object] | None = None,
) -> T:
    """Return the first truthy value of ``condition()``, checked until ``timeout`` seconds.

    Between checks it sleeps ``interval``, or calls ``pause(seconds_left)`` where the thing
    waited on can wake it sooner (a long-poll, a condition variable). The deadline is a bound
    against hanging, never the synchronisation itself: ``condition`` is the event. On timeout
    it raises ``WaitTimedOut`` with ``what`` (a callable can describe the last state seen).
    ``condition`` may raise to end the wait early (a process that exited).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        left = deadline - time.monotonic()
        if left <= 0:
            detail = what() if callable(what) else what
            raise WaitTimedOut(f"timed out after {timeout:g} s waiting for {detail}")
        if pause is None:
            time.sleep(min(interval, left))
        else:
            pause(left)
