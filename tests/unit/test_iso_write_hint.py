"""isobuild.build.steps.iso_write_hint: a write of the ISO that failed says what to do."""

from __future__ import annotations

import errno

import pytest

from isobuild.build.steps import iso_write_hint


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (errno.ENOSPC, "free some space (the space check passed, so something else filled it)"),
        (errno.EDQUOT, "free some space (the space check passed, so something else filled it)"),
        (errno.EFBIG, "cannot hold a file this large (FAT32 stops at 4 GiB), or `ulimit -f`"),
        (errno.EIO, "check the disk holding the output directory (dmesg)"),
        (None, "check the disk holding the output directory (dmesg)"),
    ],
    ids=["full", "quota", "too-large", "io-error", "no-errno"],
)
def test_each_cause_gets_its_own_hint_and_a_way_out(code: int | None, says: str) -> None:
    hint = iso_write_hint(code)
    assert says in hint, hint
    assert hint.endswith("choose another --output-dir")
