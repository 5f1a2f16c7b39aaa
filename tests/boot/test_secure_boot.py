"""The Secure Boot cells can fail: a chain with an unsigned GRUB behind the signed shim is
refused under Secure Boot and still boots without it."""

from __future__ import annotations

from pathlib import Path

from isobuild.boot.matrix import CELLS_BY_NAME, run_matrix
from isobuild.boot.qemu import Accel
from tests.conftest import require_tool


def test_an_unsigned_grub_fails_the_secure_boot_cell_and_passes_plain_uefi(
    unsigned_grub_iso: Path, qemu_accel: Accel, boot_logs: Path
) -> None:
    require_tool("qemu-system-x86_64", "qemu-system-x86")
    cells = [CELLS_BY_NAME["uefi-cd-sb"], CELLS_BY_NAME["uefi-cd"]]
    secure, plain = run_matrix(
        unsigned_grub_iso, boot_logs / "unsigned-grub", accel=qemu_accel, cells=cells, jobs=2
    )
    console = secure.console.read_text(errors="replace")
    assert not secure.ok
    assert not secure.booted
    assert "Secure Boot refused the boot chain" in secure.problems[0], secure.problems
    assert "Security Violation" in console
    assert "ISOBUILD-STANDIN start=1" not in console  # the kernel never ran
    assert plain.ok, plain.problems
    assert plain.report.get("secureboot_kernel") == "disabled"
