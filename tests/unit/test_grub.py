"""grub.cfg and loopback.cfg edits on the recorded Ubuntu 24.04.3 menus."""

from __future__ import annotations

from pathlib import Path

import pytest

from isobuild.iso.grub import (
    AUTOINSTALL_ARGS,
    BEGIN,
    INSTALLED_ID,
    GrubEditError,
    add_kernel_args,
    configure_menu,
    installer_entries,
    menu_entries,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "ubuntu-24.04"
GRUB_CFG = (DATA / "grub.cfg").read_text()
LOOPBACK_CFG = (DATA / "loopback.cfg").read_text()
SEED = r"ds=nocloud\;s=/cdrom/nocloud/"


def _linux_lines(cfg: str) -> list[str]:
    return [line.strip() for line in cfg.splitlines() if line.strip().startswith("linux")]


def test_recorded_menu_has_the_24_04_entries() -> None:
    titles = [e.title for e in menu_entries(GRUB_CFG)]
    assert titles == [
        "Try or Install Ubuntu Server",
        "Ubuntu Server with the HWE kernel",
        "Boot from next volume",
        "UEFI Firmware Settings",
        "Test memory",
    ]
    assert [e.kernel for e in installer_entries(GRUB_CFG)] == [
        "/casper/vmlinuz",
        "/casper/hwe-vmlinuz",
    ]


def test_autoinstall_and_escaped_seed_go_before_the_separator_on_every_installer_entry() -> None:
    edited = add_kernel_args(GRUB_CFG, AUTOINSTALL_ARGS)
    assert _linux_lines(edited) == [
        f"linux\t/casper/vmlinuz autoinstall {SEED} ---",
        f"linux\t/casper/hwe-vmlinuz autoinstall {SEED} ---",
        "linux16 /boot/memtest86+x64.bin",
    ]


def test_loopback_keeps_iso_scan_and_gets_the_same_arguments() -> None:
    edited = add_kernel_args(LOOPBACK_CFG, AUTOINSTALL_ARGS)
    assert _linux_lines(edited) == [
        f"linux\t/casper/vmlinuz iso-scan/filename=${{iso_path}} autoinstall {SEED} ---",
        f"linux\t/casper/hwe-vmlinuz iso-scan/filename=${{iso_path}} autoinstall {SEED} ---",
    ]


def test_other_lines_are_untouched() -> None:
    edited = add_kernel_args(GRUB_CFG, AUTOINSTALL_ARGS)
    before = [line for line in GRUB_CFG.splitlines() if "/casper/" not in line]
    after = [line for line in edited.splitlines() if "/casper/" not in line]
    assert before == after


@pytest.mark.parametrize("cfg", [GRUB_CFG, LOOPBACK_CFG])
def test_adding_arguments_is_idempotent(cfg: str) -> None:
    once = add_kernel_args(cfg, AUTOINSTALL_ARGS)
    assert add_kernel_args(once, AUTOINSTALL_ARGS) == once


def test_a_line_without_separator_gets_the_arguments_at_the_end() -> None:
    cfg = 'menuentry "x" {\n  linux /casper/vmlinuz quiet\n}\n'
    assert "linux /casper/vmlinuz quiet autoinstall" in add_kernel_args(cfg, ["autoinstall"])


def _configured(default: int = 0) -> str:
    cfg = add_kernel_args(GRUB_CFG, AUTOINSTALL_ARGS)
    return configure_menu(
        cfg, timeout=5, default=default, installed_marker="alga-appliance-installed",
        name="alga-appliance",
    )  # fmt: skip


def test_menu_settings_replace_the_originals_and_default_is_by_title() -> None:
    cfg = _configured(default=1)
    lines = cfg.splitlines()
    assert lines[0] == BEGIN
    assert [line for line in lines if line.startswith("set timeout=")] == ["set timeout=5"]
    assert [line for line in lines if line.startswith("set default=")] == [
        'set default="Ubuntu Server with the HWE kernel"'
    ]


def test_installed_system_check_looks_for_the_marker_in_both_places_and_becomes_default() -> None:
    cfg = _configured()
    block = cfg[: cfg.index("loadfont")]
    assert "search --no-floppy --file --set=isobuild_root /boot/alga-appliance-installed" in block
    assert "search --no-floppy --file --set=isobuild_root /alga-appliance-installed" in block
    assert f"set default={INSTALLED_ID}" in block
    assert "configfile ($isobuild_root)$isobuild_cfg" in block
    # The check comes before every original menu entry: it is the first thing GRUB does.
    assert block.index("search") < cfg.index('menuentry "Try or Install Ubuntu Server"')
    assert block.count("{") == block.count("}")


def test_installer_entries_stay_as_configured() -> None:
    cfg = _configured()
    installers = installer_entries(cfg)
    assert [e.title for e in installers] == [
        "Try or Install Ubuntu Server",
        "Ubuntu Server with the HWE kernel",
    ]
    assert all("autoinstall" in (e.args or "").split() for e in installers)


def test_configuring_twice_keeps_one_block() -> None:
    once = _configured()
    twice = configure_menu(
        once, timeout=5, default=0, installed_marker="alga-appliance-installed",
        name="alga-appliance",
    )  # fmt: skip
    assert twice == once
    assert twice.count(BEGIN) == 1


def test_default_out_of_range_names_the_entries() -> None:
    with pytest.raises(GrubEditError, match=r"default entry 2 does not exist.*1: Ubuntu Server"):
        _configured(default=2)


def test_a_menu_without_casper_entries_is_refused() -> None:
    with pytest.raises(GrubEditError, match="no menu entry that boots /casper/vmlinuz"):
        configure_menu('menuentry "x" {\n linux /vmlinuz\n}\n', timeout=1, default=0,
                       installed_marker="m", name="n")  # fmt: skip


GOLDEN = Path(__file__).resolve().parent.parent / "data" / "golden" / "grub-configured.cfg"


def test_configured_menu_is_the_golden_one_byte_for_byte() -> None:
    # The whole edited grub.cfg, the GRUB script of the installed-system check included:
    # the boot suite proves this text boots (installed disk found, reinstall loop guarded),
    # so any change to it must be deliberate. After one, review the diff and regenerate:
    #   python -c 'from tests.unit.test_grub import write_golden; write_golden()'
    assert _configured(default=1) == GOLDEN.read_text()


def write_golden() -> None:
    GOLDEN.write_text(_configured(default=1))


def test_menu_entries_track_nesting_depth_across_submenus() -> None:
    cfg = (
        'menuentry "a" {\n\tlinux /casper/vmlinuz x\n}\n'
        'submenu "more" {\n'
        "\tmenuentry 'b' --class x {\n\t\tlinux /casper/vmlinuz y\n\t}\n"
        '\tmenuentry "c" {\n\t\tif [ x ]; then { true; } fi\n\t\tlinux /casper/vmlinuz z\n\t}\n'
        "}\n"
        'menuentry "d" {\n\tlinux /casper/vmlinuz w\n}\n'
    )
    entries = menu_entries(cfg)
    assert [(e.title, e.args) for e in entries] == [
        ("a", "x"), ("b", "y"), ("c", "z"), ("d", "w"),
    ]  # fmt: skip


def test_a_title_with_quotes_is_escaped_in_the_default() -> None:
    cfg = "menuentry 'Say \"hi\"' {\n\tlinux /casper/vmlinuz ---\n}\n"
    out = configure_menu(cfg, timeout=1, default=0, installed_marker="m", name="n")
    assert 'set default="Say \\"hi\\""' in out.splitlines()


def test_crlf_lines_keep_their_endings_when_arguments_are_added() -> None:
    cfg = 'menuentry "x" {\r\n\tlinux\t/casper/vmlinuz quiet ---\r\n}\r\n'
    assert add_kernel_args(cfg, AUTOINSTALL_ARGS) == (
        f'menuentry "x" {{\r\n\tlinux\t/casper/vmlinuz quiet {" ".join(AUTOINSTALL_ARGS)} ---'
        "\r\n}\r\n"
    )
