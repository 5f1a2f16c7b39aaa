"""grub.cfg edits at their edges: trailing blanks, one-line entries, exact refusals."""

from __future__ import annotations

import pytest

from isobuild.iso.grub import (
    GrubEditError,
    MenuEntry,
    add_kernel_args,
    configure_menu,
    menu_entries,
)


def test_trailing_blanks_after_the_arguments_are_not_kept() -> None:
    cfg = "\tlinux /casper/vmlinuz quiet ---  \n\tlinux\t/casper/vmlinuz  \r\n"
    assert add_kernel_args(cfg, ["autoinstall"]) == (
        "\tlinux /casper/vmlinuz quiet autoinstall ---\n\tlinux\t/casper/vmlinuz autoinstall\r\n"
    )


def test_every_character_of_the_last_argument_is_kept() -> None:
    cfg = "linux /casper/vmlinuz hostname=BOX\n"
    assert add_kernel_args(cfg, ["autoinstall"]) == (
        "linux /casper/vmlinuz hostname=BOX autoinstall\n"
    )


def test_a_one_line_entry_closes_on_its_own_line() -> None:
    cfg = (
        "menuentry 'UEFI Firmware Settings' { fwsetup }\n"
        'menuentry "Try or Install" {\n'
        "\tlinux /casper/vmlinuz quiet ---\n"
        "}\n"
    )
    assert menu_entries(cfg) == [
        MenuEntry(title="UEFI Firmware Settings", kernel=None, args=None),
        MenuEntry(title="Try or Install", kernel="/casper/vmlinuz", args="quiet ---"),
    ]


def test_an_entry_whose_brace_is_on_the_next_line_is_still_read() -> None:
    cfg = "menuentry 'Install'\n{\n\tlinux /casper/vmlinuz ---\n}\n"
    assert menu_entries(cfg) == [
        MenuEntry(title="Install", kernel="/casper/vmlinuz", args="---"),
    ]


def test_a_menu_without_casper_entries_gets_the_exact_refusal() -> None:
    with pytest.raises(GrubEditError) as caught:
        configure_menu(
            'menuentry "x" {\n linux /vmlinuz\n}\n',
            timeout=1,
            default=0,
            installed_marker="m",
            name="n",
        )
    assert str(caught.value) == "grub.cfg has no menu entry that boots /casper/vmlinuz"


def test_an_unknown_default_lists_every_installer_entry() -> None:
    cfg = "".join(
        f'menuentry "{title}" {{\n linux /casper/vmlinuz ---\n}}\n' for title in ("A", "B")
    )
    with pytest.raises(GrubEditError) as caught:
        configure_menu(cfg, timeout=1, default=2, installed_marker="m", name="n")
    assert str(caught.value) == (
        "default entry 2 does not exist; the installer entries are 0: A, 1: B"
    )
