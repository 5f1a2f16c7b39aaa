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
