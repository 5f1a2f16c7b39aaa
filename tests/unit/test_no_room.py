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
        (errno.EIO, None, "check the disk (`dmesg`) or "),
    ],
    ids=["full", "no-inodes", "full-or-no-inodes", "quota", "too-large", "read-only", "other"],
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
