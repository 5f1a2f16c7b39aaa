"""Running programs (kubectl, systemctl, k3s): no shell, timeouts, whole output, stderr kept."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

TAIL_LINES = 40


def tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@dataclass(frozen=True, kw_only=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class CommandError(Exception):
    """A program could not be run, timed out or failed; ``output`` is the tail to show."""

    def __init__(self, message: str, *, argv: Sequence[str], output: str = "") -> None:
        super().__init__(message)
        self.message = message
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
    try:
        proc = subprocess.run(
            args,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            env=None if env is None else {**os.environ, **env},
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandMissing(f"{args[0]}: program not found", argv=args) from exc
    except PermissionError as exc:
        raise CommandMissing(f"{args[0]}: not executable", argv=args) from exc
    except OSError as exc:
        # ENOEXEC and friends: a file that is there but is not a program for this machine.
        raise CommandMissing(f"{args[0]}: cannot be run: {exc.strerror}", argv=args) from exc
    except subprocess.TimeoutExpired as exc:
        out = exc.stderr or exc.stdout or b""
        text = out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out)
        raise CommandTimeout(
            f"{Path(args[0]).name} timed out after {timeout:g} s: {shlex.join(args[1:])}",
            argv=args,
            output=tail(text),
        ) from exc
    stdout = proc.stdout.decode("utf-8", "replace")
    stderr = proc.stderr.decode("utf-8", "replace")
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
    raises ``CommandFailed`` with its stderr once the output has ended.
    """
    args = list(argv)
    log.debug("+ %s &", shlex.join(args))
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=None if env is None else {**os.environ, **env},
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise CommandMissing(f"{args[0]}: cannot be run: {exc.strerror}", argv=args) from exc
    assert proc.stdout is not None
    assert proc.stderr is not None
    finished = False
    try:
        for line in proc.stdout:
            yield line.rstrip("\n")
        finished = True
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        stderr = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    if finished and proc.returncode != 0:
        raise CommandFailed(
            f"{Path(args[0]).name} exited with {proc.returncode}: {tail(stderr, 1)}",
            argv=args,
            returncode=proc.returncode,
            stdout="",
            stderr=stderr,
        )
