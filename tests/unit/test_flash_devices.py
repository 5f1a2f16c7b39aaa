"""Device classification on sysfs/udev//proc trees of real machine layouts (tests/data/sysfs)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from isobuild.flash.devices import Disk, Transport, find, scan, sysfs_name
from isobuild.flash.mounts import parse_mountinfo, parse_swaps

GIB = 1 << 30


def _disks(root: Path) -> dict[str, Disk]:
    return {d.name: d for d in scan(root)}


@pytest.fixture
def laptop(sysfs_tree: Callable[[str], Path]) -> dict[str, Disk]:
    return _disks(sysfs_tree("laptop"))


@pytest.fixture
def desktop(sysfs_tree: Callable[[str], Path]) -> dict[str, Disk]:
    return _disks(sysfs_tree("desktop"))


@pytest.fixture
def vm(sysfs_tree: Callable[[str], Path]) -> dict[str, Disk]:
    return _disks(sysfs_tree("vm-loops"))


def test_only_whole_disks_are_listed_and_partitions_hang_off_them(
    laptop: dict[str, Disk],
) -> None:
    assert sorted(laptop) == ["dm-0", "dm-1", "mmcblk0", "nvme0n1", "sda", "sdb"]
    assert [p.name for p in laptop["nvme0n1"].partitions] == [
        "nvme0n1p1", "nvme0n1p2", "nvme0n1p3",
    ]  # fmt: skip
    assert [p.number for p in laptop["nvme0n1"].partitions] == [1, 2, 3]


def test_a_partition_without_a_filesystem_label_shows_its_name_in_the_table(
    laptop: dict[str, Disk],
) -> None:
    # udev writes the GPT name's escapes into ID_PART_ENTRY_NAME itself (no _ENC twin).
    esp = laptop["nvme0n1"].partitions[0]
    assert (esp.fstype, esp.label) == ("vfat", "EFI System Partition")


def test_a_usb_stick_with_a_mounted_partition(laptop: dict[str, Disk]) -> None:
    stick = laptop["sda"]
    assert stick.transport is Transport.USB
    assert stick.removable
    assert stick.hotplug
    assert stick.size == 30031872 * 512
    # SCSI inquiry strings are space-padded; the serial comes from the USB device.
    assert (stick.vendor, stick.model) == ("SanDisk", "Cruzer Blade")
    assert stick.serial == "4C530001230518117433"
    assert stick.description == "SanDisk Cruzer Blade"
    (part,) = stick.partitions
    assert (part.name, part.fstype, part.label) == ("sda1", "vfat", "TECH STICK")
    (use,) = stick.mounts
    assert (use.device, use.mount, use.system) == ("sda1", "/media/tech/TECH STICK", False)


def test_an_sd_card_in_a_built_in_reader_is_a_stick_though_not_flagged_removable(
    laptop: dict[str, Disk],
) -> None:
    card = laptop["mmcblk0"]
    assert card.transport is Transport.SD
    assert not card.removable  # what the MMC driver reports for SD cards
    assert card.hotplug
    assert (card.model, card.serial) == ("SC32G", "0x4a3b2c1d")
    assert card.uses == ()
    assert [(p.fstype, p.label) for p in card.partitions] == [("vfat", "CAMERA")]


def test_an_empty_card_reader_has_size_zero(laptop: dict[str, Disk]) -> None:
    reader = laptop["sdb"]
    assert (reader.transport, reader.size, reader.hotplug) == (Transport.USB, 0, True)
    assert reader.description == "Generic- SD/MMC"


def test_the_nvme_system_disk_holds_root_through_luks_and_lvm(laptop: dict[str, Disk]) -> None:
    disk = laptop["nvme0n1"]
    assert disk.transport is Transport.NVME
    assert not disk.hotplug
    assert disk.model == "SAMSUNG MZVL2512HCJQ-00BL7"
    assert disk.serial == "S64KNX0T412345"
    system = {u.mount: u.device for u in disk.uses if u.system}
    assert system == {
        "/": "dm-1 (ubuntu--vg-ubuntu--lv)",
        "/boot": "nvme0n1p2",
        "/boot/efi": "nvme0n1p1",
    }


def test_device_mapper_volumes_are_classified_as_such(laptop: dict[str, Disk]) -> None:
    crypt, root = laptop["dm-0"], laptop["dm-1"]
    assert crypt.transport is root.transport is Transport.DM
    assert crypt.description == "device-mapper volume dm_crypt-0"
    assert root.dm_name == "ubuntu--vg-ubuntu--lv"
    assert [u.mount for u in root.mounts] == ["/"]
    # The LUKS volume carries the LVM root: it holds / as well.
    assert any(u.system and u.mount == "/" for u in crypt.uses)


def test_a_swap_file_marks_no_disk(laptop: dict[str, Disk]) -> None:
    assert not any(u.what == "swap" for d in laptop.values() for u in d.uses)


def test_a_sata_system_disk_with_root_and_a_swap_partition(desktop: dict[str, Disk]) -> None:
    disk = desktop["sda"]
    assert disk.transport is Transport.SATA
    assert disk.vendor is None  # "ATA" is the SCSI translation's placeholder, not a vendor
    assert disk.model == "Samsung SSD 870"
    assert disk.serial == "S62ANJ0R123456X"  # sysfs has none for SATA: udev's
    uses = {(u.device, u.what) for u in disk.uses}
    assert uses == {
        ("sda2", "mounted at /"), ("sda1", "mounted at /boot/efi"), ("sda3", "swap"),
    }  # fmt: skip
    assert all(u.system for u in disk.uses)


def test_a_second_sata_disk_is_fixed_and_unused(desktop: dict[str, Disk]) -> None:
    disk = desktop["sdb"]
    assert (disk.transport, disk.hotplug, disk.uses) == (Transport.SATA, False, ())
    assert disk.size == 3907029168 * 512


def test_a_usb_ssd_that_says_not_removable_is_still_hotplug(desktop: dict[str, Disk]) -> None:
    disk = desktop["sdc"]
    assert not disk.removable
    assert disk.hotplug
    assert disk.description == "Samsung PSSD T7"


def test_a_write_protected_card_is_read_only(desktop: dict[str, Disk]) -> None:
    assert desktop["sdd"].read_only


def test_recorded_vm_loop_devices_virtio_root_and_zram(vm: dict[str, Disk]) -> None:
    assert vm["vda"].transport is Transport.VIRTIO
    assert [(u.mount, u.system) for u in vm["vda"].uses] == [("/", True)]
    mounted, plain = vm["loop0"], vm["loop1"]
    assert mounted.transport is plain.transport is Transport.LOOP
    assert mounted.backing_file == "/tmp/flash-rec/disk.img"
    assert [(u.device, u.mount) for u in mounted.mounts] == [("loop0", "/tmp/flash-rec/mnt")]
    assert plain.uses == ()
    assert plain.size == 32 << 20
    assert vm["loop2"].size == 0
    assert vm["zram0"].transport is Transport.VIRTUAL


def test_a_device_number_names_a_partition_and_its_disk(sysfs_tree: Callable[[str], Path]) -> None:
    root = sysfs_tree("laptop")
    assert sysfs_name(root, "8:1") == ("sda1", "sda")
    assert sysfs_name(root, "8:0") == ("sda", None)
    assert sysfs_name(root, "252:1") == ("dm-1", None)
    assert sysfs_name(root, "8:99") is None
    assert find(scan(root), "sda1") is None


def test_a_tree_without_udev_still_classifies(sysfs_tree: Callable[[str], Path]) -> None:
    root = sysfs_tree("laptop")
    for data in (root / "run/udev/data").iterdir():
        data.unlink()
    disks = _disks(root)
    assert disks["sda"].description == "SanDisk Cruzer Blade"
    assert disks["sda"].partitions[0].label is None
    assert disks["sda"].mounts[0].mount == "/media/tech/TECH STICK"


def test_mountinfo_unescapes_and_skips_malformed_lines() -> None:
    text = (
        "412 28 8:1 / /media/tech/TECH\\040STICK rw,nosuid shared:420 - vfat /dev/sda1 rw\n"
        "garbage line\n"
        "28 1 0:35 /@ / rw,relatime shared:1 - btrfs /dev/nvme0n1p2 rw,subvol=/@\n"
    )
    mounts = parse_mountinfo(text)
    assert [(m.devno, m.point, m.fstype, m.source) for m in mounts] == [
        ("8:1", "/media/tech/TECH STICK", "vfat", "/dev/sda1"),
        ("0:35", "/", "btrfs", "/dev/nvme0n1p2"),
    ]
    assert [m.system for m in mounts] == [False, True]


def test_a_btrfs_root_is_found_by_its_source_not_its_anonymous_device(
    sysfs_tree: Callable[[str], Path],
) -> None:
    root = sysfs_tree("desktop")
    mountinfo = root / "proc/self/mountinfo"
    text = mountinfo.read_text().replace(
        "29 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2",
        "29 1 0:35 /@ / rw,relatime shared:1 - btrfs /dev/sda2",
    )
    mountinfo.write_text(text)
    assert ("sda2", "/") in {(u.device, u.mount) for u in _disks(root)["sda"].uses}


def test_swaps_lists_devices_and_files() -> None:
    text = (
        "Filename\tType\tSize\tUsed\tPriority\n"
        "/dev/dm-2 partition\t8388604\t0\t-2\n"
        "/swap.img file\t4194300\t0\t-3\n"
    )
    assert parse_swaps(text) == ["/dev/dm-2", "/swap.img"]


def test_sizes_are_bytes(laptop: dict[str, Disk]) -> None:
    assert 475 * GIB < laptop["nvme0n1"].size < 477 * GIB
