"""Filesystems udev did not describe, filled in from blkid's answers (recorded output)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import pytest

from isobuild.errors import ToolError
from isobuild.flash.devices import Disk, Partition, Transport
from isobuild.flash.probe import PROBE_SECONDS, blkid, parse_udev_output, with_filesystems
from isobuild.run import Completed

# `blkid --probe --output udev /dev/loop0p1`, an ext4 partition labelled "my stick"
EXT4_PART = """\
ID_FS_LABEL=my_stick
ID_FS_LABEL_ENC=my\\x20stick
ID_FS_UUID=4e28413c-f128-4bdf-817d-09c397c206e0
ID_FS_UUID_ENC=4e28413c-f128-4bdf-817d-09c397c206e0
ID_FS_VERSION=1.0
ID_FS_BLOCK_SIZE=1024
ID_FS_TYPE=ext4
ID_FS_USAGE=filesystem
ID_PART_ENTRY_SCHEME=dos
ID_PART_ENTRY_TYPE=0x83
ID_PART_ENTRY_NUMBER=1
ID_PART_ENTRY_OFFSET=2048
ID_PART_ENTRY_SIZE=100000
ID_PART_ENTRY_DISK=7:0
"""
# The same of a GPT partition with no filesystem, named in the table
NAMED_GPT_PART = "ID_PART_ENTRY_SCHEME=gpt\nID_PART_ENTRY_NAME=EFI\\x20system\n"
# A whole disk holding a vfat filesystem and no partition table
VFAT_DISK = "ID_FS_LABEL=TECH\nID_FS_LABEL_ENC=TECH\nID_FS_TYPE=vfat\nID_FS_USAGE=filesystem\n"


class Answers:
    """blkid's recorded answers by device; which devices were asked, in order."""

    def __init__(self, answers: Mapping[str, str]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, device: Path) -> dict[str, str]:
        self.asked.append(str(device))
        return parse_udev_output(self.answers.get(str(device), ""))


def _disk(*parts: Partition, fstype: str | None = None, label: str | None = None) -> Disk:
    return Disk(name="sdb", devno="8:16", size=16 << 30, transport=Transport.USB,
                removable=True, read_only=False, partitions=parts, fstype=fstype,
                label=label)  # fmt: skip


def test_blkid_lines_become_properties() -> None:
    props = parse_udev_output(EXT4_PART + "\nnot a property\n=x\n")
    assert props["ID_FS_TYPE"] == "ext4"
    assert props["ID_FS_LABEL_ENC"] == "my\\x20stick"
    assert props["ID_PART_ENTRY_DISK"] == "7:0"
    assert len(props) == 14


def test_a_partition_udev_did_not_describe_gets_blkids_type_and_label() -> None:
    answers = Answers({"/dev/sdb1": EXT4_PART})
    disk = with_filesystems(_disk(Partition(name="sdb1", number=1, size=1 << 30)), answers)
    assert disk.partitions == (
        Partition(name="sdb1", number=1, size=1 << 30, fstype="ext4", label="my stick"),
    )
    assert answers.asked == ["/dev/sdb1"]  # not the disk: it has a partition


def test_what_udev_described_is_kept_and_not_probed_again() -> None:
    known = Partition(name="sdb1", number=1, size=1 << 30, fstype="vfat", label=None)
    unknown = Partition(name="sdb2", number=2, size=1 << 30)
    named = Partition(name="sdb3", number=3, size=1 << 30, label="swap space")  # GPT name
    answers = Answers({f"/dev/sdb{n}": EXT4_PART for n in (1, 2, 3)})
    disk = with_filesystems(_disk(known, unknown, named), answers)
    assert disk.partitions[0] == known  # udev said vfat without a label: that stands
    assert disk.partitions[1].fstype == "ext4"
    assert disk.partitions[2] == named
    assert answers.asked == ["/dev/sdb2"]


def test_nothing_found_leaves_the_partition_as_it_was() -> None:
    empty = Partition(name="sdb1", number=1, size=1 << 30)
    answers = Answers({})  # blkid found nothing (exit 2) or could not read it (not root)
    assert with_filesystems(_disk(empty), answers).partitions == (empty,)
    assert answers.asked == ["/dev/sdb1"]


def test_a_gpt_partitions_name_is_its_label_as_udev_shows_it() -> None:
    named = Partition(name="sdb1", number=1, size=1 << 30)
    disk = with_filesystems(_disk(named), Answers({"/dev/sdb1": NAMED_GPT_PART}))
    assert disk.partitions == (
        Partition(name="sdb1", number=1, size=1 << 30, fstype=None, label="EFI system"),
    )


def test_a_whole_disk_filesystem_is_probed_only_without_partitions() -> None:
    answers = Answers({"/dev/sdb": VFAT_DISK})
    bare = with_filesystems(_disk(), answers)
    assert (bare.fstype, bare.label) == ("vfat", "TECH")
    described = with_filesystems(_disk(fstype="iso9660", label="Ubuntu"), answers)
    assert (described.fstype, described.label) == ("iso9660", "Ubuntu")
    assert answers.asked == ["/dev/sdb"]


def test_a_filesystem_without_a_label_is_still_shown() -> None:
    bare = Partition(name="sdb1", number=1, size=1 << 30)
    answers = Answers({"/dev/sdb1": "ID_FS_TYPE=exfat\nID_FS_USAGE=filesystem\n"})
    assert with_filesystems(_disk(bare), answers).partitions == (
        Partition(name="sdb1", number=1, size=1 << 30, fstype="exfat", label=None),
    )


def test_a_value_keeps_its_equals_signs() -> None:
    assert parse_udev_output("ID_FS_LABEL_ENC=a=b\n") == {"ID_FS_LABEL_ENC": "a=b"}


class Outcome:
    """What isobuild.run.run returned for blkid (or raised), and the commands it was given."""

    def __init__(self, returncode: int = 0, stdout: str = "", error: Exception | None = None):
        self.returncode, self.stdout, self.error = returncode, stdout, error
        self.commands: list[tuple[list[str], dict[str, object]]] = []

    def __call__(self, argv: Sequence[str | PathLike[str]], **options: object) -> Completed:
        args = [str(a) for a in argv]
        self.commands.append((args, options))
        if self.error is not None:
            raise self.error
        return Completed(argv=tuple(args), returncode=self.returncode, stdout=self.stdout,
                         stderr="blkid: error")  # fmt: skip


@pytest.fixture
def blkid_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH whose only ``blkid`` is an executable file here (the runner never starts it)."""
    program = tmp_path / "bin/blkid"
    program.parent.mkdir()
    program.write_text("#!/bin/false\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(program.parent))
    return program


def test_blkid_probes_the_device_read_only_with_a_time_limit(blkid_on_path: Path) -> None:
    outcome = Outcome(stdout=EXT4_PART)
    assert blkid(Path("/dev/sdb1"), runner=outcome) == parse_udev_output(EXT4_PART)
    assert outcome.commands == [
        (
            [str(blkid_on_path), "--probe", "--output", "udev", "/dev/sdb1"],
            {"capture": True, "check": False, "timeout": PROBE_SECONDS},
        )
    ]
    assert PROBE_SECONDS == 10


@pytest.mark.parametrize(
    ("recorded", "logged"),
    [
        ({"returncode": 2}, "/dev/sdb1: blkid exited with 2: blkid: error"),  # nothing found
        (  # could not read it all (not root)
            {"returncode": 1, "stdout": "ID_FS_TYPE=ext4\n"},
            "/dev/sdb1: blkid exited with 1: blkid: error",
        ),
        (
            {"error": ToolError("blkid: timed out after 10 s: blkid --probe ...")},
            "/dev/sdb1: blkid: timed out after 10 s: blkid --probe ...",
        ),
    ],
)
def test_blkid_answers_nothing_when_it_finds_nothing_cannot_read_or_hangs(
    blkid_on_path: Path, caplog: pytest.LogCaptureFixture, recorded: dict[str, Any], logged: str
) -> None:
    outcome = Outcome(**recorded)
    with caplog.at_level(logging.DEBUG, logger="isobuild.flash.probe"):
        assert blkid(Path("/dev/sdb1"), runner=outcome) == {}
    assert len(outcome.commands) == 1
    assert [r.getMessage() for r in caplog.records] == [logged]  # what -v shows


def test_without_blkid_nothing_is_probed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    outcome = Outcome(stdout=EXT4_PART)
    assert blkid(Path("/dev/sdb1"), runner=outcome) == {}
    assert outcome.commands == []
