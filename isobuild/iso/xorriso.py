"""xorriso: argument lists (pure, golden-tested), reports, and the one-pass ISO writer."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shlex
import subprocess
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Protocol

from isobuild import interrupt
from isobuild.direct_io import writer_for
from isobuild.errors import ToolError
from isobuild.overlap import Stage
from isobuild.run import find_program, run, spawn

XORRISO = "xorriso"
PIPE_BYTES = 1 << 20  # /proc/sys/fs/pipe-max-size's default: what an unprivileged user gets
F_SETPIPE_SZ = 1031
_PROGRESS = re.compile(r"UPDATE :.*?\bWriting:\s+\d+s\s+(\d+(?:\.\d+)?)%")
_VERSION = re.compile(r"^xorriso (\S+)", re.MULTILINE)
_UPDATE = " : UPDATE : "  # xorriso's and libisofs' progress severity, below NOTE


@dataclass(frozen=True, kw_only=True)
class IsoEdit:
    """A file put on the ISO (added or replacing one): ISO path ← local file."""

    iso_path: str
    local_path: Path
    mode: int = 0o444


@dataclass(frozen=True, kw_only=True)
class Remaster:
    """Everything that decides the xorriso command line of a remaster."""

    base: Path
    volume_id: str
    joliet: bool
    edits: tuple[IsoEdit, ...]
    new_dirs: tuple[str, ...]  # directories that do not exist on the base ISO
    epoch: int


def remaster_argv(spec: Remaster) -> list[str]:
    """One pass from the base ISO to stdout, replaying its boot records (pure).

    Edited files and new directories get root ownership, fixed modes and the epoch as
    their dates, so the output depends only on the inputs (SOURCE_DATE_EPOCH covers the
    volume dates and the GPT GUIDs).
    """
    edits = sorted(spec.edits, key=lambda e: e.iso_path)
    paths = [e.iso_path for e in edits]
    dirs = sorted(spec.new_dirs)
    argv = [
        XORRISO,
        "-abort_on", "FAILURE",
        "-return_with", "SORRY", "32",
        "-report_about", "UPDATE",
        # xorriso notices the end of its write only at its next progress report: at the
        # default interval (1 s) that is up to a second after the last byte (measured: the
        # same pass took 0.95, 1.98 or 2.97 s); 0.1 s is the shortest interval it takes.
        "-pacifier", "interval=0.1",
        "-indev", os.fspath(spec.base),
        "-outdev", "-",
        "-boot_image", "any", "replay",
        "-joliet", "on" if spec.joliet else "off",
        "-volid", spec.volume_id,
    ]  # fmt: skip
    for edit in edits:
        argv += ["-map", os.fspath(edit.local_path), edit.iso_path]
    if dirs:
        argv += ["-chmod", "0555", *dirs, "--"]
    for mode in sorted({e.mode for e in edits}):
        argv += ["-chmod", f"{mode:04o}", *(e.iso_path for e in edits if e.mode == mode), "--"]
    touched = sorted({*paths, *dirs})
    if touched:
        argv += ["-chown", "0", *touched, "--", "-chgrp", "0", *touched, "--"]
        argv += ["-alter_date", "b", f"={spec.epoch}", *touched, "--"]
    argv += ["-commit"]
    return argv


def report_argv(iso: Path) -> list[str]:
    """Ask xorriso for the boot records in both forms (pure)."""
    return [
        XORRISO, "-abort_on", "FAILURE", "-indev", os.fspath(iso),
        "-report_el_torito", "plain", "-report_el_torito", "as_mkisofs",
        "-report_system_area", "plain",
    ]  # fmt: skip


def parent_dirs(iso_path: str) -> list[str]:
    """``/a/b/c`` → ``['/a', '/a/b']`` (pure)."""
    parts = PurePosixPath(iso_path).parents
    return sorted(str(p) for p in parts if str(p) != "/")


class Xorriso(Protocol):
    """The xorriso operations a build needs (a fake implements this in tests)."""

    def version(self) -> str: ...

    def report(self, iso: Path) -> str: ...

    def write(
        self, spec: Remaster, out: IO[bytes], progress: Callable[[float], None]
    ) -> WriteResult: ...


@dataclass(frozen=True, kw_only=True)
class WriteResult:
    size: int
    sha256: str


def split_report(text: str) -> tuple[str, str]:
    """The `plain` lines and the `as_mkisofs` lines of a combined report."""
    plain = [
        line
        for line in text.splitlines()
        if line.startswith(("El Torito", "System area", "MBR", "GPT", "ISO image", "Partition"))
    ]
    mkisofs = [line for line in text.splitlines() if line.startswith("-")]
    return "\n".join(plain) + "\n", "\n".join(mkisofs) + "\n"


class RealXorriso:
    """xorriso found on PATH."""

    def __init__(self) -> None:
        self.program = find_program(XORRISO)

    def version(self) -> str:
        result = run([self.program, "-version"], capture=True)
        match = _VERSION.search(result.stdout + result.stderr)
        return match.group(1) if match else "unknown"

    def report(self, iso: Path) -> str:
        argv = report_argv(iso)
        argv[0] = self.program
        return run(argv, capture=True).stdout

    def write(
        self, spec: Remaster, out: IO[bytes], progress: Callable[[float], None]
    ) -> WriteResult:
        """Run the remaster, streaming the image into ``out`` and hashing it on the way.

        Through a pipe, not ``-outdev FILE``: into a file xorriso writes the first 64 KiB
        (system area, emulated TOC) last, so hashing the file while it grows gives a wrong
        digest (measured). With ``-compliance no_emul_toc`` it writes the same bytes in
        order, but 32 KiB at a time through the page cache, which took longer than the pipe,
        also with ``-stdio_sync off`` (docs/building.md, runs S and T). The pipe carries the
        bytes strictly in order. This thread only moves the pipe into 32 MiB buffers: one
        thread writes them to ``out`` (past the page cache when it is a file, see
        isobuild.direct_io) and one hashes them, so xorriso never waits for the disk or
        for SHA-256 (see isobuild.overlap).
        """
        argv = remaster_argv(spec)
        argv[0] = self.program
        tail: deque[str] = deque(maxlen=30)
        digest = hashlib.sha256()
        size = 0
        # From the spawn on, a signal waits for a checkpoint: the stage's queues and the
        # thread start-ups take locks, and xorriso must be reaped on every way out.
        with (
            interrupt.deferred() as checkpoint,
            spawn(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={"SOURCE_DATE_EPOCH": str(spec.epoch)},
                grace=0,  # an abandoned write is killed at once; the spawn reaps it
            ) as proc,
        ):
            assert proc.stdout is not None
            assert proc.stderr is not None
            reader: threading.Thread | None = None
            try:
                with contextlib.suppress(OSError):
                    fcntl.fcntl(proc.stdout.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
                reader = threading.Thread(
                    target=drain_stderr, args=(proc.stderr, tail, progress), daemon=True
                )
                reader.start()
                fd = proc.stdout.fileno()
                direct = writer_for(out)

                def save(view: memoryview, offset: int) -> None:
                    if direct is not None:
                        direct.write(view, offset)
                    else:
                        out.write(view)

                def hash_(view: memoryview, _offset: int) -> None:
                    digest.update(view)

                with Stage(save, hash_, name="iso-write") as stage:
                    while True:
                        length = fill(fd, stage.take())
                        stage.give(length, size)
                        size += length
                        checkpoint()
                        if length < stage.chunk:
                            break
                returncode = proc.wait()
                # xorriso shares the terminal's process group: a Ctrl-C ends it too, and
                # that is an interrupt, not a failed write.
                checkpoint()
            finally:
                if proc.poll() is None:
                    # Stop it before joining the stderr reader, which waits for its end.
                    proc.kill()
                    proc.wait()
                if reader is not None:
                    reader.join(timeout=5)
        if returncode != 0:
            raise ToolError(
                f"xorriso exited with {returncode} while writing the ISO: "
                f"{shlex.join(argv[:12])} ...\n" + "\n".join(tail)
            )
        return WriteResult(size=size, sha256=digest.hexdigest())


def fill(fd: int, view: memoryview) -> int:
    """Read from a pipe until ``view`` is full or the writer closed it; the bytes read."""
    done = 0
    while done < len(view):
        got = os.readv(fd, [view[done:]])
        if got == 0:
            break
        done += got
    return done


def progress_percent(line: str) -> float | None:
    """The share written so far from one of xorriso's pacifier lines, if it is one (pure)."""
    match = _PROGRESS.search(line)
    return float(match.group(1)) if match else None


def drain_stderr(stream: IO[bytes], tail: deque[str], progress: Callable[[float], None]) -> None:
    """Drain xorriso's stderr to the end, whatever happens to the progress display.

    If nothing read it, xorriso would block on a full pipe and the writer with it; so a
    progress callback that fails (a closed terminal) only ends the progress display.
    ``tail`` keeps the last messages for an error, without the progress lines.
    """
    show = True
    for raw in stream:
        line = raw.decode("utf-8", "replace").rstrip()
        if _UPDATE not in line:  # ten progress lines a second would push the messages out
            tail.append(line)
        percent = progress_percent(line)
        if show and percent is not None:
            try:
                progress(percent)
            except Exception:  # the display is optional, draining is not
                show = False
    stream.close()
