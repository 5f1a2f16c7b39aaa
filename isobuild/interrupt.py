"""Ctrl-C and SIGTERM as a clean stop: the command unwinds, removes what it started, exits.

Python raises KeyboardInterrupt wherever the main thread happens to be, including between
taking a lock and entering the ``try`` that releases it; a build interrupted there
deadlocked on its own queue (seen in CI). So the signals raise :class:`Interrupted` only
outside :func:`deferred` sections; inside one they are recorded and raised at the next
checkpoint the section offers, where no lock is held. Once a stop is under way, further
signals are ignored so the cleanup itself is never torn.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The user (SIGINT) or a supervisor (SIGTERM) asked the command to stop.

    A BaseException, like KeyboardInterrupt, so ``except Exception`` does not swallow it;
    not a KeyboardInterrupt, so click does not turn it into "Aborted!" and exit 1.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process a signal ended."""
        return 128 + self.signum


class _State:
    def __init__(self) -> None:
        self.depth = 0  # how many deferred() sections the main thread is inside
        self.pending: int | None = None  # a signal seen inside one, not raised yet
        self.stopping = False  # Interrupted was raised: ignore the rest


_state = _State()


def _handle(signum: int, _frame: FrameType | None) -> None:
    if _state.stopping:
        return
    if _state.depth:
        _state.pending = signum
        return
    _state.stopping = True
    raise Interrupted(signum)


def checkpoint() -> None:
    """Raise the signal a deferred section recorded, if any; call where no lock is held."""
    if _state.pending is not None and not _state.stopping:
        signum, _state.pending = _state.pending, None
        _state.stopping = True
        raise Interrupted(signum)


def _nothing() -> None:
    """The checkpoint of a section off the main thread, which no signal reaches."""


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted` while the block runs.

    Only the main thread can install handlers; elsewhere (the CLI run from a worker thread)
    the block runs with the signals as they were.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    _state.depth, _state.pending, _state.stopping = 0, None, False
    for sig in _SIGNALS:
        signal.signal(sig, _handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def deferred() -> Iterator[Callable[[], None]]:
    """A section a signal must not tear: signals wait for the checkpoint it yields.

    A signal still pending when the section ends normally is raised on the way out.
    Signals reach only the main thread: elsewhere the section defers nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield _nothing
        return
    _state.depth += 1
    try:
        yield checkpoint
    finally:
        _state.depth -= 1
    if not _state.depth:
        checkpoint()
