"""md5sum.txt: parse, update in place, append new entries, never list patched files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from isobuild.iso.md5sums import CHUNK, Md5SumsFormatError, md5_file, parse, render, update

A, B, C, D = ("a" * 32, "b" * 32, "c" * 32, "d" * 32)
ORIGINAL = f"{A}  ./.disk/info\n{B}  ./boot/grub/grub.cfg\n{C}  ./casper/vmlinuz\n"


def test_parse_maps_iso_paths_in_file_order() -> None:
    assert list(parse(ORIGINAL).items()) == [
        ("/.disk/info", A), ("/boot/grub/grub.cfg", B), ("/casper/vmlinuz", C),
    ]  # fmt: skip


def test_changed_entries_are_replaced_in_place_and_new_ones_appended_sorted() -> None:
    text = update(ORIGINAL, {"/boot/grub/grub.cfg": D, "/nocloud/user-data": A,
                             "/autoinstall.yaml": B})  # fmt: skip
    assert text.splitlines() == [
        f"{A}  ./.disk/info",
        f"{D}  ./boot/grub/grub.cfg",
        f"{C}  ./casper/vmlinuz",
        f"{B}  ./autoinstall.yaml",
        f"{A}  ./nocloud/user-data",
    ]


def test_boot_catalog_eltorito_and_md5sum_txt_never_get_entries() -> None:
    text = update(ORIGINAL, {"/boot.catalog": D, "/boot/grub/i386-pc/eltorito.img": D,
                             "/md5sum.txt": D})  # fmt: skip
    assert text == ORIGINAL


def test_update_is_idempotent_and_render_round_trips() -> None:
    changes = {"/autoinstall.yaml": B}
    once = update(ORIGINAL, changes)
    assert update(once, changes) == once
    assert render(parse(once)) == once


def test_removed_entries_disappear() -> None:
    assert "vmlinuz" not in update(ORIGINAL, {}, removed=["/casper/vmlinuz"])


@pytest.mark.parametrize("line", ["nothex  ./x", f"{A} ./single-space", f"{A}"])
def test_malformed_lines_name_the_line(line: str) -> None:
    with pytest.raises(Md5SumsFormatError, match="line 2"):
        parse(f"{A}  ./ok\n{line}\n")


def test_entries_for_patched_files_in_the_base_are_dropped() -> None:
    base = ORIGINAL + f"{D}  ./boot/grub/i386-pc/eltorito.img\n{D}  ./boot.catalog\n"
    assert update(base, {}) == ORIGINAL


def test_blank_lines_are_skipped_not_the_end_of_the_list() -> None:
    assert parse(f"{A}  ./a\n\n   \n{B}  ./b\n") == {"/a": A, "/b": B}


@pytest.mark.parametrize(
    ("listed", "path"),
    [("./casper/vmlinuz", "/casper/vmlinuz"), ("/casper/vmlinuz", "/casper/vmlinuz"),
     ("casper/vmlinuz", "/casper/vmlinuz"), (".//casper/x", "/casper/x"),
     ("./a  b", "/a  b"), (" x", "/ x"), ("casper/", "/casper/"), ("Xorg/x", "/Xorg/x"),
     ("./Xorg/x", "/Xorg/x")],
)  # fmt: skip
def test_listed_paths_become_iso_paths(listed: str, path: str) -> None:
    assert parse(f"{A}  {listed}\n") == {path: A}


@pytest.mark.parametrize("digest", ["A" * 32, "g" * 32, "X" * 32, "a" * 31 + "-", "a" * 33])
def test_a_digest_must_be_32_lowercase_hex(digest: str) -> None:
    with pytest.raises(Md5SumsFormatError, match="line 1"):
        parse(f"{digest}  ./x\n")


def test_a_changed_excluded_file_is_skipped_and_the_rest_still_applied() -> None:
    text = update(ORIGINAL, {"/boot.catalog": D, "/casper/vmlinuz": D, "/zz": A})
    assert parse(text) == {"/.disk/info": A, "/boot/grub/grub.cfg": B, "/casper/vmlinuz": D,
                           "/zz": A}  # fmt: skip


def test_md5_file_hashes_every_chunk(tmp_path: Path) -> None:
    data = bytes(range(256)) * ((CHUNK * 2 + 300) // 256)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert md5_file(path) == hashlib.md5(data, usedforsecurity=False).hexdigest()
    empty = tmp_path / "e"
    empty.write_bytes(b"")
    assert md5_file(empty) == "d41d8cd98f00b204e9800998ecf8427e"
