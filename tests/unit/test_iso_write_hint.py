"""isobuild.build.steps.iso_write_hint: a write of the ISO that failed says what to do."""

from __future__ import annotations

import errno

import pytest

from isobuild import no_room
from isobuild.build.steps import iso_write_hint

WAY_OUT = "choose another --output-dir"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_running_out_of_space_after_the_space_check_says_something_else_filled_it(
    code: int,
) -> None:
    hint = iso_write_hint(code)
    assert (
        hint
        == f"free some space (the space check passed, so something else filled it) or {WAY_OUT}"
    )


@pytest.mark.parametrize(
    ("code", "no_inodes"),
    [(errno.ENOSPC, True), (errno.EFBIG, False), (errno.EROFS, False), (errno.EIO, False),
     (None, False)],
)  # fmt: skip
def test_every_other_cause_gets_the_hint_any_write_would(code: int | None, no_inodes: bool) -> None:
    # The space check counts bytes, not inodes: running out of those is not "something else".
    assert iso_write_hint(code, no_inodes=no_inodes) == no_room.hint(
        code, WAY_OUT, no_inodes=no_inodes
    )
