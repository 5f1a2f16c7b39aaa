"""The administrator's password stays unusable through first boot, never empty.

The rendered autoinstall's ``identity.password`` is replayed through both ways the installed
system finishes the account (``tests/fixtures/first_boot_users.py``) with the real
``useradd``, ``chpasswd`` and ``passwd`` on a scratch root.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from isobuild.config import load_config
from isobuild.installer.autoinstall import render_autoinstall
from tests.conftest import require_root, require_tool
from tests.fixtures.first_boot_users import Sequence, replay, scratch_root, shadow_password


def _tools() -> None:
    require_root("passwd/useradd --root chroot into the scratch root")
    for tool in ("useradd", "chpasswd", "passwd"):
        require_tool(tool, "passwd")


@pytest.mark.parametrize("sequence", list(Sequence), ids=lambda s: s.name.lower())
def test_the_default_admin_password_survives_first_boot_locked(
    tmp_path: Path, sequence: Sequence
) -> None:
    _tools()
    body = render_autoinstall(load_config(None)).body
    user, password = body["identity"]["username"], body["identity"]["password"]
    root = scratch_root(tmp_path / "target")
    steps = replay(root, sequence, user, password).steps
    final = shadow_password(root, user)
    assert final != "", f"empty password after first boot: {steps}"
    # Unusable: no crypt(3) output starts with '*' or '!' (and sshd does not treat '*'
    # as a locked account, so key logins keep working).
    assert final[0] in "*!", (final, steps)
    assert not any("passwd -d" in step for step in steps), steps


def test_a_bare_bang_would_have_been_emptied(tmp_path: Path) -> None:
    """The replay is faithful: the old "!" ends empty, as the issue reports."""
    _tools()
    root = scratch_root(tmp_path / "target")
    steps = replay(root, Sequence.ONE_SHOT, "alga", "!").steps
    assert shadow_password(root, "alga") == "", steps


def test_a_configured_hash_is_kept(tmp_path: Path) -> None:
    _tools()
    hashed = "$6$salt$abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ./"
    for sequence in Sequence:
        root = scratch_root(tmp_path / sequence.name)
        replay(root, sequence, "alga", hashed)
        assert shadow_password(root, "alga") == hashed
