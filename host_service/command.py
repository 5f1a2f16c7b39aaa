"""Running programs (kubectl, systemctl, k3s): no shell, timeouts, whole output, stderr kept."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from host_service.errors import ExternalError
from host_service.process import REAP_GRACE_SECONDS, Completed, spawn, tail

log = logging.getLogger(__name__)

__all__ = [
    "Children",
    "CommandError",
    "CommandFailed",
    "CommandMissing",
    "CommandTimeout",
    "Completed",
    "run",
    "stream_lines",
    "tail",
    "tracking",
]


class CommandError(ExternalError):
    """A program could not be run, timed out or failed; ``output`` is the tail to show."""

    def __init__(self, message: str, *, argv: Sequence[str], output: str = "") -> None:
        super().__init__(message)
        self.argv = tuple(argv)
        self.output = output


class CommandMissing(CommandError):
    pass


class CommandTimeout(CommandError):
    pass


class CommandFailed(CommandError):
    def __init__(
        self, message: str, *, argv: Sequence[str], returncode: int, stdout: str, stderr: str
    ) -> None:
        super().__init__(message, argv=argv, output=tail(stderr) or tail(stdout))
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class Child(Protocol):
    """The part of ``subprocess.Popen`` a stop needs."""

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class Children:
    """The programs one runner (the bootstrap worker) has running, so a stop can end them.

    ``run`` and ``stream_lines`` register their program here while it runs, when the calling
    thread is inside ``tracking(children)``. After ``stop`` no program may run: one that
    starts anyway (it raced the stop) is terminated at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: list[Child] = []
        self._stopped = False

    def add(self, child: Child) -> None:
        with self._lock:
            self._running.append(child)
            stopped = self._stopped
        if stopped:
            _signal(child, kill=False)

    def discard(self, child: Child) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._running.remove(child)

    def stop(self, grace: float) -> int:
        """SIGTERM every running program, SIGKILL what still runs after ``grace`` seconds.

        Returns how many programs had to be ended. Bounded: never waits longer than ``grace``
        (plus one poll interval).
        """
        with self._lock:
            self._stopped = True
            children = list(self._running)
        live = [c for c in children if c.poll() is None]
        for child in live:
            _signal(child, kill=False)
        deadline = time.monotonic() + grace
        while any(c.poll() is None for c in live) and time.monotonic() < deadline:
            time.sleep(0.05)
        for child in live:
            if child.poll() is None:
                log.warning("a program did not end %g s after SIGTERM; killing it", grace)
                _signal(child, kill=True)
        return len(live)


def _signal(child: Child, *, kill: bool) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
        if kill:
            child.kill()
        else:
            child.terminate()


_children: contextvars.ContextVar[Children | None] = contextvars.ContextVar(
    "host_service_children", default=None
)


@contextlib.contextmanager
def tracking(children: Children) -> Iterator[None]:
    """Programs this thread runs inside the block are registered in ``children``."""
    token = _children.set(children)
    try:
        yield
    finally:
        _children.reset(token)


@contextlib.contextmanager
def _registered(child: Child) -> Iterator[None]:
    """``child`` is in the calling thread's ``Children`` (if any) while the block runs."""
    children = _children.get()
    if children is not None:
        children.add(child)
    try:
        yield
    finally:
        if children is not None:
            children.discard(child)


def run(
    argv: Sequence[str],
    *,
    input: bytes | None = None,
    timeout: float,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> Completed:
    """Run ``argv`` to completion and keep all of its output (nothing is truncated here)."""
    args = list(argv)
    log.debug("+ %s", shlex.join(args))
    with contextlib.ExitStack() as running:
        try:
            proc = running.enter_context(
                spawn(
                    args,
                    stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env,
                    grace=0,  # a timed-out or abandoned program is killed at once
                )
            )
        except FileNotFoundError as exc:
            raise CommandMissing(f"{args[0]}: program not found", argv=args) from exc
        except PermissionError as exc:
            raise CommandMissing(f"{args[0]}: not executable", argv=args) from exc
        except OSError as exc:
            # ENOEXEC and friends: a file that is there but is not a program for this machine.
            raise CommandMissing(f"{args[0]}: cannot be run: {exc.strerror}", argv=args) from exc
        with _registered(proc):
            try:
                out, err = proc.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                text = (err or out or b"").decode("utf-8", "replace")
                raise CommandTimeout(
                    f"{Path(args[0]).name} timed out after {timeout:g} s: {shlex.join(args[1:])}",
                    argv=args,
                    output=tail(text),
                ) from None
    stdout = out.decode("utf-8", "replace")
    stderr = err.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        first = tail(stderr, 1) or tail(stdout, 1)
        shown = shlex.join(args[1:])
        shown = shown if len(shown) <= 160 else shown[:157] + "..."
        raise CommandFailed(
            f"{Path(args[0]).name} {shown} exited with {proc.returncode}: {first}",
            argv=args,
            returncode=proc.returncode,
            stdout=stdout,
            stderr=stderr,
        )
    return Completed(argv=tuple(args), returncode=proc.returncode, stdout=stdout, stderr=stderr)


def stream_lines(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """Run ``argv`` and yield its stdout line by line as it comes (log follow).

    Closing the generator (the reader went away) terminates the program; a non-zero exit
    raises ``CommandFailed`` with its stderr once the output has ended. stderr goes to a
    temporary file, not a pipe: a program that writes much of it cannot block on a full
    pipe while only stdout is read.
    """
    args = list(argv)
    log.debug("+ %s &", shlex.join(args))
    with tempfile.TemporaryFile() as errors, contextlib.ExitStack() as running:
        try:
            proc = running.enter_context(
                spawn(args, stdout=subprocess.PIPE, stderr=errors, env=env, text=True)
            )
        except OSError as exc:
            raise CommandMissing(f"{args[0]}: cannot be run: {exc.strerror}", argv=args) from exc
        finished = False
        with _registered(proc):
            assert proc.stdout is not None
            for line in proc.stdout:
                yield line.rstrip("\n")
            finished = True
            # The output ended, so the program is exiting: wait for its status (a program
            # that closed stdout and goes on is ended when the spawn block closes).
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(REAP_GRACE_SECONDS)
        running.close()
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
    if finished and proc.returncode != 0:
        raise CommandFailed(
            f"{Path(args[0]).name} exited with {proc.returncode}: {tail(stderr, 1)}",
            argv=args,
            returncode=proc.returncode,
            stdout="",
            stderr=stderr,
        )
