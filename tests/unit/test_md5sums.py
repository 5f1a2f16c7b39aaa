"""md5sum.txt: parse, update in place, append new entries, never list patched files."""

from __future__ import annotations

import pytest

from isobuild.iso.md5sums import Md5SumsFormatError, parse, render, update

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
