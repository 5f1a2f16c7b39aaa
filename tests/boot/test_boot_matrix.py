"""Our output ISO boots four ways and the stand-in installer sees what subiquity would."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from isobuild.autoinstall import META_DATA, ROOT_FILE, USER_DATA, render_autoinstall
from isobuild.boot_matrix import CELLS, CellResult, run_matrix
from isobuild.qemu import Accel
from tests.conftest import require_tool
from tests.fixtures.appliance_iso import ApplianceBuild


@pytest.fixture(scope="session")
def matrix(
    appliance_iso: ApplianceBuild, qemu_accel: Accel, boot_logs: Path
) -> dict[str, CellResult]:
    """All four cells, booted once, in parallel as the cores allow."""
    require_tool("qemu-system-x86_64", "qemu-system-x86")
    results = run_matrix(appliance_iso.iso, boot_logs / "matrix", accel=qemu_accel)
    return {r.cell.name: r for r in results}


@pytest.fixture(scope="session")
def rendered(appliance_iso: ApplianceBuild) -> dict[str, str]:
    files = render_autoinstall(appliance_iso.config).files
    return {p: hashlib.sha256(t.encode()).hexdigest() for p, t in files.items()}


CELL_NAMES = [c.name for c in CELLS]


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_cell_boots_and_reports(matrix: dict[str, CellResult], cell: str) -> None:
    result = matrix[cell]
    assert result.booted, f"{cell}: {result.problems} (console: {result.console})"
    assert result.problems == (), result.problems
    assert result.report.get("firmware") == str(result.cell.firmware)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_autoinstall_and_seed_are_on_the_kernel_command_line(
    matrix: dict[str, CellResult], cell: str
) -> None:
    args = matrix[cell].report.kernel_args
    assert "autoinstall" in args
    # GRUB turned the escaped `\;` into `;`: the whole seed argument reached the kernel.
    assert "ds=nocloud;s=/cdrom/nocloud/" in args
    assert args[0] == "BOOT_IMAGE=/casper/vmlinuz"
    assert args.index("autoinstall") < args.index("---")


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_seed_and_root_file_are_what_we_rendered(
    matrix: dict[str, CellResult], rendered: dict[str, str], cell: str
) -> None:
    report = matrix[cell].report
    assert report.get("seed") == "/cdrom/nocloud/"
    assert report.get("seed_user_data_sha256") == rendered[USER_DATA]
    assert report.get("seed_meta_data_sha256") == rendered[META_DATA]
    assert report.get("root_autoinstall_sha256") == rendered[ROOT_FILE]


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_md5sum_txt_has_no_mismatch(matrix: dict[str, CellResult], cell: str) -> None:
    report = matrix[cell].report
    assert int(report.get("md5_checked") or 0) > 500
    assert report.get("md5_mismatched") == "0", report.md5_failed
