"""Block devices as sysfs, udev and /proc describe them, read under a root directory.

Everything is read from files below ``root`` (``/`` on a live system): ``sys/class/block``,
``sys/dev/block``, ``run/udev/data``, ``proc/self/mountinfo`` and ``proc/swaps``, so the
unit tests classify recorded trees of real machines. No program is run.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from isobuild.flash.mounts import Mount, parse_mountinfo, parse_swaps

SECTOR = 512  # sysfs sizes are in 512-byte sectors whatever the device's block size
_HEX_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")
_ENCODED_IN_PLACE = frozenset({"ID_PART_ENTRY_NAME"})
_USB = re.compile(r"/usb\d+/")
_ATA = re.compile(r"/ata\d+/")
_VIRTIO = re.compile(r"/virtio\d+/")


class Transport(enum.StrEnum):
    """How a disk is attached; decides whether it can be a stick."""

    USB = "usb"
    SD = "sd"  # an SD card in a built-in (MMC) reader
    EMMC = "emmc"  # soldered eMMC: a system disk on many laptops and boards
    NVME = "nvme"
    SATA = "sata"
    SCSI = "scsi"
    VIRTIO = "virtio"
    LOOP = "loop"
    DM = "dm"  # device-mapper: LVM, LUKS, multipath
    MD = "md"  # software RAID
    VIRTUAL = "virtual"  # zram, ram disks, nbd


HOTPLUG = frozenset({Transport.USB, Transport.SD})
NOT_A_DISK = frozenset({Transport.DM, Transport.MD, Transport.VIRTUAL})


@dataclass(frozen=True, kw_only=True)
class Use:
    """Something that keeps a disk busy: a mount, a swap area or a stacked device."""

    device: str  # where: the partition, the disk, or a stacked device ("dm-0 (vg-root)")
    what: str  # "mounted at /media/stick", "swap", "held by dm-3"
    mount: str | None = None  # the mount point, for mounts
    system: bool = False  # /, /boot, /boot/efi, /usr, /var or swap: the running system


@dataclass(frozen=True, kw_only=True)
class Partition:
    name: str
    number: int
    size: int  # bytes
    fstype: str | None = None
    label: str | None = None


@dataclass(frozen=True, kw_only=True)
class Disk:
    """A whole block device (never a partition) and what uses it."""

    name: str
    devno: str  # "major:minor"
    size: int  # bytes; 0 for a card reader without a card
    transport: Transport
    removable: bool  # sysfs ``removable``: the medium can be taken out
    read_only: bool
    logical_block_size: int = SECTOR
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    backing_file: str | None = None  # loop devices
    dm_name: str | None = None  # device-mapper volumes
    partitions: tuple[Partition, ...] = ()
    uses: tuple[Use, ...] = ()
    fstype: str | None = None  # a filesystem on the whole disk (no partition table)
    label: str | None = None

    @property
    def path(self) -> Path:
        return Path("/dev") / self.name

    @property
    def hotplug(self) -> bool:
        """A stick or a card: removable media, or anything on USB or in an SD slot."""
        return self.removable or self.transport in HOTPLUG

    @property
    def mounts(self) -> tuple[Use, ...]:
        return tuple(u for u in self.uses if u.mount is not None)

    @property
    def description(self) -> str:
        """``SanDisk Cruzer Blade`` or the transport when the device names nothing."""
        words = " ".join(w for w in (self.vendor, self.model) if w)
        if words:
            return words
        if self.transport is Transport.LOOP:
            return f"loop device on {self.backing_file or 'nothing'}"
        if self.transport is Transport.DM:
            return f"device-mapper volume {self.dm_name or '?'}"
        return f"{self.transport} disk"


@dataclass
class _Node:
    name: str
    directory: Path  # the device's sysfs directory, symlinks resolved
    devno: str
    partition_of: str | None
    holders: list[str] = field(default_factory=list)
    slaves: list[str] = field(default_factory=list)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(p.name for p in path.iterdir())
    except OSError:
        return []


def _udev(root: Path, devno: str) -> dict[str, str]:
    """The ``E:`` properties udev recorded for a block device (empty without udev)."""
    text = _read(root / "run/udev/data" / f"b{devno}") or ""
    props = {}
    for line in text.splitlines():
        if line.startswith("E:") and "=" in line:
            key, value = line[2:].split("=", 1)
            props[key] = value
    return props


def udev_text(props: Mapping[str, str], key: str) -> str | None:
    """A udev string, from its ``_ENC`` form (``\\x20`` escapes) when there is one.

    A partition's name in its table has no ``_ENC`` twin: udev (and ``blkid --output
    udev``) writes the escapes into ``ID_PART_ENTRY_NAME`` itself.
    """
    encoded = props.get(key if key in _ENCODED_IN_PLACE else f"{key}_ENC")
    if encoded is not None:
        return _HEX_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), encoded).strip() or None
    value = props.get(key)
    return value.strip() if value else None


def _nodes(root: Path) -> dict[str, _Node]:
    nodes: dict[str, _Node] = {}
    for name in _listdir(root / "sys/class/block"):
        directory = (root / "sys/class/block" / name).resolve()
        devno = _read(directory / "dev")
        if devno is None:
            continue
        is_partition = (directory / "partition").exists()
        nodes[name] = _Node(
            name=name,
            directory=directory,
            devno=devno,
            partition_of=directory.parent.name if is_partition else None,
            holders=_listdir(directory / "holders"),
            slaves=_listdir(directory / "slaves"),
        )
    return nodes


def _transport(node: _Node) -> Transport:
    path = node.directory.as_posix()
    name = node.name
    if name.startswith("loop"):
        return Transport.LOOP
    if name.startswith("dm-"):
        return Transport.DM
    if name.startswith("md") and (node.directory / "md").is_dir():
        return Transport.MD
    if _USB.search(path):
        return Transport.USB
    if "/mmc_host/" in path:
        return Transport.SD if _read(node.directory / "device/type") == "SD" else Transport.EMMC
    if name.startswith("nvme"):  # namespaces are nvme<controller>n<namespace>, PCIe or fabrics
        return Transport.NVME
    if _ATA.search(path):
        return Transport.SATA
    if _VIRTIO.search(path):
        return Transport.VIRTIO
    if (node.directory / "device").exists():
        return Transport.SCSI
    return Transport.VIRTUAL


def _usb_device(directory: Path) -> Path | None:
    """The USB device (the directory with ``idVendor``) a disk hangs off, if any."""
    for parent in directory.parents:
        if (parent / "idVendor").is_file():
            return parent
    return None


def _identity(
    node: _Node, transport: Transport, props: dict[str, str]
) -> tuple[str | None, str | None, str | None]:
    """Vendor, model and serial: sysfs first (what the device says), then udev."""
    device = node.directory / "device"
    vendor = _read(device / "vendor")
    model = _read(device / "model") or _read(device / "name")
    serial = _read(device / "serial") or _read(node.directory / "serial")
    if vendor and vendor.startswith("0x"):  # a PCI/virtio vendor id says nothing to a user
        vendor = None
    if vendor == "ATA":  # SCSI-to-ATA translation's placeholder: SATA ports, USB-SATA bridges
        vendor = None
    usb = _usb_device(node.directory) if transport is Transport.USB else None
    if usb is not None:
        vendor = vendor or _read(usb / "manufacturer")
        model = model or _read(usb / "product")
        serial = _read(usb / "serial") or serial
    vendor = vendor or udev_text(props, "ID_VENDOR")
    model = model or udev_text(props, "ID_MODEL")
    serial = serial or props.get("ID_SERIAL_SHORT")
    return vendor or None, model or None, serial or None


def _partition(root: Path, node: _Node) -> Partition:
    props = _udev(root, node.devno)
    size = int(_read(node.directory / "size") or 0) * SECTOR
    number = int(_read(node.directory / "partition") or 0)
    label = udev_text(props, "ID_FS_LABEL") or udev_text(props, "ID_PART_ENTRY_NAME")
    return Partition(
        name=node.name, number=number, size=size, fstype=props.get("ID_FS_TYPE"), label=label
    )


class _Stack:
    """Which whole disks a device rests on: through partitions, device-mapper and md."""

    def __init__(self, nodes: dict[str, _Node]) -> None:
        self.nodes = nodes
        self.by_devno = {n.devno: n.name for n in nodes.values()}
        self.by_dm_name: dict[str, str] = {}
        for node in nodes.values():
            dm_name = _read(node.directory / "dm/name")
            if dm_name:
                self.by_dm_name[dm_name] = node.name

    def label(self, name: str) -> str:
        dm_name = next((k for k, v in self.by_dm_name.items() if v == name), None)
        return f"{name} ({dm_name})" if dm_name else name

    def name_of(self, devno: str, source: str) -> str | None:
        """A mounted or swapped device by number, else by its /dev path."""
        if devno in self.by_devno and not devno.startswith("0:"):
            return self.by_devno[devno]
        if source.startswith("/dev/mapper/"):
            return self.by_dm_name.get(source.removeprefix("/dev/mapper/"))
        if source.startswith("/dev/"):
            name = source.removeprefix("/dev/")
            return name if name in self.nodes else None
        return None

    def disks_under(self, name: str) -> set[str]:
        """The whole disks below ``name`` (itself when it is one and stacks on nothing)."""
        found: set[str] = set()
        todo, seen = [name], set()
        while todo:
            current = todo.pop()
            if current in seen or current not in self.nodes:
                continue
            seen.add(current)
            node = self.nodes[current]
            if node.partition_of is not None:
                todo.append(node.partition_of)
            elif node.slaves:
                todo.extend(node.slaves)
                found.add(current)  # a stacked device is a "disk" of its own as well
            else:
                found.add(current)
        return found


def scan(root: Path = Path("/")) -> list[Disk]:
    """Every whole block device under ``root`` with its partitions and what uses it."""
    nodes = _nodes(root)
    stack = _Stack(nodes)
    mounts = parse_mountinfo(_read(root / "proc/self/mountinfo") or "")
    swaps = parse_swaps(_read(root / "proc/swaps") or "")
    uses: dict[str, list[Use]] = {}

    def record(name: str, use_of: Mount | None) -> None:
        for disk in stack.disks_under(name):
            if use_of is None:
                use = Use(device=stack.label(name), what="swap", system=True)
            else:
                use = Use(
                    device=stack.label(name),
                    what=f"mounted at {use_of.point}",
                    mount=use_of.point,
                    system=use_of.system,
                )
            uses.setdefault(disk, []).append(use)

    for mount in mounts:
        name = stack.name_of(mount.devno, mount.source)
        if name is not None:
            record(name, mount)
    for area in swaps:
        name = stack.name_of("", area)
        if name is not None:
            record(name, None)

    disks = []
    for node in nodes.values():
        if node.partition_of is not None:
            continue
        parts = sorted(
            (_partition(root, n) for n in nodes.values() if n.partition_of == node.name),
            key=lambda p: p.number,
        )
        own = uses.get(node.name, [])
        busy = {u.device.split()[0] for u in own}
        held = [
            Use(device=name, what=f"held by {stack.label(holder)}")
            for name in (node.name, *(p.name for p in parts))
            for holder in nodes[name].holders
            if holder not in busy
        ]
        disks.append(_disk(root, node, tuple(parts), (*own, *held)))
    return sorted(disks, key=lambda d: d.name)


def _disk(root: Path, node: _Node, parts: tuple[Partition, ...], uses: tuple[Use, ...]) -> Disk:
    props = _udev(root, node.devno)
    transport = _transport(node)
    vendor, model, serial = _identity(node, transport, props)
    return Disk(
        name=node.name,
        devno=node.devno,
        size=int(_read(node.directory / "size") or 0) * SECTOR,
        transport=transport,
        removable=_read(node.directory / "removable") == "1",
        read_only=_read(node.directory / "ro") == "1",
        logical_block_size=int(_read(node.directory / "queue/logical_block_size") or SECTOR),
        vendor=vendor,
        model=model,
        serial=serial,
        backing_file=_read(node.directory / "loop/backing_file"),
        dm_name=_read(node.directory / "dm/name"),
        partitions=parts,
        uses=uses,
        fstype=props.get("ID_FS_TYPE"),
        label=udev_text(props, "ID_FS_LABEL"),
    )


def find(disks: Iterable[Disk], name: str) -> Disk | None:
    return next((d for d in disks if d.name == name), None)


def sysfs_name(root: Path, devno: str) -> tuple[str, str | None] | None:
    """A device number's kernel name and, for a partition, its disk's (``/sys/dev/block``)."""
    link = root / "sys/dev/block" / devno
    if not link.exists():
        return None
    directory = link.resolve()
    is_partition = (directory / "partition").exists()
    return directory.name, directory.parent.name if is_partition else None
