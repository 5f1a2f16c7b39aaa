"""isobuild.output_file: --force replaces a file an earlier run wrote, never anything else;
a failed command takes back the directories it made for its output."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from isobuild import no_room, output_file
from isobuild.errors import ConfigError, EnvironmentProblem, ExitCode, OutputExistsError
from isobuild.output_file import check_replaceable, directory_for


def test_a_path_nothing_is_at_may_be_written(tmp_path: Path) -> None:
    check_replaceable(tmp_path / "out.iso", force=False)


def test_a_file_is_replaced_only_with_force(tmp_path: Path) -> None:
    out = tmp_path / "out.iso"
    out.write_bytes(b"old")
    with pytest.raises(OutputExistsError) as caught:
        check_replaceable(out, force=False)
    assert caught.value.exit_code == ExitCode.ENVIRONMENT
    assert caught.value.message == f"{out}: already exists"
    assert caught.value.hint == "pass --force to replace it"
    check_replaceable(out, force=True)


def test_a_symlink_is_replaced_itself_with_force(tmp_path: Path) -> None:
    # A rename replaces the link, not what it points to: a linked directory stays whole.
    (tmp_path / "elsewhere").mkdir()
    out = tmp_path / "out.iso"
    out.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutputExistsError):
        check_replaceable(out, force=False)
    check_replaceable(out, force=True)


@pytest.mark.parametrize("kind", ["directory", "fifo"])
@pytest.mark.parametrize("force", [False, True])
def test_what_is_not_a_file_is_refused_even_with_force(
    tmp_path: Path, kind: str, force: bool
) -> None:
    out = tmp_path / "out.iso"
    if kind == "directory":
        out.mkdir()
        what = "a directory"
    else:
        os.mkfifo(out)
        what = "not a regular file"
    with pytest.raises(ConfigError) as caught:
        check_replaceable(out, force=force)
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.message == (
        f"{out}: is {what}, where the output file goes; --force replaces files only"
    )
    assert caught.value.hint == "move it away or choose another output path"


class _Failed(Exception):
    pass


def test_the_directories_made_for_an_output_are_made(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out.iso"
    with directory_for(out):
        assert out.parent.is_dir()
        out.write_bytes(b"iso")
    assert out.read_bytes() == b"iso"  # kept: the body did not fail


def test_a_failure_removes_the_directories_it_made_and_only_those(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "keep").write_text("the user's")
    out = tmp_path / "a" / "b" / "c" / "out.iso"
    with pytest.raises(_Failed), directory_for(out):
        raise _Failed
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["keep"]


def test_a_directory_that_is_not_empty_after_a_failure_stays_with_those_above(
    tmp_path: Path,
) -> None:
    out = tmp_path / "a" / "b" / "out.iso"

    def fail_after_someone_wrote_beside_it() -> None:
        (tmp_path / "a" / "other").write_text("written meanwhile by someone else")
        raise _Failed

    with pytest.raises(_Failed), directory_for(out):
        fail_after_someone_wrote_beside_it()
    assert not (tmp_path / "a" / "b").exists()
    assert (tmp_path / "a" / "other").read_text() == "written meanwhile by someone else"


def test_an_interrupt_removes_them_too(tmp_path: Path) -> None:
    out = tmp_path / "a" / "out.iso"
    with pytest.raises(KeyboardInterrupt), directory_for(out):
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_directory_that_was_there_stays_after_a_failure(tmp_path: Path) -> None:
    with pytest.raises(_Failed), directory_for(tmp_path / "out.iso"):
        raise _Failed
    assert tmp_path.is_dir()


def test_a_path_below_a_file_is_refused_as_given_wrong(tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("a file")
    out = tmp_path / "notes" / "deeper" / "out.iso"
    with pytest.raises(ConfigError) as refused:
        check_replaceable(out, force=True)
    assert refused.value.exit_code == ExitCode.USAGE
    assert refused.value.message == (
        f"{out}: {tmp_path / 'notes'} is not a directory, so nothing can be written below it"
    )
    with pytest.raises(ConfigError) as again, directory_for(out):
        pass
    assert refused.value.hint == "choose another output path"
    assert again.value.message == refused.value.message
    assert (tmp_path / "notes").read_text() == "a file"


def test_a_path_that_cannot_be_looked_at_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / ("x" * 300)  # longer than any filesystem's names
    with pytest.raises(EnvironmentProblem) as refused:
        check_replaceable(out, force=False)
    assert refused.value.exit_code == ExitCode.ENVIRONMENT
    assert refused.value.message == f"{out}: cannot be looked at (File name too long)"
    assert refused.value.hint == "choose another output path"


def test_a_file_in_the_way_that_went_meanwhile_is_named_as_the_directory(tmp_path: Path) -> None:
    # The directory could not be made because of a file that is gone by the time the
    # message is written: the message names the directory that was to be made.
    out = tmp_path / "a" / "out.iso"
    assert output_file._below_a_file(out, out.parent).message == (
        f"{out}: {out.parent} is not a directory, so nothing can be written below it"
    )


def test_a_directory_that_cannot_be_made_is_one_line_and_nothing_stays(tmp_path: Path) -> None:
    out = tmp_path / "a" / ("x" * 300) / "out.iso"
    with pytest.raises(EnvironmentProblem) as refused, directory_for(out):
        pass
    assert refused.value.exit_code == ExitCode.ENVIRONMENT
    assert refused.value.message == (
        f"{out.parent}: cannot make the output's directory (File name too long)"
    )
    assert list(tmp_path.iterdir()) == []  # not even tmp_path/a, which could be made


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_directory_the_disk_has_no_room_for_names_it_with_the_cure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    # A full or read-only disk cannot be had in a unit test: the mkdir's answer is given.
    wanted = tmp_path / "out"

    def refused(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code), str(self))

    monkeypatch.setattr(Path, "mkdir", refused)
    with pytest.raises(EnvironmentProblem) as caught:
        output_file.make_directory(wanted, named=wanted / "x.iso", way_out="go elsewhere")
    assert caught.value.exit_code == ExitCode.ENVIRONMENT
    assert caught.value.message == (
        f"{wanted}: making the output's directory failed: {os.strerror(code)}"
    )
    assert caught.value.hint == no_room.hint(code, "go elsewhere", no_inodes=False)
