"""A stick `isobuild flash` wrote boots as a USB stick, BIOS and UEFI (a loop device, QEMU).

The stick is bigger than the ISO, as real ones are: the firmware finds the ISO's GPT, whose
backup header sits at the ISO's end rather than the stick's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from isobuild.boot.qemu import Accel
from tests.conftest import require_tool
from tests.fixtures.appliance_iso import ApplianceBuild
from tests.fixtures.loop_device import attached

ISOBUILD = [sys.executable, "-m", "isobuild.cli"]
SPARE = 64 << 20  # the stick's room beyond the ISO


@pytest.fixture(scope="module")
def flashed_stick(
    appliance_iso: ApplianceBuild, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    image = tmp_path_factory.mktemp("stick") / "stick.img"
    with image.open("wb") as handle:
        handle.truncate(appliance_iso.iso.stat().st_size + SPARE)
    with attached(image, partscan=False) as device:
        done = subprocess.run([*ISOBUILD, "flash", str(appliance_iso.iso), str(device), "--yes"],
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        yield device


@pytest.fixture(scope="module")
def usb_cells(flashed_stick: Path, qemu_accel: Accel, boot_logs: Path) -> dict[str, Any]:
    require_tool("qemu-system-x86_64", "qemu-system-x86")
    done = subprocess.run(
        [*ISOBUILD, "boot-test", str(flashed_stick), "--json", "--accel", str(qemu_accel),
         "--logs", str(boot_logs / "flashed-stick")],
        capture_output=True, text=True, check=False, timeout=1800,
    )  # fmt: skip
    document: dict[str, Any] = json.loads(done.stdout)
    document["returncode"] = done.returncode
    document["stderr"] = done.stderr
    return document


def test_a_flashed_stick_boots_in_the_bios_and_uefi_usb_cells(usb_cells: dict[str, Any]) -> None:
    # Secure Boot included: what the firmware reads from the stick is the signed chain.
    assert [c["cell"] for c in usb_cells["cells"]] == ["bios-usb", "uefi-usb", "uefi-usb-sb"]
    for cell in usb_cells["cells"]:
        assert cell["booted"], f"{cell['cell']}: {cell['problems']} (console: {cell['console']})"
        assert cell["problems"] == []  # includes the USB partition-table check
        assert cell["report"]["firmware"] == cell["firmware"]
        assert cell["report"]["bus"] == "usb"
        assert "autoinstall" in cell["report"]["cmdline"].split()
        assert cell["md5_failed"] == []
    assert usb_cells["ok"] is True, usb_cells["stderr"]
    assert usb_cells["returncode"] == 0
