"""`isobuild boot-test`: boot an ISO as BIOS/UEFI x CD/USB stick and report each cell."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import click

from isobuild.boot.matrix import (
    CELLS_BY_NAME,
    DEFAULT_TIMEOUT,
    CellResult,
    check_iso,
    default_cells,
    run_matrix,
)
from isobuild.boot.qemu import Accel, detect_accel
from isobuild.cache_dir import default_cache_dir
from isobuild.errors import BootError
from isobuild.output_file import make_directory


def _line(result: CellResult) -> str:
    report = result.report
    state = "ok" if result.ok else ("booted" if result.booted else "FAILED")
    args = report.kernel_args
    parts = [
        f"{result.cell.name:11} {state:6} {result.seconds:6.1f} s",
        f"firmware={report.get('firmware') or '?'}",
        f"secureboot={report.get('secureboot_kernel') or '?'}",
        f"bus={report.get('bus') or '?'}",
        f"autoinstall={'yes' if 'autoinstall' in args else 'no'}",
        f"seed={report.get('seed') or '?'}",
        f"md5={report.get('md5_mismatched') or '?'} mismatched/{report.get('md5_checked') or '?'}",
    ]
    line = "  ".join(parts)
    for problem in result.problems:
        line += f"\n          problem: {problem}"
    return line


def _seconds(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """A finite number of seconds above 0 (``float`` lets ``nan`` and ``inf`` by)."""
    if not math.isfinite(value) or value <= 0:
        raise click.BadParameter(f"{value} is not a number of seconds above 0")
    return value


@click.command("boot-test")
# The path is checked by boot_matrix.check_iso: one error line and exit 3, like `build`.
@click.argument("iso", type=click.Path(path_type=Path))
@click.option(
    "--accel",
    type=click.Choice(["auto", "tcg", "kvm"]),
    default="auto",
    show_default=True,
    help="QEMU accelerator; auto probes whether KVM really runs.",
)
@click.option(
    "--jobs", type=click.IntRange(min=1), default=None,
    help="Cells booted at once [default: cores].",
)  # fmt: skip
@click.option(
    "--cell",
    "cells",
    multiple=True,
    type=click.Choice(sorted(CELLS_BY_NAME)),
    help="Boot only these cells (repeatable) [default: all six; the USB cells for a block device].",
)
@click.option(
    "--timeout",
    type=float,
    callback=_seconds,
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds each cell may take to report.",
)
@click.option(
    "--logs",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Keep each cell's serial console here [default: a temporary directory].",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout, for CI.")
def boot_test(
    iso: Path,
    accel: str,
    jobs: int | None,
    cells: tuple[str, ...],
    timeout: float,
    logs: Path | None,
    as_json: bool,
) -> None:
    """Boot ISO in QEMU six ways (BIOS, UEFI and UEFI with Secure Boot enforced, each from
    a CD and a USB stick) and report what the (stand-in) installer saw.

    ISO may also be a stick or image file `isobuild flash` wrote: it boots as the USB
    cells boot the ISO, with the same partition-table check.
    """
    check_iso(iso)
    if logs is not None:
        # Before QEMU is probed or any cell starts.
        make_directory(logs, named=logs, way_out="choose another --logs directory")
    chosen = [CELLS_BY_NAME[c] for c in cells] if cells else list(default_cells(iso))
    accelerator = detect_accel(default_cache_dir()) if accel == "auto" else Accel(accel)
    workdir = logs or Path(tempfile.mkdtemp(prefix="isobuild-boot-"))
    if not as_json:
        click.echo(f"booting {iso.name}: {len(chosen)} cells, accel {accelerator}, logs {workdir}")
    results = run_matrix(
        iso, workdir, accel=accelerator, cells=chosen, jobs=jobs, timeout=timeout,
        on_result=None if as_json else lambda r: click.echo(_line(r)),
    )  # fmt: skip
    if as_json:
        document = {
            "iso": str(iso),
            "accel": str(accelerator),
            "ok": all(r.ok for r in results),
            "cells": [r.as_json() for r in results],
        }
        click.echo(json.dumps(document, indent=2))
    failed = [r.cell.name for r in results if not r.ok]
    if failed:
        raise BootError(
            f"{iso}: {len(failed)} of {len(results)} cells failed: {', '.join(failed)}",
            hint=f"see the serial consoles under {workdir}",
        )
