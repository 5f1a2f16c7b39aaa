"""What flash refuses, in which order, and what its prompt shows (recorded sysfs trees)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from isobuild.errors import DeviceRefused, ExitCode
from isobuild.flash.devices import Disk, find, scan
from isobuild.flash.safety import Options, Target, describe, refusal, target_for

ISO = 2_825_719_808  # the 24.04-layout bench ISO's size


def _disk(root: Path, name: str) -> Disk:
    disk = find(scan(root), name)
    assert disk is not None
    return disk


def _why(disk: Disk, *, iso: int = ISO, options: Options | None = None) -> str | None:
    problem = refusal(disk, disk.path, iso_size=iso, options=options or Options())
    if problem is None:
        return None
    assert problem.exit_code == ExitCode.ENVIRONMENT
    assert "\n" not in problem.message
    return problem.message


@pytest.fixture
def laptop(sysfs_tree: Callable[[str], Path]) -> Path:
    return sysfs_tree("laptop")


@pytest.fixture
def desktop(sysfs_tree: Callable[[str], Path]) -> Path:
    return sysfs_tree("desktop")


def test_the_system_disk_is_refused_naming_what_it_holds(laptop: Path) -> None:
    why = _why(_disk(laptop, "nvme0n1"), options=Options(allow_fixed=True, unmount=True))
    assert why == (
        "/dev/nvme0n1: holds the running system (dm-1 (ubuntu--vg-ubuntu--lv) mounted at /, "
        "nvme0n1p2 mounted at /boot, nvme0n1p1 mounted at /boot/efi): refusing to overwrite it"
    )


def test_a_swap_partition_makes_its_disk_a_system_disk(desktop: Path) -> None:
    why = _why(_disk(desktop, "sda"), options=Options(allow_fixed=True, unmount=True))
    assert why is not None
    assert "sda3 swap" in why


def test_device_mapper_volumes_are_not_disks(laptop: Path) -> None:
    assert _why(_disk(laptop, "dm-1")) == (
        "/dev/dm-1: is a device-mapper volume (LVM, LUKS), not a disk"
    )


def test_a_mounted_stick_is_refused_unless_unmount_is_given(laptop: Path) -> None:
    stick = _disk(laptop, "sda")
    assert _why(stick) == (
        "/dev/sda: has mounted filesystems (sda1 mounted at /media/tech/TECH STICK)"
    )
    assert _why(stick, iso=1 << 30, options=Options(unmount=True)) is None


def test_a_fixed_disk_needs_allow_fixed(desktop: Path) -> None:
    disk = _disk(desktop, "sdb")
    assert _why(disk) == (
        "/dev/sdb: is a fixed sata disk (ST2000DM008-2FR1, 1.8 TiB), not a USB stick or SD card"
    )
    assert _why(disk, options=Options(allow_fixed=True)) is None


def test_sticks_cards_and_usb_disks_need_no_flag(laptop: Path, desktop: Path) -> None:
    assert _why(_disk(laptop, "mmcblk0")) is None
    assert _why(_disk(desktop, "sdc")) is None


def test_too_small_names_both_sizes(laptop: Path) -> None:
    card = _disk(laptop, "mmcblk0")
    why = _why(card, iso=card.size + 1)
    assert why == (
        f"/dev/mmcblk0: is too small: 29.7 GiB ({card.size} bytes), the ISO needs 29.7 GiB "
        f"({card.size + 1} bytes)"
    )
    assert _why(card, iso=card.size) is None  # exactly the ISO's size is enough


def test_an_empty_reader_and_a_locked_card(laptop: Path, desktop: Path) -> None:
    assert _why(_disk(laptop, "sdb")) == "/dev/sdb: has no medium"
    assert _why(_disk(desktop, "sdd")) == "/dev/sdd: is read-only"


def test_held_but_not_mounted_is_in_use(laptop: Path) -> None:
    # The LUKS container's disk without its mounts: dm-0 still holds nvme0n1p3.
    (laptop / "proc/self/mountinfo").write_text("")
    why = _why(_disk(laptop, "nvme0n1"), options=Options(allow_fixed=True))
    assert why == "/dev/nvme0n1: is in use (nvme0n1p3 held by dm-0 (dm_crypt-0))"


def test_a_loop_device_is_a_target_without_allow_fixed(sysfs_tree: Callable[[str], Path]) -> None:
    root = sysfs_tree("vm-loops")
    assert _why(_disk(root, "loop1"), iso=1 << 20) is None
    assert _why(_disk(root, "vda"), options=Options(allow_fixed=True)) == (
        "/dev/vda: holds the running system (vda mounted at /): refusing to overwrite it"
    )


def test_a_partition_is_refused_naming_its_disk(laptop: Path) -> None:
    with pytest.raises(DeviceRefused) as caught:
        target_for(Path("/dev/sda1"), stat.S_IFBLK, os.makedev(8, 1), same_as_iso=False,
                   root=laptop)  # fmt: skip
    assert caught.value.message == "/dev/sda1: is partition sda1 of /dev/sda, not a whole disk"
    assert caught.value.hint is not None
    assert "/dev/sda" in caught.value.hint


def test_a_whole_disk_by_any_name_resolves_to_its_sysfs_entry(laptop: Path) -> None:
    by_id = Path("/dev/disk/by-id/usb-SanDisk_Cruzer_Blade_4C530001230518117433-0:0")
    target = target_for(by_id, stat.S_IFBLK, os.makedev(8, 0), same_as_iso=False, root=laptop)
    assert target.disk is not None
    assert target.disk.name == "sda"
    assert target.path == by_id


@pytest.mark.parametrize(
    ("mode", "what"),
    [
        (stat.S_IFCHR, "a character device"),
        (stat.S_IFDIR, "a directory"),
        (stat.S_IFIFO, "a named pipe"),
        (stat.S_IFSOCK, "a socket"),
    ],
)
def test_anything_but_a_block_device_or_a_file_is_refused(
    laptop: Path, mode: int, what: str
) -> None:
    with pytest.raises(DeviceRefused) as caught:
        target_for(Path("/dev/x"), mode, 0, same_as_iso=False, root=laptop)
    assert caught.value.message == f"/dev/x: is {what}, not a block device or a regular image file"


def test_an_image_file_is_a_target_unless_it_is_the_iso(laptop: Path) -> None:
    image = target_for(Path("stick.img"), stat.S_IFREG, 0, same_as_iso=False, root=laptop)
    assert image == Target(path=Path("stick.img"), disk=None)
    with pytest.raises(DeviceRefused, match="is the ISO itself"):
        target_for(Path("a.iso"), stat.S_IFREG, 0, same_as_iso=True, root=laptop)


def test_a_device_number_sysfs_does_not_know_is_refused(laptop: Path) -> None:
    with pytest.raises(DeviceRefused, match="block device 8:99 is not in sysfs"):
        target_for(Path("/dev/sdz"), stat.S_IFBLK, os.makedev(8, 99), same_as_iso=False,
                   root=laptop)  # fmt: skip


def test_the_prompt_shows_model_size_serial_and_partitions_with_labels(laptop: Path) -> None:
    target = Target(path=Path("/dev/sda"), disk=_disk(laptop, "sda"))
    assert describe(target) == [
        "/dev/sda (sda): SanDisk Cruzer Blade, 14.3 GiB, usb, serial 4C530001230518117433",
        '  sda1         14.3 GiB  vfat     "TECH STICK"  mounted at /media/tech/TECH STICK',
    ]


def test_the_prompt_says_when_there_is_no_partition(sysfs_tree: Callable[[str], Path]) -> None:
    root = sysfs_tree("vm-loops")
    lines = describe(Target(path=Path("/dev/loop1"), disk=_disk(root, "loop1")))
    assert lines == [
        "/dev/loop1 (loop1): loop device on /tmp/flash-rec/stick.img, 32.0 MiB, loop",
        "  no partitions found",
    ]
