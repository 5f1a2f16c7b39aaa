"""Unmounting before a flash (--unmount): the order of the umount commands."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

from isobuild.flash.mounts import parse_mountinfo, unmount
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


def test_a_mountinfo_line_needs_its_type_and_source_after_the_separator() -> None:
    text = (
        "36 1 8:3 / /srv rw - ext4\n"  # no source: skipped, the rest still read
        "37 1 8:1 / /media/a rw shared:5 - vfat /dev/sda1\n"  # no super options: enough
        "38 1 8:2 / /media/b rw - ext4 /dev/sda2 rw\n"
    )
    assert [(m.point, m.source) for m in parse_mountinfo(text)] == [
        ("/media/a", "/dev/sda1"),
        ("/media/b", "/dev/sda2"),
    ]
