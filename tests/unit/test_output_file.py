"""isobuild.output_file: --force replaces a file an earlier run wrote, never anything else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from isobuild.errors import ConfigError, ExitCode, OutputExistsError
from isobuild.output_file import check_replaceable


def test_a_path_nothing_is_at_may_be_written(tmp_path: Path) -> None:
    check_replaceable(tmp_path / "out.iso", force=False)


def test_a_file_is_replaced_only_with_force(tmp_path: Path) -> None:
    out = tmp_path / "out.iso"
    out.write_bytes(b"old")
    with pytest.raises(OutputExistsError) as caught:
        check_replaceable(out, force=False)
    assert caught.value.exit_code == ExitCode.ENVIRONMENT
    assert caught.value.message == f"{out}: already exists"
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
