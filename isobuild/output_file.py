"""Where a command writes the output it is told to: never over what is not one of its files.

``--force`` means "replace the file an earlier run wrote". A directory, a device or a
FIFO at that path is something else the user keeps there: a rename would move a
directory aside and the build's cleanup would delete it with its contents, so it is
refused even with ``--force``. A path below a file is refused as given wrong. A command
that made the file's directory removes it again when it fails, as far as it made it and
it is empty.
"""

from __future__ import annotations

import contextlib
import errno
import stat
from collections.abc import Iterator
from pathlib import Path

from isobuild import no_room
from isobuild.errors import ConfigError, EnvironmentProblem, OutputExistsError

WAY_OUT = "choose another output path"
# A path nothing can be at: absent, or a name longer than the filesystem takes.
_NEVER_THERE = frozenset({errno.ENOENT, errno.ENAMETOOLONG})


def check_replaceable(path: Path, *, force: bool) -> None:
    """Refuse ``path`` if it exists and ``force`` is not set, or if it is not a file."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise _below_a_file(path, path.parent) from None
    except OSError as exc:
        raise EnvironmentProblem(f"{path}: cannot be looked at ({exc.strerror})",
                                 hint=WAY_OUT) from None  # fmt: skip
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise ConfigError(
            f"{path}: is {kind}, where the output file goes; --force replaces files only",
            hint="move it away or choose another output path",
        )
    if not force:
        raise OutputExistsError(f"{path}: already exists", hint="pass --force to replace it")


@contextlib.contextmanager
def directory_for(path: Path) -> Iterator[None]:
    """``path``'s directory, made with its missing parents; when the body fails, those this
    made are removed again (:func:`taken_back`)."""
    with taken_back(path.parent):
        make_directory(path.parent, named=path)
        yield


def make_directory(directory: Path, *, named: Path, way_out: str = WAY_OUT) -> None:
    """``directory`` and its missing parents, made for ``named`` (what the user named: the
    output, or the directory itself); one line when that cannot be: a file in the way is
    exit 2, anything else (a full disk, no permission) exit 4."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError):
        raise _below_a_file(named, directory, way_out) from None
    except OSError as exc:
        if exc.errno in no_room.CANNOT_WRITE:
            raise no_room.problem(exc, directory, "making the output's directory",
                                  way_out) from None  # fmt: skip
        raise EnvironmentProblem(
            f"{directory}: cannot make the output's directory ({exc.strerror})",
            hint=way_out,
        ) from None


@contextlib.contextmanager
def taken_back(directory: Path) -> Iterator[None]:
    """When the body fails, ``directory`` and its parents that were missing before it ran
    are removed, deepest first, as long as each is empty (the body makes them)."""
    made = []
    for candidate in (directory, *directory.parents):
        if not _missing(candidate):
            break
        made.append(candidate)
    try:
        yield
    except BaseException:
        for candidate in made:
            try:
                candidate.rmdir()
            except OSError as exc:
                if exc.errno in _NEVER_THERE:
                    continue  # the failure came before it was made
                break  # not empty: what is above it stays too
        raise


def _missing(directory: Path) -> bool:
    """True when nothing is at ``directory``; False when that cannot be told (no access):
    such a place is not one this made."""
    try:
        directory.lstat()
    except OSError as exc:
        return exc.errno in _NEVER_THERE
    return False


def _below_a_file(path: Path, directory: Path, way_out: str = WAY_OUT) -> ConfigError:
    """``path`` names a place whose ``directory`` is, or is inside, something that is not a
    directory."""
    blocker = next(
        (p for p in (directory, *directory.parents) if p.exists() and not p.is_dir()),
        directory,
    )
    return ConfigError(
        f"{path}: {blocker} is not a directory, so nothing can be written below it",
        hint=way_out,
    )
