"""The stand-in installer's serial report, the cell checks and the partition-table parser."""

from __future__ import annotations

import struct
import uuid

from isobuild.boot.matrix import CELLS, Cell, parse_report, report_problems
from isobuild.boot.qemu import Firmware, MediaKind
from isobuild.iso.partition_table import ESP_TYPE, parse

CONSOLE = """\
BdsDxe: loading Boot0001 "UEFI QEMU DVD-ROM QM00003 " from PciRoot(0x0)
ISOBUILD-STANDIN start=1
ISOBUILD-STANDIN cmdline=BOOT_IMAGE=/casper/vmlinuz autoinstall ds=nocloud;s=/cdrom/nocloud/ ---
ISOBUILD-STANDIN firmware=uefi\r
ISOBUILD-STANDIN medium=/dev/sr0
ISOBUILD-STANDIN bus=ata
ISOBUILD-STANDIN seed=/cdrom/nocloud/
ISOBUILD-STANDIN md5_checked=594
ISOBUILD-STANDIN md5_mismatched=2
ISOBUILD-STANDIN md5_failed=./casper/initrd: FAILED
ISOBUILD-STANDIN md5_failed=./x: FAILED
ISOBUILD-STANDIN done=1
"""


def test_report_lines_become_values_and_failures_a_list() -> None:
    report = parse_report(CONSOLE)
    assert report.get("firmware") == "uefi"
    assert report.kernel_args[1:3] == ["autoinstall", "ds=nocloud;s=/cdrom/nocloud/"]
    assert report.get("md5_mismatched") == "2"
    assert report.md5_failed == ("./casper/initrd: FAILED", "./x: FAILED")
    assert report.get("done") == "1"


def test_cells_are_the_six_ways_in_order() -> None:
    assert [c.name for c in CELLS] == [
        "bios-cd", "bios-usb", "uefi-cd", "uefi-usb", "uefi-cd-sb", "uefi-usb-sb",
    ]  # fmt: skip


SB_CELL = Cell(Firmware.UEFI, MediaKind.CDROM, secure_boot=True)


def test_a_secure_boot_cell_needs_the_guest_to_say_secure_boot_is_on() -> None:
    plain = parse_report(CONSOLE)
    assert report_problems(SB_CELL, plain) == [
        "the guest did not report Secure Boot enabled (kernel: no report, "
        "SecureBoot variable: no report)"
    ]
    off = parse_report(CONSOLE + "ISOBUILD-STANDIN secureboot_kernel=disabled\n")
    assert "kernel: disabled" in report_problems(SB_CELL, off)[0]
    # Either the kernel's verdict or the firmware variable is the guest's word.
    kernel = parse_report(CONSOLE + "ISOBUILD-STANDIN secureboot_kernel=enabled\n")
    efivar = parse_report(CONSOLE + "ISOBUILD-STANDIN secureboot_efivar=1\n")
    assert report_problems(SB_CELL, kernel) == []
    assert report_problems(SB_CELL, efivar) == []
    # A plain UEFI cell does not ask.
    assert report_problems(Cell(Firmware.UEFI, MediaKind.CDROM), off) == []


def test_a_report_from_the_wrong_firmware_or_bus_is_a_problem() -> None:
    report = parse_report(CONSOLE)
    assert report_problems(Cell(Firmware.UEFI, MediaKind.CDROM), report) == []
    assert report_problems(Cell(Firmware.BIOS, MediaKind.USB), report) == [
        "firmware reported uefi, expected bios",
        "medium on bus ata, expected usb",
    ]


def _image(with_gpt: bool, esp: bool) -> bytes:
    head = bytearray(16 * 2048)
    head[446 + 4] = 0xEE
    struct.pack_into("<II", head, 446 + 8, 1, 1000)
    head[510:512] = b"\x55\xaa"
    if with_gpt:
        head[512:520] = b"EFI PART"
        struct.pack_into("<QII", head, 512 + 72, 2, 4, 128)
        types = [uuid.UUID("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"), ESP_TYPE if esp else None]
        for n, type_guid in enumerate(types):
            if type_guid is None:
                continue
            offset = 1024 + n * 128
            head[offset : offset + 16] = type_guid.bytes_le
            struct.pack_into("<QQ", head, offset + 32, 64 + n * 100, 163 + n * 100)
            name = ("ISO9660" if n == 0 else "Appended2").encode("utf-16-le")
            head[offset + 56 : offset + 56 + len(name)] = name
    return bytes(head)


def test_partition_table_finds_the_esp() -> None:
    table = parse(_image(with_gpt=True, esp=True))
    assert table.protective_mbr
    assert table.esp is not None
    assert (table.esp.number, table.esp.first, table.esp.size, table.esp.name) == (
        2, 164, 100, "Appended2",
    )  # fmt: skip


def test_partition_table_without_gpt_or_esp() -> None:
    assert parse(_image(with_gpt=False, esp=False)).gpt is None
    table = parse(_image(with_gpt=True, esp=False))
    assert table.gpt is not None
    assert table.esp is None
    assert "GPT 1: ISO9660" in table.describe()[1]
