"""The remaster command line: golden argument list and the parts that make it reproducible."""

from __future__ import annotations

from pathlib import Path

from isobuild.iso.xorriso import (
    IsoEdit,
    Remaster,
    parent_dirs,
    progress_percent,
    remaster_argv,
    report_argv,
    split_report,
)

SPEC = Remaster(
    base=Path("/in/base.iso"),
    volume_id="alga-appliance 0.1.0",
    joliet=True,
    edits=(
        IsoEdit(iso_path="/nocloud/user-data", local_path=Path("/s/nocloud/user-data")),
        IsoEdit(iso_path="/boot/grub/grub.cfg", local_path=Path("/s/boot/grub/grub.cfg")),
        IsoEdit(iso_path="/appliance/bin/k3s", local_path=Path("/c/k3s"), mode=0o555),
    ),
    new_dirs=("/nocloud", "/appliance", "/appliance/bin"),
    epoch=1754437987,
)


def test_golden_remaster_argv() -> None:
    assert remaster_argv(SPEC) == [
        "xorriso", "-abort_on", "FAILURE", "-return_with", "SORRY", "32",
        "-report_about", "UPDATE", "-pacifier", "interval=0.1",
        "-indev", "/in/base.iso", "-outdev", "-",
        "-boot_image", "any", "replay",
        "-joliet", "on",
        "-volid", "alga-appliance 0.1.0",
        "-map", "/c/k3s", "/appliance/bin/k3s",
        "-map", "/s/boot/grub/grub.cfg", "/boot/grub/grub.cfg",
        "-map", "/s/nocloud/user-data", "/nocloud/user-data",
        "-chmod", "0555", "/appliance", "/appliance/bin", "/nocloud", "--",
        "-chmod", "0444", "/boot/grub/grub.cfg", "/nocloud/user-data", "--",
        "-chmod", "0555", "/appliance/bin/k3s", "--",
        "-chown", "0", "/appliance", "/appliance/bin", "/appliance/bin/k3s",
        "/boot/grub/grub.cfg", "/nocloud", "/nocloud/user-data", "--",
        "-chgrp", "0", "/appliance", "/appliance/bin", "/appliance/bin/k3s",
        "/boot/grub/grub.cfg", "/nocloud", "/nocloud/user-data", "--",
        "-alter_date", "b", "=1754437987", "/appliance", "/appliance/bin",
        "/appliance/bin/k3s", "/boot/grub/grub.cfg", "/nocloud", "/nocloud/user-data", "--",
        "-commit",
    ]  # fmt: skip


def test_argv_does_not_depend_on_the_order_edits_were_made() -> None:
    shuffled = Remaster(**{**SPEC.__dict__, "edits": tuple(reversed(SPEC.edits)),
                           "new_dirs": tuple(reversed(SPEC.new_dirs))})  # fmt: skip
    assert remaster_argv(shuffled) == remaster_argv(SPEC)


def test_boot_records_are_replayed_not_respecified() -> None:
    argv = remaster_argv(SPEC)
    assert argv[argv.index("-boot_image") : argv.index("-boot_image") + 3] == [
        "-boot_image", "any", "replay",
    ]  # fmt: skip
    for hand_written in ("-e", "-b", "-append_partition", "-isohybrid-gpt-basdat"):
        assert hand_written not in argv


def test_no_joliet_when_the_base_has_none() -> None:
    argv = remaster_argv(Remaster(**{**SPEC.__dict__, "joliet": False}))
    assert argv[argv.index("-joliet") + 1] == "off"


def test_parent_dirs() -> None:
    assert parent_dirs("/appliance/bin/k3s") == ["/appliance", "/appliance/bin"]
    assert parent_dirs("/autoinstall.yaml") == []


def test_report_argv_and_split() -> None:
    assert report_argv(Path("/x.iso"))[-6:] == [
        "-report_el_torito", "plain", "-report_el_torito", "as_mkisofs",
        "-report_system_area", "plain",
    ]  # fmt: skip
    plain, mkisofs = split_report(
        "El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4         205\n"
        "-V 'X'\n-partition_offset 16\nGPT disk GUID      :      00\n"
    )
    assert mkisofs == "-V 'X'\n-partition_offset 16\n"
    assert plain.splitlines()[0].startswith("El Torito boot img")
    assert plain.splitlines()[1].startswith("GPT disk GUID")


def test_progress_comes_from_the_writing_pacifier_lines() -> None:
    line = "xorriso : UPDATE : Writing:       3168s   19.0%   fifo 100%  buf  50%"
    assert progress_percent(line) == 19.0
    assert progress_percent("xorriso : UPDATE : 1234 files added in 1 seconds") is None
    assert progress_percent("libisofs: WARNING : Cannot add /ubuntu to Joliet tree.") is None
