"""A write the machine had no room for: which errors those are, and what to tell the user.

Every command writes somewhere (an output directory, the cache, an image file), and any of
those filesystems can fill up, run out of inodes, hit a quota or a file size limit, or be
read-only. The commands that know where they write turn such an ``OSError`` into one line
naming that place (:func:`problem`); the CLI turns any that escape into one line naming the
file (exit 4), never a traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from isobuild.errors import EnvironmentProblem

# The filesystem cannot take more: no blocks, no inodes, a quota, a file size limit.
NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# ... or takes nothing at all.
CANNOT_WRITE = NO_ROOM | {errno.EROFS}


def is_no_room(exc: BaseException) -> bool:
    """True for an ``OSError`` that says the filesystem written to cannot take the bytes."""
    return isinstance(exc, OSError) and exc.errno in CANNOT_WRITE


def written(exc: OSError) -> Path | None:
    """The file ``exc`` failed to write, where it names one.

    A call on two files names the one written second: a rename, a link and
    ``shutil.copyfile`` (whose failed copy names its source first, which was only read)
    give the destination as ``filename2``.
    """
    name = exc.filename2 if exc.filename2 is not None else exc.filename
    return None if name is None else Path(os.fsdecode(name))


def within(exc: OSError, directory: Path) -> bool:
    """True when ``exc`` is a write into ``directory`` (or below) that the system refused.

    An open, a rename or a copy that failed names the file written (:func:`written`); a
    write that failed names none, and counts when its errno says the filesystem had no
    room. The caller knows whether all its writes without a name went into ``directory``.
    """
    path = written(exc)
    if path is None:
        return exc.errno in CANNOT_WRITE
    return path.is_relative_to(directory)


def inodes_exhausted(path: Path) -> bool:
    """True when ``path``'s filesystem counts inodes and has none left for new files.

    ENOSPC means no blocks *or* no inodes, and the two need different cures: ``df -h``
    shows room while ``df -i`` shows 100 %. ``path`` is the nearest existing directory up
    from what was written; a filesystem that does not count inodes (btrfs) reports 0.
    """
    for candidate in (path, *path.parents):
        try:
            stats = os.statvfs(candidate)
        except OSError:
            continue
        return stats.f_files > 0 and stats.f_favail == 0
    return False


def hint(code: int | None, way_out: str, *, no_inodes: bool | None = None) -> str:
    """What to do about a write that failed with ``code`` (pure).

    ``way_out`` names the other place the command can write to, e.g. "choose another
    --output-dir"; ``no_inodes`` says whether the filesystem had no inodes left when the
    write failed (None: not known, e.g. after cleanup freed them again).
    """
    if code == errno.EFBIG:
        return (
            "its filesystem cannot hold a file this large (FAT32 stops at 4 GiB), or "
            f"`ulimit -f` limits file sizes: {way_out}"
        )
    if code == errno.ENOSPC and no_inodes:
        return (
            "its filesystem has free space but no free inodes (`df -i` shows 100 %): delete "
            f"files there or {way_out}"
        )
    if code == errno.ENOSPC and no_inodes is None:
        return (
            f"its filesystem is out of space or inodes (`df -h`, `df -i`): free some or {way_out}"
        )
    if code == errno.ENOSPC:
        return f"its filesystem is full (`df -h`): free some space or {way_out}"
    if code == errno.EDQUOT:
        return f"your disk quota there is used up (`quota -s`): free some space or {way_out}"
    if code == errno.EROFS:
        return f"its filesystem is mounted read-only: remount it read-write or {way_out}"
    if code == errno.ENOTDIR:
        return f"a file stands where the path needs a directory: move it away or {way_out}"
    if code in (errno.EACCES, errno.EPERM):
        return f"you may not write there: fix its permissions or {way_out}"
    return f"check the disk (`dmesg`) or {way_out}"


def problem(
    exc: OSError, where: Path, what: str, way_out: str, *, cleaned_up: bool = False
) -> EnvironmentProblem:
    """``where: <what> failed: <reason>`` (exit 4) with the hint for ``exc``'s errno.

    Call it where the write failed, before any cleanup: whether the filesystem had inodes
    left is read now. ``cleaned_up`` says a cleanup may have run since (and freed inodes):
    the hint then names both causes.
    """
    no_inodes: bool | None = False
    if exc.errno == errno.ENOSPC:
        no_inodes = True if inodes_exhausted(where) else (None if cleaned_up else False)
    return EnvironmentProblem(
        f"{where}: {what} failed: {exc.strerror}",
        hint=hint(exc.errno, way_out, no_inodes=no_inodes),
    )
