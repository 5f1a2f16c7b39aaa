"""Boot records as xorriso reports them (`-report_el_torito as_mkisofs`, `plain`), parsed."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

ESP_TYPE_GUID = "28732ac11ff8d211ba4b00a0c93ec93b"  # C12A7328-F81F-11D2-BA4B-00A0C93EC93B
_INTERVAL = re.compile(r"--interval:local_fs:(\d+)([ds])-(\d+)([ds]):[^:]*:(.*)")
_APPENDED_REF = re.compile(r"--interval:appended_partition_(\d+)_start_(\d+)s_size_(\d+)d:")


class BootRecordsError(ValueError):
    """The report does not have the shape xorriso prints."""


@dataclass(frozen=True, kw_only=True)
class AppendedPartition:
    """A partition appended after the ISO 9660 data; offsets in 512-byte blocks."""

    number: int
    type_guid: str
    start: int
    size: int

    @property
    def is_esp(self) -> bool:
        return self.type_guid.lower() == ESP_TYPE_GUID


@dataclass(frozen=True, kw_only=True)
class BootRecords:
    """What `-report_el_torito as_mkisofs` says about an image."""

    options: tuple[str, ...]
    volume_id: str | None = None
    modification_date: str | None = None
    grub2_mbr: bool = False
    protective_msdos_label: bool = False
    gpt: bool = False
    partition_offset: int | None = None
    appended: tuple[AppendedPartition, ...] = ()
    catalog: str | None = None
    bios_image: str | None = None
    efi_image: str | None = None
    efi_partition: int | None = None  # the appended partition the UEFI entry boots from

    @property
    def esp(self) -> AppendedPartition | None:
        return next((p for p in self.appended if p.is_esp), None)

    def missing(self) -> list[str]:
        """What a 24.04 live-server image has and this one lacks (empty when complete)."""
        lacks = []
        if not self.grub2_mbr:
            lacks.append("GRUB hybrid MBR (--grub2-mbr)")
        if not self.gpt:
            lacks.append("GPT (-appended_part_as_gpt)")
        if self.esp is None:
            lacks.append("appended EFI System Partition")
        if self.bios_image is None:
            lacks.append("BIOS El Torito entry (-b)")
        if self.efi_image is None:
            lacks.append("UEFI El Torito entry (-e)")
        elif self.esp is not None and self.efi_partition != self.esp.number:
            lacks.append("UEFI El Torito entry pointing into the ESP")
        return lacks


def _blocks(number: str, unit: str) -> int:
    return int(number) * (4 if unit == "s" else 1)


def parse_as_mkisofs(report: str) -> BootRecords:
    """Parse the `as_mkisofs` report (one option per line, shell-quoted)."""
    try:
        tokens = shlex.split(report)
    except ValueError as exc:
        raise BootRecordsError(f"cannot split the report: {exc}") from exc
    fields: dict[str, object] = {}
    appended: list[AppendedPartition] = []
    i = 0

    def arg(offset: int = 1) -> str:
        if i + offset >= len(tokens):
            raise BootRecordsError(f"{tokens[i]} is missing its argument")
        return tokens[i + offset]

    while i < len(tokens):
        token = tokens[i]
        if token == "-V":
            fields["volume_id"] = arg()
            i += 1
        elif token.startswith("--modification-date="):
            fields["modification_date"] = token.split("=", 1)[1]
        elif token == "--grub2-mbr":
            fields["grub2_mbr"] = True
            i += 1
        elif token == "--protective-msdos-label":
            fields["protective_msdos_label"] = True
        elif token == "-partition_offset":
            fields["partition_offset"] = int(arg())
            i += 1
        elif token == "-append_partition":
            number, type_guid, source = arg(1), arg(2), arg(3)
            interval = _INTERVAL.fullmatch(source)
            if interval is None:
                raise BootRecordsError(f"-append_partition {number}: unexpected source {source!r}")
            start = _blocks(interval.group(1), interval.group(2))
            end = _blocks(interval.group(3), interval.group(4))
            appended.append(
                AppendedPartition(
                    number=int(number), type_guid=type_guid, start=start, size=end - start + 1
                )
            )
            i += 3
        elif token == "-appended_part_as_gpt":
            fields["gpt"] = True
        elif token == "-c":
            fields["catalog"] = arg()
            i += 1
        elif token == "-b":
            fields["bios_image"] = arg()
            i += 1
        elif token == "-e":
            fields["efi_image"] = arg()
            ref = _APPENDED_REF.match(arg())
            if ref is not None:
                fields["efi_partition"] = int(ref.group(1))
            i += 1
        i += 1
    return BootRecords(options=tuple(tokens), appended=tuple(appended), **fields)  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class ElToritoImage:
    """One El Torito boot entry from the `plain` report."""

    number: int
    platform: str  # BIOS | UEFI | ...
    bootable: bool
    emulation: str
    load_size: int  # 512-byte blocks
    lba: int
    path: str | None = None


_PLAIN_IMAGE = re.compile(
    r"El Torito boot img :\s+(\d+)\s+(\S+)\s+([yn])\s+(\S+)\s+\S+\s+\S+\s+(\d+)\s+(\d+)"
)
_PLAIN_PATH = re.compile(r"El Torito img path :\s+(\d+)\s+(.+)")


def parse_plain(report: str) -> list[ElToritoImage]:
    """The El Torito entries listed by `-report_el_torito plain`."""
    paths = {int(m.group(1)): m.group(2).strip() for m in _PLAIN_PATH.finditer(report)}
    return [
        ElToritoImage(
            number=int(m.group(1)),
            platform=m.group(2),
            bootable=m.group(3) == "y",
            emulation=m.group(4),
            load_size=int(m.group(5)),
            lba=int(m.group(6)),
            path=paths.get(int(m.group(1))),
        )
        for m in _PLAIN_IMAGE.finditer(report)
    ]
