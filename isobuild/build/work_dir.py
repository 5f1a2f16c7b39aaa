"""The build's private directory inside the output directory: one build at a time there.

Everything a build writes goes into ``OUTPUT_DIR/.isobuild-XXXX`` (the same filesystem as
the outputs, so the final renames are atomic) and is removed on every way out a process
has. A build that was killed (SIGKILL, the OOM killer, a power cut) has none: its directory
stays, with a partial ISO of gigabytes that ``ls`` does not show and the next space check
counts against. So a build holds an exclusive lock on the output directory while it runs
(a second build into it is refused), and with the lock held, any ``.isobuild-*`` directory
there is left by a build that no longer runs: it is removed, and the user told.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from isobuild import no_room, output_file
from isobuild.errors import EnvironmentProblem
from isobuild.flash.mounts import parse_mountinfo

log = logging.getLogger(__name__)

PREFIX = ".isobuild-"
MOUNTINFO = Path("/proc/self/mountinfo")


@contextlib.contextmanager
def private(output_dir: Path) -> Iterator[Path]:
    """A new private directory in ``output_dir`` (made if missing), removed at the end.

    On an error or interrupt the output directory, and the parents it had to make, are
    removed too when this build made them and they are empty again.
    """
    if output_dir.exists() and not output_dir.is_dir():
        raise EnvironmentProblem(f"{output_dir}: exists and is not a directory")
    # Only the directories this build made, and only while they are empty, go again.
    with output_file.taken_back(output_dir):
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _not_writable(exc, output_dir, "making it") from exc
        with _locked(output_dir) as held:
            if held:  # without the lock another build's directory could look stale
                remove_stale(output_dir)
            try:
                workdir = Path(tempfile.mkdtemp(prefix=PREFIX, dir=output_dir))
            except OSError as exc:
                raise _not_writable(exc, output_dir, "making the build's directory") from exc
            try:
                yield workdir
            finally:
                shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _locked(output_dir: Path) -> Iterator[bool]:
    """An exclusive lock on the directory itself (no lock file is left behind); yields
    False where the filesystem has no locks (some NFS setups): the build goes on."""
    fd = os.open(output_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            raise EnvironmentProblem(
                f"{output_dir}: another build is writing into it",
                hint="wait for it to finish, or choose another --output-dir",
            ) from None
        except OSError as exc:
            log.debug("%s: cannot lock it (%s); going on without the lock", output_dir, exc)
            held = False
        yield held
    finally:
        os.close(fd)  # the lock goes with the descriptor


def remove_stale(output_dir: Path, *, mountinfo: Path = MOUNTINFO) -> list[Path]:
    """Remove the ``.isobuild-*`` directories killed builds left; call it holding the lock.

    A directory something is mounted in (or under) is left alone with a warning: removing
    it would delete what the mount shows, which is not the build's.
    """
    stale = sorted(p for p in output_dir.glob(f"{PREFIX}*") if p.is_dir() and not p.is_symlink())
    if not stale:
        return []
    points = [Path(m.point) for m in parse_mountinfo(mountinfo.read_text())]
    removed = []
    for path in stale:
        resolved = path.resolve()
        inside = [p for p in points if p.is_relative_to(resolved)]
        if inside:
            log.warning("%s: left by a build that was stopped, but %s is mounted in it: "
                        "not removed", path, inside[0])  # fmt: skip
            continue
        size = sum(
            (Path(top) / name).lstat().st_size
            for top, _dirs, files in os.walk(path)  # symlinks are not followed
            for name in files
        )
        shutil.rmtree(path)
        log.warning("removed %s (%.1f MiB), left by a build that was stopped before it could "
                    "clean up", path, size / (1 << 20))  # fmt: skip
        removed.append(path)
    return removed


def _not_writable(exc: OSError, output_dir: Path, what: str) -> EnvironmentProblem:
    if exc.errno in no_room.NO_ROOM:
        return no_room.problem(exc, output_dir, what, "choose another --output-dir")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return EnvironmentProblem(
            f"{output_dir}: output directory is not writable ({exc.strerror})",
            hint="choose a writable --output-dir",
        )
    return EnvironmentProblem(
        f"{output_dir}: {what} failed ({exc.strerror})", hint="choose another --output-dir"
    )
