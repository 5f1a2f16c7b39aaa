"""Boot an ISO six ways under QEMU and read what it reported.

BIOS and UEFI, each from a CD and a USB stick, and UEFI with Secure Boot enforced
(Microsoft's keys enrolled, as on shipped PCs) from both.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from isobuild import interrupt
from isobuild.boot.qemu import (
    POLL_SECONDS,
    Accel,
    Firmware,
    Guest,
    GuestSpec,
    MediaKind,
    Medium,
    ovmf_copy,
)
from isobuild.errors import BootError, SourceIsoError
from isobuild.iso import magic, partition_table

REPORT_PREFIX = "ISOBUILD-STANDIN"
_REPORT_LINE = re.compile(rf"^{REPORT_PREFIX} ([a-z_0-9]+)=(.*?)\r?$", re.MULTILINE)
DONE = re.compile(rf"^{REPORT_PREFIX} done=1", re.MULTILINE)
DEFAULT_TIMEOUT = 300.0
MULTI_KEYS = frozenset({"md5_failed"})
# What firmware, shim and GRUB print when Secure Boot refuses a binary: the cell has failed,
# there is no need to wait for its timeout. (GRUB's "prohibited by secure boot policy" is
# not one: it refuses an `insmod` under lockdown and boots on with its built-in modules.)
REFUSED = re.compile(r"Security Violation|Access Denied|bad shim signature")


@dataclass(frozen=True)
class Cell:
    firmware: Firmware
    medium: MediaKind
    secure_boot: bool = False

    @property
    def name(self) -> str:
        medium = {MediaKind.CDROM: "cd", MediaKind.USB: "usb", MediaKind.DISK: "disk"}
        return f"{self.firmware}-{medium[self.medium]}{'-sb' if self.secure_boot else ''}"


CELLS = (
    Cell(Firmware.BIOS, MediaKind.CDROM),
    Cell(Firmware.BIOS, MediaKind.USB),
    Cell(Firmware.UEFI, MediaKind.CDROM),
    Cell(Firmware.UEFI, MediaKind.USB),
    Cell(Firmware.UEFI, MediaKind.CDROM, secure_boot=True),
    Cell(Firmware.UEFI, MediaKind.USB, secure_boot=True),
)
CELLS_BY_NAME = {c.name: c for c in CELLS}


@dataclass(frozen=True, kw_only=True)
class StandinReport:
    """What the stand-in installer printed: ``key=value`` lines, ``md5_failed`` repeated."""

    values: Mapping[str, str]
    md5_failed: tuple[str, ...] = ()

    @property
    def cmdline(self) -> str:
        return self.values.get("cmdline", "")

    @property
    def kernel_args(self) -> list[str]:
        return self.cmdline.split()

    def get(self, key: str) -> str | None:
        return self.values.get(key)


def parse_report(console: str) -> StandinReport:
    """The report lines of a serial console log (pure; the last value of a key wins)."""
    values: dict[str, str] = {}
    failed: list[str] = []
    for match in _REPORT_LINE.finditer(console):
        key, value = match.group(1), match.group(2)
        if key in MULTI_KEYS:
            failed.append(value)
        else:
            values[key] = value
    return StandinReport(values=values, md5_failed=tuple(failed))


@dataclass(frozen=True, kw_only=True)
class CellResult:
    cell: Cell
    booted: bool
    seconds: float
    console: Path
    report: StandinReport = field(default_factory=lambda: StandinReport(values={}))
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.booted and not self.problems

    def as_json(self) -> dict[str, object]:
        return {
            "cell": self.cell.name,
            "firmware": str(self.cell.firmware),
            "medium": str(self.cell.medium),
            "secure_boot": self.cell.secure_boot,
            "booted": self.booted,
            "ok": self.ok,
            "seconds": round(self.seconds, 1),
            "console": str(self.console),
            "report": dict(self.report.values),
            "md5_failed": list(self.report.md5_failed),
            "problems": list(self.problems),
        }


def usb_partition_problems(iso: Path) -> list[str]:
    """OVMF boots El Torito even from a stick without a partition table: check the GPT too."""
    table = partition_table.read(iso)
    problems = []
    if not table.protective_mbr:
        problems.append("no protective MBR (type 0xee)")
    if table.gpt is None:
        problems.append("no GPT")
    elif table.esp is None:
        problems.append("GPT has no EFI System Partition")
    return problems


def report_problems(cell: Cell, report: StandinReport) -> list[str]:
    """Where the stand-in's report contradicts the cell it ran in."""
    problems = []
    if report.get("firmware") not in (None, str(cell.firmware)):
        problems.append(f"firmware reported {report.get('firmware')}, expected {cell.firmware}")
    expected_bus = {MediaKind.CDROM: "ata", MediaKind.USB: "usb", MediaKind.DISK: "virtio"}
    if report.get("bus") not in (None, expected_bus[cell.medium]):
        problems.append(f"medium on bus {report.get('bus')}, expected {expected_bus[cell.medium]}")
    if report.get("medium") == "none":
        problems.append("the stand-in installer found no medium with /.disk/info")
    if cell.secure_boot and report.values and not secure_boot_enabled(report):
        problems.append(
            "the guest did not report Secure Boot enabled (kernel: "
            f"{report.get('secureboot_kernel') or 'no report'}, SecureBoot variable: "
            f"{report.get('secureboot_efivar') or 'no report'})"
        )
    return problems


def secure_boot_enabled(report: StandinReport) -> bool:
    """The guest's own word: the kernel's verdict or the firmware's SecureBoot variable."""
    return report.get("secureboot_kernel") == "enabled" or report.get("secureboot_efivar") == "1"


def run_cell(
    iso: Path,
    cell: Cell,
    workdir: Path,
    *,
    accel: Accel,
    timeout: float = DEFAULT_TIMEOUT,
    extra_media: Sequence[Medium] = (),
    done: re.Pattern[str] = DONE,
    cancel: threading.Event | None = None,
) -> CellResult:
    """Boot ``iso`` in ``cell``; the console goes to ``workdir/<cell>/serial.log``.

    Setting ``cancel`` stops the guest within one poll (the cell then reports not booted).
    """
    celldir = workdir / cell.name
    celldir.mkdir(parents=True, exist_ok=True)
    console = celldir / "serial.log"
    problems: list[str] = []
    if cell.medium is MediaKind.USB:
        problems += [f"USB image: {p}" for p in usb_partition_problems(iso)]
    uefi = cell.firmware is Firmware.UEFI
    spec = GuestSpec(
        firmware=cell.firmware,
        media=(Medium(path=iso, kind=cell.medium), *extra_media),
        serial_log=console,
        memory_mb=1024,
        accel=accel,
        ovmf=ovmf_copy(celldir, secure_boot=cell.secure_boot) if uefi else None,
        secure_boot=cell.secure_boot,
    )
    started = time.monotonic()
    booted = False
    outcome = re.compile(rf"(?P<done>{done.pattern})|(?P<refused>{REFUSED.pattern})", done.flags)
    with Guest(spec) as guest:
        try:
            match = guest.wait_for(outcome, timeout, cancel=cancel)
            if match.group("refused"):
                problems.append(f"Secure Boot refused the boot chain: {_line(match)}")
            else:
                booted = True
        except BootError as exc:
            problems.append(exc.message)
    seconds = time.monotonic() - started
    report = parse_report(console.read_text(errors="replace") if console.exists() else "")
    problems += report_problems(cell, report)
    return CellResult(
        cell=cell, booted=booted, seconds=seconds, console=console, report=report,
        problems=tuple(problems),
    )  # fmt: skip


def _line(match: re.Match[str]) -> str:
    """The whole console line a match is on."""
    text = match.string
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return text[start : end if end >= 0 else len(text)].strip()


def check_iso(iso: Path) -> None:
    """Refuse a path that is not an ISO file (or a flashed stick) before any guest starts."""
    if not iso.exists():
        raise SourceIsoError(
            f"{iso}: ISO not found",
            hint="check the path; `isobuild build` writes OUTPUT_DIR/<name>-<version>.iso",
        )
    if not iso.is_file() and not iso.is_block_device():
        raise SourceIsoError(
            f"{iso}: is not a file or a block device, expected an ISO image or a flashed stick",
            hint="pass the .iso file itself, or the stick `isobuild flash` wrote",
        )
    # A blank stick or any other file would boot in every cell until its timeout.
    try:
        fd = os.open(iso, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            is_iso = magic.has_magic(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise SourceIsoError(
            f"{iso}: cannot read it ({exc.strerror})",
            hint="check its permissions; reading a stick usually needs root (sudo)",
        ) from None
    if not is_iso:
        raise SourceIsoError(
            f"{iso}: {magic.NOT_ISO}: nothing to boot",
            hint="pass the .iso file `isobuild build` wrote, or a stick `isobuild flash` "
            "wrote (one whose flash stopped holds none: flash it again)",
        )


def default_cells(medium: Path) -> tuple[Cell, ...]:
    """All six for an ISO or image file; a flashed stick boots as a stick: the USB cells."""
    if medium.is_block_device():
        return tuple(c for c in CELLS if c.medium is MediaKind.USB)
    return CELLS


def default_jobs() -> int:
    return max(1, min(len(CELLS), os.cpu_count() or 1))


def run_matrix(
    iso: Path,
    workdir: Path,
    *,
    accel: Accel,
    cells: Sequence[Cell] = CELLS,
    jobs: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    on_result: Callable[[CellResult], None] | None = None,
) -> list[CellResult]:
    """Every cell, ``jobs`` at a time (one TCG guest keeps one core busy).

    If the caller is interrupted (Ctrl-C, SIGTERM) or a cell raises (no OVMF, QEMU missing),
    cells not started never start and the running guests are stopped within a poll,
    instead of booting on to their timeout.
    """
    check_iso(iso)
    cancel = threading.Event()

    def one(cell: Cell) -> CellResult:
        result = run_cell(iso, cell, workdir, accel=accel, timeout=timeout, cancel=cancel)
        if on_result is not None and not cancel.is_set():
            on_result(result)
        return result

    pool = ThreadPoolExecutor(max_workers=jobs or default_jobs())
    try:
        # Submitting and waiting take the pool's and the futures' locks, so a signal waits
        # for the checkpoint (see interrupt).
        with interrupt.deferred() as checkpoint:
            futures = [pool.submit(one, cell) for cell in cells]
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=POLL_SECONDS)
                checkpoint()
                # A cell that raised (not one that failed to boot) ends the run now, not
                # after the other guests have booted to their timeout.
                for future in done:
                    future.result()
            return [future.result() for future in futures]
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
