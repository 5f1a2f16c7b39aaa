"""isobuild.boot.qemu.SerialLog: the serial console read on from the last offset, on a real file."""

from __future__ import annotations

from pathlib import Path

import pytest

from isobuild.boot.qemu import SerialLog


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def whole(path: Path) -> str:
    """What reading the whole file again shows (the behaviour SerialLog keeps)."""
    return path.read_text(encoding="utf-8", errors="replace")


def test_a_missing_file_reads_empty_until_it_appears(tmp_path: Path) -> None:
    log = SerialLog(tmp_path / "serial.log")
    assert log.read() == ""
    append(log.path, b"SeaBIOS\n")
    assert log.read() == "SeaBIOS\n"


@pytest.mark.parametrize(
    "pieces",
    [
        [b"BdsDxe: loading Boot0001", b' "UEFI QEMU DVD-ROM"\r\n', b"isobuild-report done=1\r\n"],
        [b"line one\r", b"\nline two\r", b"\r\n", b"\rthree\n", b"\r", b"four"],  # split CR LF
        [b"caf\xc3", b"\xa9 \xe2\x82", b"\xac\n"],  # UTF-8 characters split between reads
        [b"bad \xff byte\n", b"\xfe\xfd", b"ok\n"],  # invalid UTF-8 is replaced, as before
    ],
)
def test_each_read_shows_what_reading_the_whole_file_shows(
    tmp_path: Path, pieces: list[bytes]
) -> None:
    log = SerialLog(tmp_path / "serial.log")
    log.path.write_bytes(b"")
    for piece in pieces:
        append(log.path, piece)
        text = log.read()
        if not log.path.read_bytes().endswith((b"\xc3", b"\xe2\x82")):
            assert text == whole(log.path)
        else:  # the rest of the character is not written yet: nothing half of it is shown
            assert "\ufffd" not in text
            assert whole(log.path).startswith(text)
    assert log.read() == whole(log.path)


def test_bytes_already_read_are_not_read_again(tmp_path: Path) -> None:
    log = SerialLog(tmp_path / "serial.log")
    log.path.write_bytes(b"first boot stage\n")
    assert log.read() == "first boot stage\n"
    with log.path.open("r+b") as handle:  # same length, other bytes: only a re-read sees them
        handle.write(b"FIRST")
    append(log.path, b"second stage\n")
    assert log.read() == "first boot stage\nsecond stage\n"


def test_a_truncated_file_is_read_again_from_its_start(tmp_path: Path) -> None:
    log = SerialLog(tmp_path / "serial.log")
    log.path.write_bytes(b"previous boot, a long console log\r")
    assert log.read() == "previous boot, a long console log\n"
    log.path.write_bytes(b"\nnew boot\n")  # a new guest truncates the log
    assert log.read() == "\nnew boot\n" == whole(log.path)
