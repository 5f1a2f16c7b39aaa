"""What `isobuild inspect` shows: identity, boot records, partitions, menus, autoinstall."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isobuild.iso import boot_records, efi_inventory, grub, partition_table
from isobuild.iso.boot_records import BootRecords, ElToritoImage
from isobuild.iso.efi_inventory import EfiInventory
from isobuild.iso.partition_table import PartitionTable
from isobuild.iso.seed import META_DATA, ROOT_FILE, USER_DATA
from isobuild.iso.source import ANY_ISO, SourceIso
from isobuild.iso.xorriso import Xorriso, split_report

MENUS = ("/boot/grub/grub.cfg", "/boot/grub/loopback.cfg")


@dataclass(frozen=True, kw_only=True)
class IsoReport:
    path: Path
    size: int
    volume_id: str
    disk_info: str | None
    eltorito: tuple[ElToritoImage, ...]
    records: BootRecords
    partitions: PartitionTable
    menus: dict[str, tuple[grub.MenuEntry, ...]]
    autoinstall_files: dict[str, bool]
    installed_check: bool
    efi: EfiInventory

    def autoinstall_entries(self) -> list[str]:
        """``menu: title`` of every entry that boots with ``autoinstall``."""
        return [
            f"{menu}: {e.title}"
            for menu, entries in self.menus.items()
            for e in entries
            if e.args is not None and "autoinstall" in e.args.split()
        ]


def inspect_iso(path: Path, xorriso: Xorriso) -> IsoReport:
    with SourceIso(path, role=ANY_ISO) as iso:
        disk_info = iso.read_text("/.disk/info").strip() if iso.exists("/.disk/info") else None
        texts = {menu: iso.read_text(menu) for menu in MENUS if iso.exists(menu)}
        files = {p: iso.exists(p) for p in (ROOT_FILE, USER_DATA, META_DATA)}
        volume_id = iso.volume_id
    plain, mkisofs = split_report(xorriso.report(path))
    return IsoReport(
        path=path,
        size=path.stat().st_size,
        volume_id=volume_id,
        disk_info=disk_info,
        eltorito=tuple(boot_records.parse_plain(plain)),
        records=boot_records.parse_as_mkisofs(mkisofs),
        partitions=partition_table.read(path),
        menus={menu: tuple(grub.menu_entries(text)) for menu, text in texts.items()},
        autoinstall_files=files,
        installed_check=grub.BEGIN in texts.get(MENUS[0], ""),
        efi=efi_inventory.read_inventory(path),
    )


def to_json(report: IsoReport) -> dict[str, Any]:
    esp = report.partitions.esp
    return {
        "path": str(report.path),
        "size": report.size,
        "volume_id": report.volume_id,
        "disk_info": report.disk_info,
        "el_torito": [
            {
                "number": e.number,
                "platform": e.platform,
                "bootable": e.bootable,
                "emulation": e.emulation,
                "load_size": e.load_size,
                "lba": e.lba,
                "path": e.path,
            }
            for e in report.eltorito
        ],
        "boot_options": list(report.records.options),
        "missing_boot_records": report.records.missing(),
        "partitions": {
            "protective_mbr": report.partitions.protective_mbr,
            "gpt": [
                {
                    "number": p.number,
                    "name": p.name,
                    "type": str(p.type_guid),
                    "first_lba": p.first,
                    "last_lba": p.last,
                    "esp": p.is_esp,
                }
                for p in report.partitions.gpt or ()
            ],
            "esp": None if esp is None else {"first_lba": esp.first, "sectors": esp.size},
        },
        "menus": {
            menu: [{"title": e.title, "kernel": e.kernel, "args": e.args} for e in entries]
            for menu, entries in report.menus.items()
        },
        "autoinstall": {
            "files": report.autoinstall_files,
            "entries": report.autoinstall_entries(),
            "installed_system_check": report.installed_check,
        },
        "efi_binaries": report.efi.as_json(),
        "efi_problems": list(report.efi.problems),
    }


def to_text(report: IsoReport) -> str:
    lines = [
        f"ISO          {report.path} ({report.size / (1 << 20):.1f} MiB)",
        f"volume ID    {report.volume_id}",
        f".disk/info   {report.disk_info or '(none)'}",
        "El Torito",
    ]
    for image in report.eltorito:
        where = image.path or f"LBA {image.lba}"
        lines.append(
            f"  {image.number}: {image.platform:4} {image.emulation} {image.load_size} blocks"
            f"  {where}"
        )
    if not report.eltorito:
        lines.append("  (no boot catalog)")
    lines.append("partitions")
    lines += [f"  {line}" for line in report.partitions.describe()]
    missing = report.records.missing()
    lines.append("boot records " + ("complete (24.04 layout)" if not missing else "missing: "
                                    + "; ".join(missing)))  # fmt: skip
    for menu, menu_entries in report.menus.items():
        lines.append(menu)
        for entry in menu_entries:
            lines.append(f"  {entry.title}")
            if entry.kernel is not None:
                lines.append(f"      {entry.kernel} {entry.args or ''}".rstrip())
    present = [p for p, there in report.autoinstall_files.items() if there]
    lines.append("autoinstall  " + (", ".join(present) if present else "no files"))
    with_autoinstall = report.autoinstall_entries()
    lines.append(f"  entries with autoinstall: {len(with_autoinstall)}")
    lines += [f"    {title}" for title in with_autoinstall]
    check = "yes" if report.installed_check else "no"
    lines.append(f"  boots an installed system when its marker is found: {check}")
    warning = efi_inventory.chain_warning(report.efi)
    lines.append("UEFI boot chain" + (f"  ({warning})" if warning else "  (signed)"))
    lines += [f"  {line}" for line in efi_inventory.describe(report.efi.entries)]
    lines += [f"  problem: {problem}" for problem in report.efi.problems]
    return "\n".join(lines) + "\n"
