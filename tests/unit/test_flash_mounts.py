"""Unmounting before a flash (--unmount): the order of the umount commands."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

from isobuild.flash.mounts import unmount
from isobuild.run import Completed


def test_mounts_inside_others_are_unmounted_first() -> None:
    commands: list[list[str]] = []

    def runner(argv: Sequence[str | PathLike[str]], **options: object) -> Completed:
        commands.append([str(a) for a in argv])
        assert options == {}  # the default: a failed umount raises, flash stops there
        return Completed(argv=tuple(commands[-1]), returncode=0, stdout="", stderr="")

    unmount(["/media/tech/STICK", "/media/tech/STICK/boot/efi", "/mnt/b", "/media/x"],
            runner=runner)  # fmt: skip
    assert commands == [
        ["umount", "/media/tech/STICK/boot/efi"],
        ["umount", "/media/tech/STICK"],
        ["umount", "/mnt/b"],
        ["umount", "/media/x"],
    ]
