"""An ISO left in the drive boots the installed system when the install marker is there."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from isobuild.boot.matrix import Cell, run_cell
from isobuild.boot.qemu import Accel, Firmware, MediaKind, Medium
from isobuild.installer.autoinstall import installed_marker
from tests.conftest import require_tool
from tests.fixtures.appliance_iso import ApplianceBuild

BOOTED = re.compile(r"ISOBUILD-INSTALLED-SYSTEM booted")
INSTALLED_GRUB_CFG = """serial --unit=0 --speed=115200
terminal_output serial
echo "ISOBUILD-INSTALLED-SYSTEM booted from $root"
sleep 1
halt
"""


def _disk(tmp: Path, marker: str, *, separate_boot: bool) -> Path:
    """An ext4 disk like the installed system's root, or its separate /boot partition."""
    require_tool("mkfs.ext4", "e2fsprogs")
    root = tmp / "root"
    boot = root if separate_boot else root / "boot"
    (boot / "grub").mkdir(parents=True)
    (boot / marker).write_text("installed\n")
    (boot / "grub" / "grub.cfg").write_text(INSTALLED_GRUB_CFG)
    image = tmp / "disk.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "installed", "-d", str(root), str(image), "32M"],
                   check=True, capture_output=True)  # fmt: skip
    return image


@pytest.mark.parametrize(
    ("firmware", "separate_boot"),
    [(Firmware.BIOS, False), (Firmware.BIOS, True), (Firmware.UEFI, False)],
    ids=["bios-root", "bios-separate-boot", "uefi-root"],
)
def test_marker_on_a_local_disk_boots_the_installed_system(
    appliance_iso: ApplianceBuild,
    qemu_accel: Accel,
    boot_logs: Path,
    tmp_path: Path,
    firmware: Firmware,
    separate_boot: bool,
) -> None:
    require_tool("qemu-system-x86_64", "qemu-system-x86")
    disk = _disk(tmp_path, installed_marker(appliance_iso.config), separate_boot=separate_boot)
    result = run_cell(
        appliance_iso.iso,
        Cell(firmware, MediaKind.CDROM),
        boot_logs / f"installed-{firmware}-{'boot' if separate_boot else 'root'}",
        accel=qemu_accel,
        timeout=240,
        # In the boot order after the CD: OVMF only connects disks listed there.
        extra_media=(Medium(path=disk, kind=MediaKind.DISK),),
        done=BOOTED,
    )
    assert result.booted, f"{result.problems} (console: {result.console})"
    # GRUB went to the installed system, not into the installer.
    assert "ISOBUILD-STANDIN" not in result.console.read_text(errors="replace")
