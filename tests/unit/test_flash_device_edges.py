"""Device classification where the recorded machines do not go: small sysfs trees built
here, one for each way a disk names itself, hangs off a bus or rests on others."""

from __future__ import annotations

from pathlib import Path

import pytest

from isobuild.flash.devices import Disk, Transport, scan


class Tree:
    """A minimal /sys, /run/udev and /proc under ``root``, built one block device at a time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mountinfo: list[str] = []
        self.swaps: list[str] = []

    def block(
        self,
        name: str,
        devno: str,
        *,
        under: str = "virtual/block",
        partition_of: str | None = None,
        files: dict[str, str | bytes] | None = None,
        slaves: tuple[str, ...] = (),
        udev: tuple[str, ...] = (),
    ) -> Path:
        """One block device; ``under`` is its parent's path below /sys/devices."""
        devices = self.root / "sys/devices"
        if partition_of is not None:
            directory = (self.root / "sys/class/block" / partition_of).resolve() / name
        else:
            directory = devices / under / "block" / name
        directory.mkdir(parents=True)
        attributes: dict[str, str | bytes] = {"dev": devno, "size": "2048", **(files or {})}
        if partition_of is not None:
            attributes.setdefault("partition", name[-1])
        for attribute, value in attributes.items():
            path = directory / attribute
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(value, bytes):
                path.write_bytes(value)
            else:
                path.write_text(value + "\n")
        (directory / "holders").mkdir()
        (directory / "slaves").mkdir()
        for slave in slaves:
            (directory / "slaves" / slave).symlink_to(self.root / "sys/class/block" / slave)
            holders = (self.root / "sys/class/block" / slave).resolve() / "holders"
            if holders.is_dir():
                (holders / name).symlink_to(directory)
        for link in (self.root / "sys/class/block" / name, self.root / "sys/dev/block" / devno):
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(directory)
        if udev:
            data = self.root / "run/udev/data" / f"b{devno}"
            data.parent.mkdir(parents=True, exist_ok=True)
            data.write_text("".join(line + "\n" for line in udev))
        return directory

    def usb(self, path: str, **attributes: str) -> str:
        """A USB device at ``devices/path`` (``idVendor`` and the strings it reports)."""
        directory = self.root / "sys/devices" / path
        directory.mkdir(parents=True)
        for attribute, value in {"idVendor": "0781", **attributes}.items():
            (directory / attribute).write_text(value + "\n")
        return path

    def scan(self) -> dict[str, Disk]:
        proc = self.root / "proc"
        (proc / "self").mkdir(parents=True, exist_ok=True)
        (proc / "self/mountinfo").write_text("".join(line + "\n" for line in self.mountinfo))
        swaps = ["Filename\tType\tSize\tUsed\tPriority", *self.swaps]
        (proc / "swaps").write_text("".join(line + "\n" for line in swaps))
        return {d.name: d for d in scan(self.root)}

    def mounted(self, devno: str, point: str, source: str, fstype: str = "ext4") -> None:
        self.mountinfo.append(f"30 1 {devno} / {point} rw,relatime shared:1 - {fstype} {source} rw")


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path / "root")


USB_PORT = "pci0000:00/0000:00:14.0/usb1/1-2"
USB_DISK = f"{USB_PORT}/1-2:1.0/host6/target6:0:0/6:0:0:0"


def test_a_stick_with_blank_scsi_strings_is_named_by_its_usb_device(tree: Tree) -> None:
    tree.usb(USB_PORT, manufacturer="Kingston", product="DataTraveler 3.0",
             serial="E0D55EA574F1E3B1")  # fmt: skip
    tree.block("sda", "8:0", under=USB_DISK, files={"device/serial": "SCSI-SERIAL"})
    disk = tree.scan()["sda"]
    assert disk.transport is Transport.USB
    assert (disk.vendor, disk.model, disk.serial) == (
        "Kingston",
        "DataTraveler 3.0",
        "E0D55EA574F1E3B1",
    )  # the USB serial is the one printed on the stick's packaging


def test_the_usb_device_fills_in_only_what_the_disk_does_not_say(tree: Tree) -> None:
    tree.usb(USB_PORT, manufacturer="Generic", product="Mass Storage")
    tree.block("sda", "8:0", under=USB_DISK, files={
        "device/vendor": "SanDisk", "device/model": "Ultra", "serial": "4C53",
    })  # fmt: skip
    disk = tree.scan()["sda"]
    assert (disk.vendor, disk.model, disk.serial) == ("SanDisk", "Ultra", "4C53")


def test_udev_names_what_sysfs_does_not(tree: Tree) -> None:
    tree.block("sdb", "8:16", under="pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0",
               udev=("E:ID_VENDOR_ENC=Dell\\x20Inc.", "E:ID_MODEL=PERC_H330",
                     "E:ID_SERIAL_SHORT=00a1b2"))  # fmt: skip
    disk = tree.scan()["sdb"]
    assert (disk.transport, disk.vendor, disk.model, disk.serial) == (
        Transport.SATA, "Dell Inc.", "PERC_H330", "00a1b2",
    )  # fmt: skip


def test_placeholder_vendors_are_dropped_where_they_are_placeholders(tree: Tree) -> None:
    tree.block("vdb", "253:16", under="pci0000:00/0000:00:05.0/virtio3",
               files={"device/vendor": "0x1af4"})  # fmt: skip
    tree.block("sdc", "8:32", under="pci0000:00/0000:00:17.0/ata3/host2/target2:0:0/2:0:0:0",
               files={"device/vendor": "ATA", "device/model": "Samsung SSD 870"})  # fmt: skip
    tree.usb(USB_PORT)  # an enclosure whose bridge names no manufacturer
    tree.block("sdd", "8:48", under=USB_DISK,
               files={"device/vendor": "ATA", "device/model": "CT1000MX500SSD1"})  # fmt: skip
    tree.block("sde", "8:64", under="pci0000:00/0000:00:17.0/ata4/host3/target3:0:0/3:0:0:0",
               files={"device/vendor": "ATAPI", "device/model": "DVD"})  # fmt: skip
    disks = tree.scan()
    assert (disks["vdb"].transport, disks["vdb"].vendor) == (Transport.VIRTIO, None)
    assert disks["vdb"].description == "virtio disk"
    assert (disks["sdc"].vendor, disks["sdc"].description) == (None, "Samsung SSD 870")
    # A USB-SATA bridge translates the same way: the drive's model, no "ATA".
    assert (disks["sdd"].transport, disks["sdd"].description) == (Transport.USB, "CT1000MX500SSD1")
    assert disks["sde"].vendor == "ATAPI"  # only the exact placeholder goes


@pytest.mark.parametrize(
    ("name", "under", "files", "transport"),
    [
        ("md0", "virtual", {"md/level": "raid1"}, Transport.MD),
        ("mdx", "virtual", {}, Transport.VIRTUAL),  # named md*, but no md/ directory
        ("nvme0n1", "pci0000:00/0000:00:1d.0/0000:3d:00.0", {}, Transport.NVME),
        ("nvme1n1", "virtual/nvme-fabrics/ctl/nvme1", {}, Transport.NVME),
        ("sde", "platform/host7/target7:0:0/7:0:0:0", {"device/type": "0"}, Transport.SCSI),
        ("nbd0", "virtual", {}, Transport.VIRTUAL),
        ("mmcblk0", "platform/soc/mmc_host/mmc0/mmc0:0001", {"device/type": "MMC"},
         Transport.EMMC),
        ("mmcblk1", "platform/soc/mmc_host/mmc1/mmc1:aaaa", {"device/type": "SD"}, Transport.SD),
    ],
)  # fmt: skip
def test_the_transport_comes_from_where_the_device_hangs(
    tree: Tree, name: str, under: str, files: dict[str, str | bytes], transport: Transport
) -> None:
    tree.block(name, "259:9", under=under, files=files)
    assert tree.scan()[name].transport is transport


def test_attributes_that_are_not_utf_8_are_read_not_fatal(tree: Tree) -> None:
    tree.usb(USB_PORT, manufacturer="Generic")
    tree.block("sda", "8:0", under=USB_DISK, files={"device/model": b"Flash Disk \xff\xfe"})
    assert tree.scan()["sda"].model == "Flash Disk \ufffd\ufffd"


def test_udev_properties_are_only_e_lines_and_keep_every_equals_sign(tree: Tree) -> None:
    tree.block("sda", "8:0", under=USB_DISK, udev=(
        "S:disk/by-label/a=b", "E:ID_FS_TYPE=vfat", "E:ID_FS_LABEL_ENC=a=b", "E:ID_FS_UUID=1",
    ))  # fmt: skip
    disk = tree.scan()["sda"]
    assert (disk.fstype, disk.label) == ("vfat", "a=b")


def test_a_device_without_a_number_is_skipped_not_the_rest(tree: Tree) -> None:
    tree.block("aaa", "7:9")
    (tree.root / "sys/class/block/aaa").resolve().joinpath("dev").unlink()
    tree.block("loop0", "7:0", files={"loop/backing_file": "/srv/stick.img"})
    assert list(tree.scan()) == ["loop0"]


def test_a_partition_with_unreadable_attributes_has_size_and_number_zero(tree: Tree) -> None:
    tree.block("sda", "8:0", under=USB_DISK)
    part = tree.block("sda1", "8:1", partition_of="sda")
    (part / "size").unlink()
    (part / "partition").write_text("")
    [only] = tree.scan()["sda"].partitions
    assert (only.name, only.size, only.number) == ("sda1", 0, 0)


def test_root_on_a_device_mountinfo_names_dev_root_is_found_by_its_number(tree: Tree) -> None:
    tree.block("mmcblk0", "179:0", under="platform/soc/mmc_host/mmc0/mmc0:0001",
               files={"device/type": "SD"})  # fmt: skip
    tree.block("mmcblk0p2", "179:2", partition_of="mmcblk0")
    tree.mounted("179:2", "/", "/dev/root")  # as a Raspberry Pi's kernel command line says
    disk = tree.scan()["mmcblk0"]
    assert [(u.device, u.mount, u.system) for u in disk.uses] == [("mmcblk0p2", "/", True)]


def test_swap_on_a_logical_volume_makes_its_disks_system_disks(tree: Tree) -> None:
    tree.block("sda", "8:0", under=USB_DISK)
    tree.block("sda1", "8:1", partition_of="sda")
    tree.block("dm-0", "252:0", files={"dm/name": "vg-swap"}, slaves=("sda1",))
    tree.swaps.append("/dev/mapper/vg-swap partition\t8388604\t0\t-2")
    disks = tree.scan()
    assert [(u.device, u.what, u.system) for u in disks["sda"].uses] == [
        ("dm-0 (vg-swap)", "swap", True)
    ]


def test_a_volume_group_over_three_partitions_of_two_disks_marks_both(tree: Tree) -> None:
    tree.block("nvme0n1", "259:0", under="pci0000:00/0000:00:1d.0/0000:3d:00.0")
    tree.block("nvme0n1p1", "259:1", partition_of="nvme0n1")
    tree.block("sda", "8:0", under="pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0")
    tree.block("sda1", "8:1", partition_of="sda")
    tree.block("sda2", "8:2", partition_of="sda")
    # The volume's slaves are read sorted: sda's two partitions come after nvme0n1p1 and
    # lead to sda twice; the walk must still reach nvme0n1.
    tree.block("dm-0", "252:0", files={"dm/name": "vg-root"},
               slaves=("nvme0n1p1", "sda1", "sda2"))  # fmt: skip
    tree.mounted("252:0", "/", "/dev/mapper/vg-root")
    disks = tree.scan()
    for name in ("nvme0n1", "sda", "dm-0"):
        assert [(u.device, u.mount) for u in disks[name].uses] == [("dm-0 (vg-root)", "/")]


def test_a_slave_that_vanished_is_passed_over(tree: Tree) -> None:
    tree.block("sda", "8:0", under=USB_DISK)
    tree.block("sda1", "8:1", partition_of="sda")
    volume = tree.block("dm-0", "252:0", files={"dm/name": "vg-data"}, slaves=("sda1",))
    (volume / "slaves/sdz9").symlink_to(tree.root / "sys/class/block/sdz9")  # unplugged
    tree.mounted("252:0", "/srv", "/dev/mapper/vg-data")
    assert [(u.device, u.mount) for u in tree.scan()["sda"].uses] == [("dm-0 (vg-data)", "/srv")]


def test_a_4kn_disk_keeps_its_logical_block_size_and_its_number(tree: Tree) -> None:
    tree.usb(USB_PORT)
    tree.block("sda", "8:0", under=USB_DISK, files={"queue/logical_block_size": "4096"})
    tree.block("loop3", "7:3")  # no queue/ attributes at all
    disks = tree.scan()
    assert (disks["sda"].devno, disks["sda"].logical_block_size) == ("8:0", 4096)
    assert (disks["loop3"].devno, disks["loop3"].logical_block_size) == ("7:3", 512)


def test_a_disk_whose_size_cannot_be_read_has_size_zero(tree: Tree) -> None:
    reader = tree.block("sdb", "8:16", under=USB_DISK)
    (reader / "size").unlink()
    assert tree.scan()["sdb"].size == 0  # refused as "no medium", never written blind
