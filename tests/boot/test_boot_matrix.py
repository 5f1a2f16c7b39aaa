"""Our output ISO boots six ways and the stand-in installer sees what subiquity would.

The matrix runs through the `isobuild boot-test --json` command users and CI run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from isobuild.boot import qemu
from isobuild.boot.matrix import CELLS, DONE, run_matrix
from isobuild.boot.qemu import Accel, Firmware
from isobuild.errors import EnvironmentProblem
from isobuild.installer.autoinstall import render_autoinstall
from isobuild.iso.seed import META_DATA, ROOT_FILE, USER_DATA
from tests.conftest import require_tool
from tests.fixtures.appliance_iso import ApplianceBuild
from tests.waiting import wait_until

CELL_NAMES = [c.name for c in CELLS]


@pytest.fixture(scope="session")
def matrix(
    appliance_iso: ApplianceBuild,
    qemu_accel: Accel,
    boot_logs: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """Every cell, booted once, in parallel as the cores allow.

    The ISO is booted by a name with a comma and a space, as a download may be named: QEMU
    reads a comma in ``-drive file=`` as the end of the value unless it is doubled.
    """
    require_tool("qemu-system-x86_64", "qemu-system-x86")
    logs = boot_logs / "matrix"
    named = tmp_path_factory.mktemp("matrix") / "alga-appliance,0.1.0 (1).iso"
    named.symlink_to(appliance_iso.iso)
    done = subprocess.run(
        [sys.executable, "-m", "isobuild.cli", "boot-test", str(named), "--json",
         "--accel", str(qemu_accel), "--logs", str(logs)],
        capture_output=True, text=True, check=False, timeout=1800,
    )  # fmt: skip
    document: dict[str, Any] = json.loads(done.stdout)
    document["returncode"] = done.returncode
    document["stderr"] = done.stderr
    return document


@pytest.fixture(scope="session")
def cells(matrix: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {cell["cell"]: cell for cell in matrix["cells"]}


@pytest.fixture(scope="session")
def rendered(appliance_iso: ApplianceBuild) -> dict[str, str]:
    files = render_autoinstall(appliance_iso.config).files
    return {p: hashlib.sha256(t.encode()).hexdigest() for p, t in files.items()}


def test_the_command_reports_every_cell_and_succeeds(matrix: dict[str, Any]) -> None:
    assert [c["cell"] for c in matrix["cells"]] == CELL_NAMES
    assert matrix["ok"] is True, matrix["stderr"]
    assert matrix["returncode"] == 0


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_cell_boots_and_reports(cells: dict[str, dict[str, Any]], cell: str) -> None:
    result = cells[cell]
    assert result["booted"], f"{cell}: {result['problems']} (console: {result['console']})"
    assert result["problems"] == []
    assert result["report"]["firmware"] == result["firmware"]
    assert Path(result["console"]).is_file()


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_autoinstall_and_seed_are_on_the_kernel_command_line(
    cells: dict[str, dict[str, Any]], cell: str
) -> None:
    args = cells[cell]["report"]["cmdline"].split()
    assert "autoinstall" in args
    # GRUB turned the escaped `\;` into `;`: the whole seed argument reached the kernel.
    assert "ds=nocloud;s=/cdrom/nocloud/" in args
    assert args[0] == "BOOT_IMAGE=/casper/vmlinuz"
    assert args.index("autoinstall") < args.index("---")


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_seed_and_root_file_are_what_we_rendered(
    cells: dict[str, dict[str, Any]], rendered: dict[str, str], cell: str
) -> None:
    report = cells[cell]["report"]
    assert report["seed"] == "/cdrom/nocloud/"
    assert report["seed_user_data_sha256"] == rendered[USER_DATA]
    assert report["seed_meta_data_sha256"] == rendered[META_DATA]
    assert report["root_autoinstall_sha256"] == rendered[ROOT_FILE]


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_md5sum_txt_has_no_mismatch(cells: dict[str, dict[str, Any]], cell: str) -> None:
    report = cells[cell]["report"]
    assert int(report["md5_checked"]) > 500
    assert report["md5_mismatched"] == "0", cells[cell]["md5_failed"]


@pytest.mark.parametrize("cell", [c.name for c in CELLS if c.firmware is Firmware.UEFI])
def test_secure_boot_is_on_in_exactly_the_secure_boot_cells(
    cells: dict[str, dict[str, Any]], cell: str
) -> None:
    """The guest's own word: the kernel verified by the firmware's keys says so."""
    result = cells[cell]
    expected = "enabled" if result["secure_boot"] else "disabled"
    assert result["report"]["secureboot_kernel"] == expected
    if result["secure_boot"]:
        assert "[integrity]" in result["report"]["lockdown"]


@pytest.mark.parametrize("cell", ["bios-usb", "uefi-usb", "uefi-usb-sb"])
def test_usb_cells_boot_from_a_usb_stick(cells: dict[str, dict[str, Any]], cell: str) -> None:
    assert cells[cell]["medium"] == "usb"
    assert cells[cell]["report"]["bus"] == "usb"


def _children(pid: int) -> dict[int, str]:
    """The live child processes of ``pid`` and their command names, from /proc."""
    found: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        comm_end = text.rindex(")")
        fields = text[comm_end + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(stat.parent.name)] = text[text.index("(") + 1 : comm_end]
    return found


def test_a_stopped_boot_test_stops_its_guests_at_once(
    appliance_iso: ApplianceBuild, qemu_accel: Accel, tmp_path: Path
) -> None:
    """SIGTERM (a CI job cancelled, `timeout`) reaches isobuild alone, not its guests."""
    require_tool("qemu-system-x86_64", "qemu-system-x86")
    proc = subprocess.Popen(
        [sys.executable, "-m", "isobuild.cli", "boot-test", str(appliance_iso.iso),
         "--accel", str(qemu_accel), "--logs", str(tmp_path), "--jobs", "2",
         "--cell", "bios-cd", "--cell", "uefi-cd", "--cell", "bios-usb"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        guests: dict[int, str] = {}

        def two_guests() -> bool:
            nonlocal guests
            assert proc.poll() is None, "boot-test ended before two guests ran"
            guests = {p: c for p, c in _children(proc.pid).items() if c.startswith("qemu")}
            return len(guests) >= 2

        wait_until(two_guests, 60, lambda: f"two guests to run: {guests}", interval=0.1)
        assert len(guests) == 2, f"more guests than --jobs 2: {guests}"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        # Looked at before the clean-up below, which would kill a survivor and hide it.
        survivors = [p for p in guests if Path(f"/proc/{p}").exists()]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "interrupted (SIGTERM)" in stderr
    # Stopping did not wait for the boots: neither guest got to its final report.
    for cell in ("bios-cd", "uefi-cd"):
        console = (tmp_path / cell / "serial.log").read_text(errors="replace")
        assert not DONE.search(console), f"{cell} booted to the end before it was stopped"
    assert not survivors, "a guest outlived isobuild"
    # The third cell, still queued, never started.
    assert not (tmp_path / "bios-usb" / "serial.log").exists()


def test_a_cell_that_cannot_start_ends_the_run_and_stops_the_running_guest(
    appliance_iso: ApplianceBuild, qemu_accel: Accel, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """No OVMF for the UEFI cell: the BIOS guest is stopped, not left to boot to its end."""
    require_tool("qemu-system-x86_64", "qemu-system-x86")
    monkeypatch.setattr(qemu, "OVMF_VARS", tmp_path / "no-such-OVMF_VARS.fd")
    cells = [c for c in CELLS if c.name in ("bios-cd", "uefi-cd")]
    with pytest.raises(EnvironmentProblem, match="OVMF firmware not found"):
        run_matrix(appliance_iso.iso, tmp_path, accel=qemu_accel, cells=cells, jobs=2)
    console = (tmp_path / "bios-cd" / "serial.log").read_text(errors="replace")
    assert not DONE.search(console), "the BIOS guest booted to its end before the run stopped"
    assert not [
        cmdline
        for cmdline in Path("/proc").glob("[0-9]*/cmdline")
        if str(tmp_path).encode() in _read(cmdline)
    ], "a guest of this run is still running"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended while we looked
        return b""
