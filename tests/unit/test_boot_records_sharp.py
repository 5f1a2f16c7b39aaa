"""Boot-record parsing field by field: every option's value, units, and what a report lacks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from isobuild.iso.boot_records import (
    ESP_TYPE_GUID,
    AppendedPartition,
    BootRecords,
    BootRecordsError,
    ElToritoImage,
    parse_as_mkisofs,
    parse_plain,
)

OTHER_GUID = "a2a0d0ebe5b9334487c068b6b72699c7"
REPORT = (
    "-V 'My Volume'\n"
    "--modification-date='2025010100000000'\n"
    "--grub2-mbr --interval:local_fs:0s-15s:zero_mbrpt:'in.iso'\n"
    "--protective-msdos-label\n"
    "-partition_offset 32\n"
    f"-append_partition 3 {OTHER_GUID} --interval:local_fs:10s-19s::'in.iso'\n"
    f"-append_partition 2 {ESP_TYPE_GUID.upper()} --interval:local_fs:100d-199d::'in.iso'\n"
    "-appended_part_as_gpt\n"
    "-c '/boot.cat'\n"
    "-b '/bios.img'\n"
    "-no-emul-boot\n"
    "-e '--interval:appended_partition_2_start_25s_size_100d:all::'\n"
)


def test_every_option_is_read_with_its_own_value() -> None:
    records = parse_as_mkisofs(REPORT)
    assert records == BootRecords(
        options=tuple(records.options),
        volume_id="My Volume",
        modification_date="2025010100000000",
        grub2_mbr=True,
        protective_msdos_label=True,
        gpt=True,
        partition_offset=32,
        appended=(
            # 's' counts 2048-byte sectors, 'd' 512-byte blocks: both end up in blocks.
            AppendedPartition(number=3, type_guid=OTHER_GUID, start=40, size=37),
            AppendedPartition(number=2, type_guid=ESP_TYPE_GUID.upper(), start=100, size=100),
        ),
        catalog="/boot.cat",
        bios_image="/bios.img",
        efi_image="--interval:appended_partition_2_start_25s_size_100d:all::",
        efi_partition=2,
    )
    assert records.options[:2] == ("-V", "My Volume")
    assert records.options[-1] == "--interval:appended_partition_2_start_25s_size_100d:all::"
    assert records.esp == records.appended[1]
    assert records.missing() == []


def test_options_that_take_no_argument_do_not_swallow_the_next_one() -> None:
    records = parse_as_mkisofs("--protective-msdos-label\n-appended_part_as_gpt\n-c /cat\n")
    assert (records.protective_msdos_label, records.gpt, records.catalog) == (True, True, "/cat")
    dated = parse_as_mkisofs("--modification-date=2025=1\n-b /bios.img\n")
    assert (dated.modification_date, dated.bios_image) == ("2025=1", "/bios.img")


def test_grub2_mbr_takes_its_interval_argument() -> None:
    records = parse_as_mkisofs("--grub2-mbr -c\n-b /bios.img\n")
    # "-c" is the MBR source here, not the catalog option.
    assert (records.grub2_mbr, records.catalog, records.bios_image) == (True, None, "/bios.img")


def test_an_efi_image_that_is_a_file_has_no_partition() -> None:
    records = parse_as_mkisofs("-e /efi.img -b /bios.img\n")
    assert (records.efi_image, records.efi_partition, records.bios_image) == (
        "/efi.img",
        None,
        "/bios.img",
    )


@pytest.mark.parametrize("option", ["-V", "-partition_offset", "-c", "-b", "-e"])
def test_an_option_without_its_argument_is_named(option: str) -> None:
    with pytest.raises(BootRecordsError) as caught:
        parse_as_mkisofs(f"-no-emul-boot {option}\n")
    assert str(caught.value) == f"{option} is missing its argument"


def test_an_append_partition_with_too_few_arguments_is_named() -> None:
    with pytest.raises(BootRecordsError) as caught:
        parse_as_mkisofs(f"-append_partition 2 {ESP_TYPE_GUID}\n")
    assert str(caught.value) == "-append_partition is missing its argument"


def test_an_append_partition_from_a_file_is_refused_with_its_source() -> None:
    with pytest.raises(BootRecordsError) as caught:
        parse_as_mkisofs(f"-append_partition 2 {ESP_TYPE_GUID} /tmp/esp.img\n")
    assert str(caught.value) == "-append_partition 2: unexpected source '/tmp/esp.img'"


def test_broken_quoting_says_the_report_cannot_be_split() -> None:
    with pytest.raises(BootRecordsError, match=r"^cannot split the report: "):
        parse_as_mkisofs("-V 'unterminated\n")


def test_each_lack_is_named_on_its_own() -> None:
    complete = parse_as_mkisofs(REPORT)
    esp_only = (complete.appended[1],)
    assert replace(complete, grub2_mbr=False).missing() == ["GRUB hybrid MBR (--grub2-mbr)"]
    assert replace(complete, gpt=False).missing() == ["GPT (-appended_part_as_gpt)"]
    assert replace(complete, bios_image=None).missing() == ["BIOS El Torito entry (-b)"]
    assert replace(complete, efi_image=None, efi_partition=None).missing() == [
        "UEFI El Torito entry (-e)"
    ]
    assert replace(complete, efi_partition=3).missing() == [
        "UEFI El Torito entry pointing into the ESP"
    ]
    assert replace(complete, appended=complete.appended[:1]).missing() == [
        "appended EFI System Partition"
    ]
    assert replace(complete, appended=esp_only).missing() == []
    assert replace(complete, appended=()).esp is None


def test_plain_report_reads_every_column() -> None:
    plain = (
        "El Torito boot img :   1  BIOS  n   hd  0x0000  0x00      4         205\n"
        "El Torito boot img :   2  UEFI  y   none  0x0000  0x00  10160     1610304\n"
        "El Torito img path :   2  /efi.img  \n"
    )
    assert parse_plain(plain) == [
        ElToritoImage(
            number=1, platform="BIOS", bootable=False, emulation="hd", load_size=4, lba=205
        ),
        ElToritoImage(
            number=2,
            platform="UEFI",
            bootable=True,
            emulation="none",
            load_size=10160,
            lba=1610304,
            path="/efi.img",
        ),
    ]


def test_options_are_read_in_any_order() -> None:
    records = parse_as_mkisofs("-c /cat\n-b /bios.img\n-V 'Vol'\n-partition_offset 16\n-e /efi\n")
    assert (records.catalog, records.bios_image, records.volume_id) == ("/cat", "/bios.img", "Vol")
    assert (records.partition_offset, records.efi_image) == (16, "/efi")
