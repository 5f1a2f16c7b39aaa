"""Child processes for both packages: the one result type, and a spawn that always reaps."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

TAIL_LINES = 40
# How long a program gets after SIGTERM before SIGKILL when a spawn block ends early.
REAP_GRACE_SECONDS = 10.0

Stream = int | IO[Any] | None


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``: what an error shows of a program's output."""
    return "\n".join(text.strip().splitlines()[-lines:])


@dataclass(frozen=True, kw_only=True)
class Completed:
    """What a finished program left behind (whole output: callers choose what to show)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def reap(proc: subprocess.Popen[Any], grace: float = REAP_GRACE_SECONDS) -> int:
    """End ``proc`` if it still runs (SIGTERM, then SIGKILL after ``grace`` s) and wait for it.

    ``grace`` 0 kills at once. Returns the exit status; never leaves a zombie.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
            if grace > 0:
                proc.terminate()
            else:
                proc.kill()
        try:
            proc.wait(timeout=grace if grace > 0 else None)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
    return proc.returncode


@contextlib.contextmanager
def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    stdin: Stream = subprocess.DEVNULL,
    stdout: Stream = None,
    stderr: Stream = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    text: bool = False,
    grace: float = REAP_GRACE_SECONDS,
) -> Iterator[subprocess.Popen[Any]]:
    """Start ``argv`` (no shell, stdin closed unless given) for the block; reap it on every exit.

    When the block ends, however it ends, a program still running is stopped (see
    :func:`reap`) and waited for, and the pipes this spawn opened are closed. ``env``
    extends the current environment. OSError from starting it propagates (the caller
    names the program).
    """
    proc: subprocess.Popen[Any] = subprocess.Popen(
        [os.fspath(a) for a in argv],
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=None if env is None else {**os.environ, **env},
        cwd=cwd,
        text=text,
        errors="replace" if text else None,
    )
    try:
        yield proc
    finally:
        reap(proc, grace)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
