"""Boot records parsed from the recorded `xorriso -report_el_torito` of 24.04.3."""

from __future__ import annotations

from pathlib import Path

import pytest

from isobuild.iso.boot_records import (
    BootRecordsError,
    parse_as_mkisofs,
    parse_plain,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "ubuntu-24.04"
REPORT = (DATA / "report-el-torito-as-mkisofs.txt").read_text()


def test_real_report_has_every_24_04_boot_record() -> None:
    records = parse_as_mkisofs(REPORT)
    assert records.volume_id == "Ubuntu-Server 24.04.3 LTS amd64"
    assert records.modification_date == "2025080523540700"
    assert records.grub2_mbr
    assert records.protective_msdos_label
    assert records.gpt
    assert records.partition_offset == 16
    assert records.catalog == "/boot.catalog"
    assert records.bios_image == "/boot/grub/i386-pc/eltorito.img"
    assert records.missing() == []


def test_esp_offset_and_size_come_from_the_report() -> None:
    esp = parse_as_mkisofs(REPORT).esp
    assert esp is not None
    assert (esp.number, esp.start, esp.size) == (2, 6441216, 10160)
    # The UEFI entry boots from that partition: 1610304 sectors of 2048 = 6441216 of 512.
    assert parse_as_mkisofs(REPORT).efi_partition == 2


def test_an_image_without_esp_and_uefi_entry_lists_what_it_lacks() -> None:
    bios_only = "\n".join(
        line for line in REPORT.splitlines()
        if not line.startswith(("-append_partition", "-e ", "-eltorito-alt-boot"))
    )  # fmt: skip
    assert parse_as_mkisofs(bios_only).missing() == [
        "appended EFI System Partition",
        "UEFI El Torito entry (-e)",
    ]


def test_a_plain_iso_lacks_everything() -> None:
    assert len(parse_as_mkisofs("-V 'DATA'\n").missing()) == 5


def test_broken_quoting_is_an_error() -> None:
    with pytest.raises(BootRecordsError):
        parse_as_mkisofs("-V 'unterminated\n")


def test_plain_report_lists_both_entries() -> None:
    plain = """El Torito catalog  : 204  1
El Torito images   :   N  Pltf  B   Emul  Ld_seg  Hdpt  Ldsiz         LBA
El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4         205
El Torito boot img :   2  UEFI  y   none  0x0000  0x00  10160     1610304
El Torito img path :   1  /boot/grub/i386-pc/eltorito.img
"""
    images = parse_plain(plain)
    assert [(i.platform, i.load_size, i.lba, i.path) for i in images] == [
        ("BIOS", 4, 205, "/boot/grub/i386-pc/eltorito.img"),
        ("UEFI", 10160, 1610304, None),
    ]
