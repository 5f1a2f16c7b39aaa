"""What flash refuses, in which order, and what its prompt shows (recorded sysfs trees)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from isobuild.errors import DeviceRefused, ExitCode
from isobuild.flash.devices import Disk, Partition, Use, find, scan
from isobuild.flash.safety import (
    IsoPlace,
    Options,
    Target,
    allocated_bytes,
    check,
    describe,
    human,
    image_refusal,
    iso_place,
    refusal,
    resolve,
    target_for,
)

ISO = 2_825_719_808  # the 24.04-layout bench ISO's size
ELSEWHERE = IsoPlace(path=Path("/home/tech/alga-appliance-1.4.0.iso"), file_id=(2049, 131))


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


def test_a_stick_that_holds_the_iso_is_refused_even_with_unmount(laptop: Path) -> None:
    # The technician copied the ISO onto the stick: unmounting it and zeroing its head
    # would lose the ISO and leave the stick unusable.
    stick = _disk(laptop, "sda")
    on_it = IsoPlace(path=Path("/media/tech/TECH STICK/alga-appliance-1.4.0.iso"),
                     file_id=(2065, 12))  # fmt: skip
    for options in (Options(), Options(unmount=True)):
        problem = refusal(stick, stick.path, iso_size=1 << 30, options=options, iso=on_it)
        assert problem is not None
        assert problem.message == (
            "/dev/sda: holds the ISO being written (/media/tech/TECH STICK/"
            "alga-appliance-1.4.0.iso, on sda1, mounted at /media/tech/TECH STICK): writing "
            "would destroy it"
        )
        assert problem.hint == "copy the ISO to another disk first, then flash from there"
    elsewhere = refusal(stick, stick.path, iso_size=1 << 30, options=Options(unmount=True),
                        iso=ELSEWHERE)  # fmt: skip
    assert elsewhere is None


def test_check_refuses_a_stick_that_holds_the_iso(laptop: Path) -> None:
    stick = Target(path=Path("/dev/sda"), disk=_disk(laptop, "sda"))
    on_it = IsoPlace(path=Path("/media/tech/TECH STICK/a.iso"), file_id=(2065, 12))
    with pytest.raises(DeviceRefused, match=r"^/dev/sda: holds the ISO being written \("):
        check(stick, iso_size=1 << 30, options=Options(unmount=True), iso=on_it)


def test_the_iso_place_names_the_file_and_a_loop_devices_backing_file(
    tmp_path: Path, sysfs_tree: Callable[[str], Path]
) -> None:
    iso = tmp_path / "a.iso"
    iso.write_bytes(b"iso")
    link = tmp_path / "link.iso"
    link.symlink_to(iso)
    info = iso.stat()
    own = (info.st_dev, info.st_ino)
    loop = _disk(sysfs_tree("vm-loops"), "loop1")
    assert iso_place(link, None) == IsoPlace(path=iso, file_id=own)
    assert iso_place(link, dataclasses.replace(loop, backing_file=None)).backing_id is None
    over_iso = dataclasses.replace(loop, backing_file=str(iso))
    assert iso_place(link, over_iso).backing_id == own
    # The kernel's name for a file unlinked since (a new one may have its name now).
    deleted = dataclasses.replace(loop, backing_file=f"{iso} (deleted)")
    assert iso_place(iso, deleted).backing_id == own
    gone = dataclasses.replace(loop, backing_file=str(tmp_path / "gone.img"))
    assert iso_place(iso, gone).backing_id is None  # cannot be looked at: not the ISO


def test_what_an_image_holds_on_disk_counts_512_byte_units(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.img"
    with sparse.open("wb") as handle:
        handle.truncate(1 << 30)
    assert allocated_bytes(sparse) == 0
    written = tmp_path / "written.img"
    written.write_bytes(os.urandom(1 << 20))
    assert allocated_bytes(written) == written.stat().st_blocks * 512
    assert allocated_bytes(written) >= 1 << 20


def test_a_loop_device_over_the_iso_file_is_refused(sysfs_tree: Callable[[str], Path]) -> None:
    loop = _disk(sysfs_tree("vm-loops"), "loop1")
    over_iso = dataclasses.replace(ELSEWHERE, backing_id=ELSEWHERE.file_id)
    problem = refusal(loop, loop.path, iso_size=1 << 20, options=Options(), iso=over_iso)
    assert problem is not None
    assert problem.message == (
        "/dev/loop1: holds the ISO being written (/home/tech/alga-appliance-1.4.0.iso, as the "
        "loop device's backing file): writing would destroy it"
    )
    over_other = dataclasses.replace(ELSEWHERE, backing_id=(2049, 999))
    assert refusal(loop, loop.path, iso_size=1 << 20, options=Options(), iso=over_other) is None


def test_the_running_system_is_named_before_the_iso_it_holds(laptop: Path) -> None:
    system = _disk(laptop, "nvme0n1")
    problem = refusal(system, system.path, iso_size=ISO, iso=ELSEWHERE,
                      options=Options(allow_fixed=True, unmount=True))  # fmt: skip
    assert problem is not None
    assert problem.message.startswith("/dev/nvme0n1: holds the running system (")


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


def test_a_disk_gone_from_the_block_class_is_refused(laptop: Path) -> None:
    # Unplugged between the two reads: /sys/dev/block still names it, the disks do not.
    (laptop / "sys/class/block/sdb").unlink()
    with pytest.raises(DeviceRefused) as caught:
        target_for(Path("/dev/sdb"), stat.S_IFBLK, os.makedev(8, 16), same_as_iso=False,
                   root=laptop)  # fmt: skip
    assert caught.value.message == "/dev/sdb: sdb is not a whole disk in sysfs"


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


def _hint(root: Path, name: str, *, iso: int = ISO, options: Options | None = None) -> str | None:
    disk = _disk(root, name)
    problem = refusal(disk, disk.path, iso_size=iso, options=options or Options())
    assert problem is not None
    return problem.hint


def test_every_refusal_says_what_to_do(laptop: Path, desktop: Path) -> None:
    system = Options(allow_fixed=True, unmount=True)
    assert _hint(laptop, "dm-1") == "name the USB stick itself (`isobuild flash --list`)"
    assert _hint(laptop, "nvme0n1", options=system) == "`isobuild flash --list` shows the sticks"
    assert _hint(laptop, "sda") == "unmount them first, or pass --unmount to have flash do it"
    assert _hint(desktop, "sdb") == "pass --allow-fixed if this really is the disk to overwrite"
    assert _hint(laptop, "sdb") == "insert the card or stick"
    assert _hint(desktop, "sdd") == "an SD card's lock switch may be on: slide it up"
    assert _hint(laptop, "mmcblk0", iso=1 << 40) == "use a bigger stick"
    (laptop / "proc/self/mountinfo").write_text("")
    assert _hint(laptop, "nvme0n1", options=Options(allow_fixed=True)) == (
        "close what uses it first (vgchange -an, cryptsetup close, mdadm --stop)"
    )


def test_check_raises_the_refusal_for_the_path_given_and_passes_the_rest(
    laptop: Path, tmp_path: Path
) -> None:
    card = _disk(laptop, "mmcblk0")
    by_id = Path("/dev/disk/by-id/mmc-SD32G_0x1234")
    check(Target(path=by_id, disk=card), iso_size=card.size, options=Options(), iso=ELSEWHERE)
    with pytest.raises(DeviceRefused) as caught:
        check(
            Target(path=by_id, disk=card), iso_size=card.size + 1, options=Options(), iso=ELSEWHERE
        )
    assert caught.value.message.startswith(f"{by_id}: is too small: 29.7 GiB")
    system = Target(path=Path("/dev/nvme0n1"), disk=_disk(laptop, "nvme0n1"))
    with pytest.raises(DeviceRefused, match=r"^/dev/nvme0n1: holds the running system \("):
        check(system, iso_size=ISO, options=Options(allow_fixed=True, unmount=True), iso=ELSEWHERE)
    stick = Target(path=Path("/dev/sda"), disk=_disk(laptop, "sda"))
    with pytest.raises(DeviceRefused, match=r"^/dev/sda: has mounted filesystems"):
        check(stick, iso_size=1 << 30, options=Options(), iso=ELSEWHERE)
    check(stick, iso_size=1 << 30, options=Options(unmount=True), iso=ELSEWHERE)
    image = tmp_path / "stick.img"
    image.write_bytes(bytes(4096))
    # An image needs no more than the ISO's size.
    check(Target(path=image, disk=None), iso_size=4096, options=Options(), iso=ELSEWHERE)
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(DeviceRefused, match=rf"^{image}: its filesystem has "):
        check(Target(path=image, disk=None), iso_size=4096 + 2 * free + (1 << 30),
              options=Options(), iso=ELSEWHERE)  # fmt: skip


def test_an_image_gone_since_it_was_resolved_is_refused_in_one_line(tmp_path: Path) -> None:
    image = tmp_path / "stick.img"
    image.write_bytes(bytes(4096))
    target = resolve(image, tmp_path / "x.iso")
    image.unlink()
    with pytest.raises(DeviceRefused) as caught:
        check(target, iso_size=4096, options=Options(), iso=ELSEWHERE)
    assert caught.value.message == f"{image}: cannot look at it (No such file or directory)"


def test_an_image_file_needs_room_for_the_part_of_the_iso_it_does_not_hold() -> None:
    image = Path("/media/usb/stick.img")
    gib = 1 << 30
    # A sparse image (`truncate -s 8G`) holds nothing yet: the whole ISO must fit.
    assert image_refusal(image, iso_size=ISO, allocated=0, free=ISO) is None
    refused = image_refusal(image, iso_size=ISO, allocated=0, free=ISO - 1)
    assert refused is not None
    assert refused.exit_code == ExitCode.ENVIRONMENT
    assert refused.message == (
        f"{image}: its filesystem has 2.6 GiB free, and the ISO (2.6 GiB) needs 2.6 GiB more "
        "in this image file"
    )
    assert refused.hint == "free space there or put the image on another filesystem"
    # What the image holds already is overwritten in place.
    assert image_refusal(image, iso_size=ISO, allocated=2 * gib, free=ISO - 2 * gib) is None
    short = image_refusal(image, iso_size=ISO, allocated=2 * gib, free=gib // 2)
    assert short is not None
    assert short.message.endswith("needs 646.8 MiB more in this image file")
    assert image_refusal(image, iso_size=ISO, allocated=8 * gib, free=0) is None


def test_resolve_looks_at_the_path_itself(tmp_path: Path, laptop: Path) -> None:
    iso = tmp_path / "appliance.iso"
    iso.write_bytes(b"iso")
    image = tmp_path / "stick.img"
    image.write_bytes(b"")
    assert resolve(image, iso, root=laptop) == Target(path=image, disk=None)
    assert resolve(image, tmp_path / "gone.iso", root=laptop) == Target(path=image, disk=None)
    other_name = tmp_path / "other-name.iso"
    other_name.hardlink_to(iso)
    for same in (iso, other_name):
        with pytest.raises(DeviceRefused) as caught:
            resolve(same, iso, root=laptop)
        assert (caught.value.message, caught.value.hint) == (
            f"{same}: is the ISO itself",
            "name the stick or image",
        )


def test_resolve_refuses_what_is_missing_or_unreadable_and_what_is_no_file(
    tmp_path: Path, laptop: Path
) -> None:
    iso = tmp_path / "appliance.iso"
    iso.write_bytes(b"iso")
    missing = tmp_path / "sdz"
    with pytest.raises(DeviceRefused) as caught:
        resolve(missing, iso, root=laptop)
    assert (caught.value.message, caught.value.hint) == (
        f"{missing}: does not exist",
        "`isobuild flash --list` shows the sticks; an image file must exist already "
        "(truncate -s 8G stick.img)",
    )
    below_a_file = iso / "x"
    with pytest.raises(DeviceRefused) as caught:
        resolve(below_a_file, iso, root=laptop)
    assert caught.value.message == f"{below_a_file}: cannot look at it (Not a directory)"
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(DeviceRefused) as caught:
        resolve(pipe, iso, root=laptop)
    assert (caught.value.message, caught.value.hint) == (
        f"{pipe}: is a named pipe, not a block device or a regular image file",
        "`isobuild flash --list` shows the sticks",
    )


def test_resolve_finds_a_block_device_by_its_device_number(tmp_path: Path, laptop: Path) -> None:
    node = tmp_path / "my-stick"
    try:
        os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(8, 0))
    except PermissionError:
        pytest.skip("making a device node needs CAP_MKNOD (root)")
    target = resolve(node, tmp_path / "appliance.iso", root=laptop)
    assert target.path == node
    assert target.disk is not None
    assert target.disk.name == "sda"


def test_a_file_type_without_a_name_is_still_refused(laptop: Path) -> None:
    with pytest.raises(DeviceRefused) as caught:
        target_for(Path("/dev/x"), 0, 0, same_as_iso=False, root=laptop)
    assert (
        caught.value.message == "/dev/x: is not a file, not a block device or a regular image file"
    )


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        ((1 << 20) - 1, "1024.0 KiB"),
        (1 << 20, "1.0 MiB"),
        (15_376_000_000, "14.3 GiB"),
        (1 << 40, "1.0 TiB"),
        (1 << 50, "1024.0 TiB"),
    ],
)
def test_sizes_are_shown_in_binary_units(size: int, shown: str) -> None:
    assert human(size) == shown


def test_the_prompt_shows_a_whole_disk_filesystem_and_unlabelled_partitions(laptop: Path) -> None:
    stick = _disk(laptop, "sda")
    bare = dataclasses.replace(stick, partitions=(), uses=(), fstype="exfat", label="FILES")
    assert describe(Target(path=Path("/dev/sda"), disk=bare))[1:] == ['  whole disk: exfat "FILES"']
    unlabelled = dataclasses.replace(bare, label=None)
    assert describe(Target(path=Path("/dev/sda"), disk=unlabelled))[1:] == ["  whole disk: exfat"]
    parts = (
        Partition(name="sda1", number=1, size=1 << 30),
        Partition(name="sda2", number=2, size=2 << 30, fstype="ext4"),
    )
    mounted = (
        Use(device="sda2", what="mounted at /mnt/a", mount="/mnt/a"),
        Use(device="sda2", what="mounted at /mnt/b", mount="/mnt/b"),
    )
    disk = dataclasses.replace(stick, partitions=parts, uses=mounted, fstype=None, label=None)
    assert describe(Target(path=Path("/dev/sda"), disk=disk))[1:] == [
        "  sda1          1.0 GiB  -        (no label)",
        "  sda2          2.0 GiB  ext4     (no label)  mounted at /mnt/a, mounted at /mnt/b",
    ]
