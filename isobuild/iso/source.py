"""The one pycdlib reader: open an ISO, read files by Rock Ridge path, check it is 24.04 server."""

from __future__ import annotations

import calendar
import hashlib
import io
import re
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from isobuild.errors import SourceIsoError
from isobuild.iso import partition_table

ISO_HEADER_BYTES = 32768 + 2048  # system area + primary volume descriptor
DISK_INFO = re.compile(r"Ubuntu-Server 24\.04(\.\d+)? LTS .*\bamd64\b")
PLATFORMS = {0x00: "BIOS", 0xEF: "UEFI"}
REMASTER_HINT = (
    "pass an Ubuntu Server 24.04.x live-server amd64 ISO (ubuntu-24.04.*-live-server-amd64.iso)"
)


@dataclass(frozen=True)
class IsoRole:
    """What an opened ISO is to the command, for its errors: its name, and what to pass."""

    name: str
    not_found_hint: str
    wrong_hint: str


BASE = IsoRole("base ISO", "check the --base-iso path", REMASTER_HINT)
ANY_ISO = IsoRole(
    "ISO", "check the path",
    "pass an ISO 9660 image: an Ubuntu Server 24.04 ISO or one `isobuild build` wrote",
)  # fmt: skip
BUILT = IsoRole("ISO", "pass the .iso file `build` wrote", "pass the .iso file `build` wrote")


@dataclass(frozen=True, kw_only=True)
class IsoFile:
    path: str  # absolute ISO path, Rock Ridge names
    size: int
    is_dir: bool
    is_symlink: bool


class SourceIso:
    """A read-only ISO opened with pycdlib; use as a context manager.

    Paths are Rock Ridge paths (``/casper/vmlinuz``). Every pycdlib failure becomes a
    SourceIsoError naming the ISO.
    """

    def __init__(self, path: Path, *, role: IsoRole = BASE) -> None:
        self.path = path
        self.role = role
        self._iso: Any = None

    def __enter__(self) -> SourceIso:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _fail(self, what: str, hint: str | None = None) -> SourceIsoError:
        return SourceIsoError(f"{self.path}: {what}", hint=hint or self.role.wrong_hint)

    def open(self) -> None:
        name = self.role.name
        try:
            info = self.path.stat()
        except FileNotFoundError:
            raise self._fail(f"{name} not found", hint=self.role.not_found_hint) from None
        except OSError as exc:
            raise self._fail(
                f"cannot read the {name}: {exc.strerror}",
                hint="check the path and its directories' permissions (ls -ld)",
            ) from exc
        if stat.S_ISDIR(info.st_mode):
            raise self._fail("is a directory, expected an ISO file")
        if info.st_size == 0:
            raise self._fail("is empty (0 bytes), expected an ISO 9660 image")
        if info.st_size < ISO_HEADER_BYTES:
            raise self._fail(f"is {info.st_size} bytes, too small to be an ISO 9660 image")
        self._check_not_truncated(info.st_size)
        iso = pycdlib.PyCdlib()
        try:
            iso.open(str(self.path))
        except PermissionError as exc:
            raise self._fail(
                f"cannot read the {name}: permission denied",
                hint="make the file readable for this user (see ls -l)",
            ) from exc
        except (PyCdlibException, OSError, ValueError, IndexError, struct.error) as exc:
            raise self._fail(f"not a readable ISO 9660 image ({_short(exc)})") from exc
        self._iso = iso
        if not iso.has_rock_ridge():
            self.close()
            raise self._fail("has no Rock Ridge extensions (Ubuntu images always do)")

    def _check_not_truncated(self, size: int) -> None:
        """The primary volume descriptor says how big the image is; a short file is cut off."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(32768)
                pvd = handle.read(2048)
        except OSError as exc:
            raise self._fail(
                f"cannot read the {self.role.name}: {exc.strerror}",
                hint="make the file readable for this user (see ls -l)",
            ) from exc
        if pvd[:6] != b"\x01CD001":
            return  # not ISO 9660 at all: pycdlib says so below
        blocks = struct.unpack_from("<I", pvd, 80)[0]
        block_size = struct.unpack_from("<H", pvd, 128)[0]
        expected = blocks * block_size
        if size < expected:
            raise self._fail(
                f"is truncated: {size} bytes, but its volume descriptor says {expected}",
                hint="the download or copy was cut short: get the ISO again and check its sha256",
            )

    def close(self) -> None:
        if self._iso is not None:
            try:
                self._iso.close()
            finally:
                self._iso = None

    @property
    def iso(self) -> Any:
        if self._iso is None:
            raise RuntimeError("SourceIso used outside its context")
        return self._iso

    @property
    def volume_id(self) -> str:
        raw: bytes = self.iso.pvd.volume_identifier
        return raw.decode("ascii", "replace").rstrip(" \0")

    def modification_epoch(self) -> int | None:
        """The volume modification date as Unix time; None when the PVD holds no valid one."""
        date = self.iso.pvd.volume_modification_date
        try:
            seconds = calendar.timegm(
                (date.year, date.month, date.dayofmonth, date.hour, date.minute, date.second)
            )
        except (TypeError, ValueError, OverflowError):
            return None
        # The PVD stores local time with an offset in 15-minute units.
        return int(seconds - date.gmtoffset * 15 * 60)

    @property
    def has_joliet(self) -> bool:
        return bool(self.iso.has_joliet())

    def _record(self, iso_path: str) -> Any:
        try:
            return self.iso.get_record(rr_path=iso_path)
        except PyCdlibException:
            return None

    def exists(self, iso_path: str) -> bool:
        return self._record(iso_path) is not None

    def is_dir(self, iso_path: str) -> bool:
        record = self._record(iso_path)
        return record is not None and bool(record.is_dir())

    def read_bytes(self, iso_path: str) -> bytes:
        out = io.BytesIO()
        try:
            self.iso.get_file_from_iso_fp(out, rr_path=iso_path)
        except PyCdlibException as exc:
            raise self._fail(f"cannot read {iso_path}: {_short(exc)}") from exc
        return out.getvalue()

    def sha256(self, iso_path: str) -> str:
        """The sha256 of a file on the ISO, streamed (no copy in memory or on disk)."""
        digest = hashlib.sha256()

        class _Sink:
            def write(self, data: bytes) -> int:
                digest.update(data)
                return len(data)

        try:
            self.iso.get_file_from_iso_fp(_Sink(), rr_path=iso_path)
        except PyCdlibException as exc:
            raise self._fail(f"cannot read {iso_path}: {_short(exc)}") from exc
        return digest.hexdigest()

    def read_text(self, iso_path: str) -> str:
        return self.read_bytes(iso_path).decode("utf-8", "replace")

    def list_dir(self, iso_path: str) -> list[IsoFile]:
        base = iso_path.rstrip("/")
        try:
            children = list(self.iso.list_children(rr_path=iso_path))
        except PyCdlibException as exc:
            raise self._fail(f"cannot list {iso_path}: {_short(exc)}") from exc
        found = []
        for child in children:
            if child is None or child.is_dot() or child.is_dotdot():
                continue
            name = (
                child.rock_ridge.name().decode()
                if child.rock_ridge
                else child.file_identifier().decode()
            )
            found.append(
                IsoFile(
                    path=f"{base}/{name}",
                    size=child.get_data_length(),
                    is_dir=bool(child.is_dir()),
                    is_symlink=bool(child.rock_ridge and child.rock_ridge.is_symlink()),
                )
            )
        return sorted(found, key=lambda f: f.path)

    def eltorito_platforms(self) -> list[str]:
        """Platforms of the El Torito entries (``BIOS``, ``UEFI``), initial entry first."""
        catalog = getattr(self.iso, "eltorito_boot_catalog", None)
        if catalog is None:
            return []
        platforms = [PLATFORMS.get(catalog.validation_entry.platform_id, "other")]
        for section in catalog.sections:
            platforms += [PLATFORMS.get(section.platform_id, "other")] * len(
                section.section_entries
            )
        return platforms

    def eltorito_extents(self) -> list[tuple[str, int, int]]:
        """(platform, byte offset, byte size) of each El Torito image, initial entry first.

        The size is the entry's load size (512-byte sectors), which for a UEFI image in
        the 24.04 layout is the whole ESP it points into.
        """
        catalog = getattr(self.iso, "eltorito_boot_catalog", None)
        if catalog is None:
            return []
        entries = [(catalog.validation_entry.platform_id, catalog.initial_entry)]
        for section in catalog.sections:
            entries += [(section.platform_id, entry) for entry in section.section_entries]
        return [
            (PLATFORMS.get(platform, "other"), entry.load_rba * 2048, entry.sector_count * 512)
            for platform, entry in entries
        ]


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass(frozen=True, kw_only=True)
class BaseIsoFacts:
    """What the check found on a usable base ISO."""

    volume_id: str
    disk_info: str
    has_joliet: bool
    grub_cfg: str
    loopback_cfg: str | None
    md5sum_txt: str | None


def check_live_server(source: SourceIso) -> BaseIsoFacts:
    """Refuse anything that is not a 24.04.x live-server amd64 image, saying what it is."""
    if not source.exists("/.disk/info"):
        top = ", ".join(f.path for f in source.list_dir("/")[:8]) or "nothing"
        raise source._fail(f"no /.disk/info: not an Ubuntu installer image (top level: {top})")
    disk_info = source.read_text("/.disk/info").strip()
    if not DISK_INFO.search(disk_info):
        raise source._fail(
            f"not an Ubuntu Server 24.04.x amd64 image: .disk/info says {disk_info!r}"
        )
    for needed in ("/boot/grub/grub.cfg", "/casper/vmlinuz", "/casper/initrd"):
        if not source.exists(needed):
            raise source._fail(f"{disk_info!r} has no {needed}: not a live-server layout")
    platforms = source.eltorito_platforms()
    if "BIOS" not in platforms or "UEFI" not in platforms:
        found = " + ".join(platforms) if platforms else "no El Torito boot catalog"
        raise source._fail(f"needs El Torito BIOS and UEFI entries, found {found}")
    table = partition_table.read(source.path)
    if table.esp is None:
        found = "; ".join(table.describe()) or "no partition table"
        raise source._fail(f"no EFI System Partition in the GPT (found: {found})")
    loopback = "/boot/grub/loopback.cfg"
    return BaseIsoFacts(
        volume_id=source.volume_id,
        disk_info=disk_info,
        has_joliet=source.has_joliet,
        grub_cfg=source.read_text("/boot/grub/grub.cfg"),
        loopback_cfg=source.read_text(loopback) if source.exists(loopback) else None,
        md5sum_txt=source.read_text("/md5sum.txt") if source.exists("/md5sum.txt") else None,
    )
