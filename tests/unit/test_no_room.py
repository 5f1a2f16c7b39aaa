"""isobuild.no_room: which refused writes mean "no room", and what each tells the user."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from isobuild import cli, no_room
from isobuild.errors import ExitCode

WAY_OUT = "choose another --output-dir"


@pytest.mark.parametrize(
    ("code", "no_inodes", "says"),
    [
        (errno.ENOSPC, False, "its filesystem is full (`df -h`): free some space or "),
        (errno.ENOSPC, True, "free space but no free inodes (`df -i` shows 100 %): delete files"),
        (errno.ENOSPC, None, "out of space or inodes (`df -h`, `df -i`): free some or "),
        (errno.EDQUOT, None, "your disk quota there is used up (`quota -s`)"),
        (errno.EFBIG, None, "FAT32 stops at 4 GiB), or `ulimit -f` limits file sizes: "),
        (errno.EROFS, None, "mounted read-only: remount it read-write or "),
        (errno.ENOTDIR, None, "a file stands where the path needs a directory: move it away or "),
        (errno.EACCES, None, "you may not write there: fix its permissions or "),
        (errno.EPERM, None, "you may not write there: fix its permissions or "),
        (errno.EIO, None, "check the disk (`dmesg`) or "),
    ],
    ids=[
        "full",
        "no-inodes",
        "full-or-no-inodes",
        "quota",
        "too-large",
        "read-only",
        "below-a-file",
        "denied",
        "not-permitted",
        "other",
    ],
)
def test_each_cause_has_its_cure_and_the_way_out(
    code: int, no_inodes: bool | None, says: str
) -> None:
    hint = no_room.hint(code, WAY_OUT, no_inodes=no_inodes)
    assert says in hint, hint
    assert hint.endswith(WAY_OUT)


@pytest.mark.parametrize(
    ("code", "is_no_room"),
    [(errno.ENOSPC, True), (errno.EDQUOT, True), (errno.EFBIG, True), (errno.EROFS, True),
     (errno.EIO, False), (errno.EACCES, False), (errno.ENOENT, False)],
)  # fmt: skip
def test_only_a_filesystem_that_cannot_take_the_bytes_is_no_room(
    code: int, is_no_room: bool
) -> None:
    assert no_room.is_no_room(OSError(code, os.strerror(code))) is is_no_room
    assert no_room.is_no_room(ValueError("not an OSError")) is False


def test_a_filesystem_with_inodes_left_is_not_out_of_them(tmp_path: Path) -> None:
    assert no_room.inodes_exhausted(tmp_path) is False
    # What failed to be made does not exist: its nearest existing parent is asked.
    assert no_room.inodes_exhausted(tmp_path / "never" / "made") is False


def _statvfs(files: int, free_inodes: int) -> os.statvfs_result:
    """A statvfs answer as the kernel gives one (bsize, frsize, blocks, bfree, bavail,
    files, ffree, favail, flag, namemax), with room for bytes."""
    return os.statvfs_result((4096, 4096, 1000, 500, 500, files, free_inodes, free_inodes,
                              0, 255))  # fmt: skip


@pytest.mark.parametrize(
    ("files", "free_inodes", "exhausted"),
    [(1000, 0, True), (1000, 1, False), (1, 0, True), (0, 0, False)],
    ids=["none-left", "one-left", "one-inode-fs-full", "uncounted-like-btrfs"],
)
def test_inodes_are_exhausted_only_where_they_are_counted_and_none_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: int, free_inodes: int,
    exhausted: bool,
) -> None:  # fmt: skip
    monkeypatch.setattr(no_room.os, "statvfs", lambda path: _statvfs(files, free_inodes))
    assert no_room.inodes_exhausted(tmp_path) is exhausted


def test_the_nearest_directory_that_answers_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Path] = []

    def statvfs(path: Path) -> os.statvfs_result:
        asked.append(Path(path))
        if Path(path) != tmp_path:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        return _statvfs(1000, 0)

    monkeypatch.setattr(no_room.os, "statvfs", statvfs)
    assert no_room.inodes_exhausted(tmp_path / "never" / "made") is True
    assert asked == [tmp_path / "never" / "made", tmp_path / "never", tmp_path]


def test_a_place_no_directory_of_answers_for_is_not_out_of_inodes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def statvfs(path: Path) -> os.statvfs_result:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(no_room.os, "statvfs", statvfs)
    assert no_room.inodes_exhausted(Path("/a/b")) is False


@pytest.mark.parametrize(
    ("code", "free_inodes", "cleaned_up", "hint"),
    [
        (errno.ENOSPC, 0, False, no_room.hint(errno.ENOSPC, WAY_OUT, no_inodes=True)),
        (errno.ENOSPC, 0, True, no_room.hint(errno.ENOSPC, WAY_OUT, no_inodes=True)),
        (errno.ENOSPC, 5, False, no_room.hint(errno.ENOSPC, WAY_OUT, no_inodes=False)),
        (errno.ENOSPC, 5, True, no_room.hint(errno.ENOSPC, WAY_OUT, no_inodes=None)),
        (errno.EDQUOT, 0, False, no_room.hint(errno.EDQUOT, WAY_OUT)),
    ],
    ids=["no-inodes", "no-inodes-after-cleanup", "full", "full-or-no-inodes-after-cleanup",
         "quota"],
)  # fmt: skip
def test_the_problem_says_inodes_only_when_it_saw_none_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, free_inodes: int,
    cleaned_up: bool, hint: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(no_room.os, "statvfs", lambda path: _statvfs(1000, free_inodes))
    exc = OSError(code, os.strerror(code))
    problem = no_room.problem(exc, tmp_path, "writing", WAY_OUT, cleaned_up=cleaned_up)
    assert problem.hint == hint
    assert problem.message == f"{tmp_path}: writing failed: {os.strerror(code)}"


def test_the_problem_names_the_place_and_the_reason(tmp_path: Path) -> None:
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    problem = no_room.problem(exc, tmp_path, "writing the build's files", WAY_OUT)
    assert problem.exit_code == ExitCode.ENVIRONMENT
    assert problem.message == (
        f"{tmp_path}: writing the build's files failed: No space left on device"
    )
    assert problem.hint == no_room.hint(errno.ENOSPC, WAY_OUT, no_inodes=False)


@pytest.mark.parametrize(
    ("filename", "code", "about_output"),
    [
        ("out/.isobuild-x/staging/md5sum.txt", errno.ENOSPC, True),
        ("out/.isobuild-x/staging/md5sum.txt", errno.EIO, True),  # the output's disk failing
        ("cache/artifacts/partial/x.part", errno.ENOSPC, False),
        ("outside/out", errno.ENOSPC, False),
        (None, errno.ENOSPC, True),  # a write (not an open): the caller knows where
        (None, errno.EIO, False),  # e.g. reading the base ISO
    ],
)
def test_a_write_is_within_a_directory_when_it_names_a_file_there_or_none(
    tmp_path: Path, filename: str | None, code: int, about_output: bool
) -> None:
    name = str(tmp_path / filename) if filename is not None else None
    exc = OSError(code, os.strerror(code), name)
    assert no_room.within(exc, tmp_path / "out") is about_output


@pytest.mark.parametrize(
    ("first", "second", "about_output"),
    [
        ("elsewhere/source", "out/.isobuild-x/staging/copy", True),  # a copy into it
        ("out/.isobuild-x/staging/source", "elsewhere/copy", False),  # a copy out of it
    ],
)
def test_a_call_on_two_files_is_about_the_second_the_one_written(
    tmp_path: Path, first: str, second: str, about_output: bool
) -> None:
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / first), None,
                  str(tmp_path / second))  # fmt: skip
    assert no_room.written(exc) == tmp_path / second
    assert no_room.within(exc, tmp_path / "out") is about_output


def test_what_was_written_is_the_one_file_named_or_none() -> None:
    assert no_room.written(OSError(errno.ENOSPC, "x", "/a")) == Path("/a")
    assert no_room.written(OSError(errno.ENOSPC, "x", b"/a/b")) == Path("/a/b")
    assert no_room.written(OSError(errno.ENOSPC, "x")) is None


def _failing_cli(exc: BaseException) -> click.Group:
    group = type(cli.main)(name="isobuild")  # isobuild's own group, with one command

    @group.command()
    def write() -> None:
        raise exc

    return group


def test_the_cli_makes_one_line_of_a_write_no_command_named(tmp_path: Path) -> None:
    full = tmp_path / "cache" / "x.part"
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(full))
    result = CliRunner().invoke(_failing_cli(exc), ["write"])
    assert result.exit_code == ExitCode.ENVIRONMENT
    assert result.output.splitlines() == [
        f"error: {full}: No space left on device",
        "hint: its filesystem is out of space or inodes (`df -h`, `df -i`): free some or "
        "point the command at another filesystem",
    ]


def test_the_cli_names_the_copy_that_found_no_room_not_its_source(tmp_path: Path) -> None:
    source, copy = tmp_path / "cache" / "module.ko", tmp_path / "small" / "module.ko"
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(source), None, str(copy))
    result = CliRunner().invoke(_failing_cli(exc), ["write"])
    assert result.exit_code == ExitCode.ENVIRONMENT
    assert result.output.splitlines()[0] == f"error: {copy}: No space left on device"


def test_the_cli_says_what_was_refused_when_no_file_was_named() -> None:
    exc = OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    result = CliRunner().invoke(_failing_cli(exc), ["write"])
    assert result.exit_code == ExitCode.ENVIRONMENT
    assert result.output.splitlines()[0] == "error: a write was refused: File too large"


def test_the_cli_leaves_other_os_errors_alone() -> None:
    exc = OSError(errno.EIO, os.strerror(errno.EIO))
    result = CliRunner().invoke(_failing_cli(exc), ["write"])
    assert result.exit_code == 1
    assert result.exception is exc  # a bug or a failing disk: the traceback is the evidence
