"""`isobuild standin-iso --filler-size`: sizes read, everything else refused as a usage error."""

from __future__ import annotations

import pytest

from isobuild.commands.standin_iso import parse_size
from isobuild.errors import ConfigError, ExitCode


@pytest.mark.parametrize(
    ("text", "size"),
    [("0", 0), ("4096", 4096), ("700M", 700 << 20), ("2.5G", 5 << 29), ("1KiB", 1024),
     ("2.6g", int(2.6 * (1 << 30)))],
)  # fmt: skip
def test_sizes_with_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text", ["nan", "NaN", "inf", "-inf", "infinity", "1e400", "1e300G", "lots", "", "G"]
)
def test_what_is_no_finite_size_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_size(text)
    assert caught.value.message == f"--filler-size: expected a size like 2.5G or 700M, got {text!r}"
    assert caught.value.exit_code == ExitCode.USAGE


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^--filler-size: must not be negative, got '-1M'$"):
        parse_size("-1M")
