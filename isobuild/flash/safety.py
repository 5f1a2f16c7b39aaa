"""Which targets `flash` may overwrite: the checks, in order, and what the prompt shows."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from isobuild.errors import DeviceRefused
from isobuild.flash.devices import NOT_A_DISK, Disk, Transport, Use, find, scan, sysfs_name

_NOT_A_DISK_WHAT = {
    Transport.DM: "a device-mapper volume (LVM, LUKS)",
    Transport.MD: "a software RAID array",
    Transport.VIRTUAL: "a virtual block device (zram, ram disk, nbd)",
}
_FILE_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)


@dataclass(frozen=True, kw_only=True)
class Options:
    """What the user allowed on the command line."""

    allow_fixed: bool = False
    unmount: bool = False


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where the ISO goes: a whole block device (``disk``) or a regular image file."""

    path: Path
    disk: Disk | None  # None: an image file

    @property
    def is_device(self) -> bool:
        return self.disk is not None


def human(n: float) -> str:
    """Sizes as people read them on a stick's label: GB is 10^9 there, GiB here."""
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} TiB"


def resolve(path: Path, iso: Path, *, root: Path = Path("/")) -> Target:
    """What ``path`` is; a partition, a missing path or anything else odd is refused."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise DeviceRefused(
            f"{path}: does not exist",
            hint="`isobuild flash --list` shows the sticks; an image file must exist already "
            "(truncate -s 8G stick.img)",
        ) from None
    except OSError as exc:
        raise DeviceRefused(f"{path}: cannot look at it ({exc.strerror})") from None
    same = stat.S_ISREG(info.st_mode) and iso.exists() and path.samefile(iso)
    return target_for(path, info.st_mode, info.st_rdev, same_as_iso=same, root=root)


def target_for(path: Path, mode: int, rdev: int, *, same_as_iso: bool, root: Path) -> Target:
    """The target a path of this file type and device number is, per sysfs under ``root``."""
    if stat.S_ISREG(mode):
        if same_as_iso:
            raise DeviceRefused(f"{path}: is the ISO itself", hint="name the stick or image")
        return Target(path=path, disk=None)
    if not stat.S_ISBLK(mode):
        kind = next((what for test, what in _FILE_KINDS if test(mode)), "not a file")
        raise DeviceRefused(
            f"{path}: is {kind}, not a block device or a regular image file",
            hint="`isobuild flash --list` shows the sticks",
        )
    devno = f"{os.major(rdev)}:{os.minor(rdev)}"
    names = sysfs_name(root, devno)
    if names is None:
        raise DeviceRefused(f"{path}: block device {devno} is not in sysfs")
    name, disk_name = names
    if disk_name is not None:
        raise DeviceRefused(
            f"{path}: is partition {name} of /dev/{disk_name}, not a whole disk",
            hint=f"name the disk: /dev/{disk_name} (everything on it is replaced)",
        )
    disk = find(scan(root), name)
    if disk is None:
        raise DeviceRefused(f"{path}: {name} is not a whole disk in sysfs")
    return Target(path=path, disk=disk)


def refusal(
    disk: Disk, path: Path, *, iso_size: int, options: Options, iso: IsoPlace | None = None
) -> DeviceRefused | None:
    """Why ``disk`` must not be written, the most serious reason first; None: it may be."""
    if disk.transport in NOT_A_DISK:
        return DeviceRefused(
            f"{path}: is {_NOT_A_DISK_WHAT[disk.transport]}, not a disk",
            hint="name the USB stick itself (`isobuild flash --list`)",
        )
    system = [u for u in disk.uses if u.system]
    if system:
        return DeviceRefused(
            f"{path}: holds the running system ({_uses(system)}): refusing to overwrite it",
            hint="`isobuild flash --list` shows the sticks",
        )
    held_iso = iso_refusal(disk, path, iso) if iso is not None else None
    if held_iso is not None:  # before the mounts: --unmount would not make it right
        return held_iso
    if disk.mounts and not options.unmount:
        return DeviceRefused(
            f"{path}: has mounted filesystems ({_uses(disk.mounts)})",
            hint="unmount them first, or pass --unmount to have flash do it",
        )
    held = [u for u in disk.uses if u.mount is None]
    if held:
        return DeviceRefused(
            f"{path}: is in use ({_uses(held)})",
            hint="close what uses it first (vgchange -an, cryptsetup close, mdadm --stop)",
        )
    if not disk.hotplug and disk.transport is not Transport.LOOP and not options.allow_fixed:
        return DeviceRefused(
            f"{path}: is a fixed {disk.transport} disk ({disk.description}, {human(disk.size)}),"
            " not a USB stick or SD card",
            hint="pass --allow-fixed if this really is the disk to overwrite",
        )
    if disk.size == 0:
        return DeviceRefused(f"{path}: has no medium", hint="insert the card or stick")
    if disk.read_only:
        return DeviceRefused(
            f"{path}: is read-only", hint="an SD card's lock switch may be on: slide it up"
        )
    if disk.size < iso_size:
        return DeviceRefused(
            f"{path}: is too small: {human(disk.size)} ({disk.size} bytes), the ISO needs "
            f"{human(iso_size)} ({iso_size} bytes)",
            hint="use a bigger stick",
        )
    return None


@dataclass(frozen=True, kw_only=True)
class IsoPlace:
    """Where the ISO being written lives, to tell whether the target holds it."""

    path: Path  # symlinks resolved
    file_id: tuple[int, int]  # (st_dev, st_ino)
    backing_id: tuple[int, int] | None = None  # the target loop device's backing file's


def where_iso_is(disk: Disk, iso: IsoPlace) -> str | None:
    """How ``disk`` holds the ISO (pure): writing it would destroy the ISO mid-write.

    A technician who copied the ISO onto the stick and then flashes that stick, or a
    loop device set up over the ISO file itself: the first write (the zeroed head) would
    cut the ISO, the stick would be left unusable and the ISO lost.
    """
    for use in disk.mounts:
        if use.mount is not None and iso.path.is_relative_to(use.mount):
            return f"on {use.device}, {use.what}"
    if iso.backing_id is not None and iso.backing_id == iso.file_id:
        return "as the loop device's backing file"
    return None


def iso_refusal(disk: Disk, path: Path, iso: IsoPlace) -> DeviceRefused | None:
    """Refuse a target that holds the ISO (pure); None when it does not."""
    where = where_iso_is(disk, iso)
    if where is None:
        return None
    return DeviceRefused(
        f"{path}: holds the ISO being written ({iso.path}, {where}): writing would destroy it",
        hint="copy the ISO to another disk first, then flash from there",
    )


def iso_place(iso: Path, disk: Disk | None) -> IsoPlace:
    """The ISO's place on the live system, and the backing file of a loop ``disk``."""
    info = iso.stat()
    backing = None
    if disk is not None and disk.backing_file:
        # The kernel names the file as it was opened; " (deleted)" once it is unlinked.
        with contextlib.suppress(OSError):
            held = Path(disk.backing_file.removesuffix(" (deleted)")).stat()
            backing = (held.st_dev, held.st_ino)
    return IsoPlace(path=iso.resolve(), file_id=(info.st_dev, info.st_ino), backing_id=backing)


def _uses(uses: Iterable[Use]) -> str:
    return ", ".join(f"{u.device} {u.what}" for u in uses)


def image_refusal(path: Path, *, iso_size: int, allocated: int, free: int) -> DeviceRefused | None:
    """Why the image file ``path`` cannot take the ISO: no room on its filesystem (pure).

    ``allocated`` is what the file holds on disk already (an image made with ``truncate``
    holds nothing) and ``free`` what its filesystem has left: the ISO's bytes need at least
    the difference, so an image that would fill the filesystem halfway through the write is
    refused before anything is written. The write still reports a full filesystem clearly,
    should something else fill it meanwhile.
    """
    needed = iso_size - allocated
    if needed <= free:
        return None
    return DeviceRefused(
        f"{path}: its filesystem has {human(free)} free, and the ISO ({human(iso_size)}) "
        f"needs {human(needed)} more in this image file",
        hint="free space there or put the image on another filesystem",
    )


def allocated_bytes(path: Path) -> int:
    """What ``path`` holds on disk: ``st_blocks`` counts 512-byte units whatever the
    filesystem's block size (a ``truncate``d image holds none)."""
    return path.stat().st_blocks * 512


def check(target: Target, *, iso_size: int, options: Options, iso: IsoPlace) -> None:
    """Raise the refusal for ``target``, if there is one."""
    if target.disk is not None:
        problem = refusal(target.disk, target.path, iso_size=iso_size, options=options, iso=iso)
    else:
        try:  # free as `df` shows it, and as the build's own space check counts it
            free = shutil.disk_usage(target.path).free
            allocated = allocated_bytes(target.path)
        except OSError as exc:  # removed or replaced since resolve() looked at it
            raise DeviceRefused(f"{target.path}: cannot look at it ({exc.strerror})") from None
        problem = image_refusal(target.path, iso_size=iso_size, allocated=allocated, free=free)
    if problem is not None:
        raise problem


def describe(target: Target) -> list[str]:
    """What is about to be overwritten, for the confirmation prompt."""
    disk = target.disk
    if disk is None:
        size = target.path.stat().st_size
        return [f"{target.path}: image file, {human(size)}"]
    facts = [disk.description, human(disk.size), str(disk.transport)]
    if disk.serial:
        facts.append(f"serial {disk.serial}")
    lines = [f"{target.path} ({disk.name}): " + ", ".join(facts)]
    if disk.fstype:
        lines.append(f"  whole disk: {disk.fstype}" + (f' "{disk.label}"' if disk.label else ""))
    for part in disk.partitions:
        where = [u.what for u in disk.mounts if u.device == part.name]
        lines.append(
            f"  {part.name:10} {human(part.size):>10}  {part.fstype or '-':8} "
            + (f'"{part.label}"' if part.label else "(no label)")
            + (f"  {', '.join(where)}" if where else "")
        )
    if not disk.partitions and not disk.fstype:
        lines.append("  no partitions found")
    return lines
