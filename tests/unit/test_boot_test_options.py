"""`isobuild boot-test` refuses a count or a time it cannot run with, before booting anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from isobuild import cli


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--jobs", "0", "'--jobs': 0 is not in the range x>=1"),
        ("--jobs", "-3", "'--jobs': -3 is not in the range x>=1"),  # was a ValueError traceback
        ("--timeout", "0", "'--timeout': 0.0 is not a number of seconds above 0"),
        ("--timeout", "-5", "'--timeout': -5.0 is not a number of seconds above 0"),
        ("--timeout", "nan", "'--timeout': nan is not a number of seconds above 0"),
        ("--timeout", "inf", "'--timeout': inf is not a number of seconds above 0"),
    ],
)
def test_a_count_or_time_it_cannot_run_with_is_a_usage_error(
    tmp_path: Path, option: str, value: str, says: str
) -> None:
    iso = tmp_path / "a.iso"  # never read: the options are refused first
    logs = tmp_path / "logs"
    result = CliRunner().invoke(
        cli.main, ["boot-test", str(iso), option, value, "--logs", str(logs)]
    )
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert not logs.exists()


def _looks_like_an_iso(path: Path) -> Path:
    """A file with the ISO 9660 magic where check_iso looks; enough to reach the --logs
    check, which comes before any guest starts (nothing here boots)."""
    data = bytearray(64 << 10)
    data[32769:32774] = b"CD001"
    path.write_bytes(bytes(data))
    return path


def test_logs_below_a_file_are_refused_before_any_guest_starts(tmp_path: Path) -> None:
    # It was a NotADirectoryError traceback after the accelerator probe.
    iso = _looks_like_an_iso(tmp_path / "a.iso")
    notes = tmp_path / "notes"
    notes.write_text("a file")
    logs = notes / "logs"
    result = CliRunner().invoke(cli.main, ["boot-test", str(iso), "--logs", str(logs)])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        f"error: {logs}: {notes} is not a directory, so nothing can be written below it",
        "hint: choose another --logs directory",
    ]
    assert notes.read_text() == "a file"


def test_logs_that_cannot_be_made_are_one_line(tmp_path: Path) -> None:
    iso = _looks_like_an_iso(tmp_path / "a.iso")
    logs = tmp_path / ("x" * 300) / "logs"
    result = CliRunner().invoke(cli.main, ["boot-test", str(iso), "--logs", str(logs)])
    assert result.exit_code == 4, result.output
    assert result.output.splitlines() == [
        f"error: {logs}: cannot make the output's directory (File name too long)",
        "hint: choose another --logs directory",
    ]
