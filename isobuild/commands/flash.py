"""`isobuild flash`: write the ISO to a USB stick safely and verify it; `--list` the sticks."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from isobuild.errors import ConfigError
from isobuild.flash.devices import NOT_A_DISK, Disk, scan
from isobuild.flash.flasher import Flash, FlashRequest, Phase, require_terminal
from isobuild.flash.probe import with_filesystems
from isobuild.flash.safety import Options, human, refusal

# Existence and kind are checked by the flash itself, which says what to do about them.
_PATH = click.Path(path_type=Path, readable=False)


@click.command("flash")
@click.argument("iso", type=_PATH, required=False)
@click.argument("device", type=_PATH, required=False)
@click.option("--sha256", "expected_sha256", default=None,
              help="The ISO's sha256 [default: from ISO.sha256 beside it].")  # fmt: skip
@click.option("--yes", "assume_yes", is_flag=True,
              help="Do not ask before overwriting (scripts, CI).")  # fmt: skip
@click.option("--unmount", is_flag=True,
              help="Unmount the device's filesystems first (never the system's).")  # fmt: skip
@click.option("--allow-fixed", is_flag=True,
              help="Allow a disk that is not removable, USB or an SD card.")  # fmt: skip
@click.option("--verify", "verify_only", is_flag=True,
              help="Only read DEVICE back and compare it with ISO; write nothing.")  # fmt: skip
@click.option("--list", "list_devices", is_flag=True, help="List the sticks and cards.")
@click.option("--all", "list_all", is_flag=True, help="With --list: every disk, and why not.")
@click.option("--json", "as_json", is_flag=True, help="With --list: a JSON document.")
@click.pass_context
def flash(
    ctx: click.Context,
    iso: Path | None,
    device: Path | None,
    expected_sha256: str | None,
    assume_yes: bool,
    unmount: bool,
    allow_fixed: bool,
    verify_only: bool,
    list_devices: bool,
    list_all: bool,
    as_json: bool,
) -> None:
    """Write ISO to the USB stick DEVICE (or an image file) and read it back to verify.

    Refuses the disk holding the running system, mounted or fixed disks, partitions and
    devices smaller than the ISO; shows what will be overwritten and asks first.
    """
    if list_devices:
        if iso is not None:
            raise ConfigError("--list takes no ISO or DEVICE")
        _list(all_disks=list_all, as_json=as_json)
        return
    if iso is None or device is None:
        raise ConfigError("flash needs ISO and DEVICE (or --list)",
                          hint="isobuild flash out/NAME.iso /dev/sdX")  # fmt: skip
    if list_all or as_json:
        raise ConfigError("--all and --json go with --list")
    quiet = bool(ctx.find_root().obj and ctx.find_root().obj.get("quiet"))
    job = Flash(
        FlashRequest(
            iso=iso, target=device, sha256=expected_sha256, assume_yes=assume_yes, quiet=quiet,
            options=Options(allow_fixed=allow_fixed, unmount=unmount),
        )
    )  # fmt: skip
    if verify_only:
        timing = job.verify()
        click.echo(f"{device}: read back {human(timing.bytes)} in {timing.seconds:.1f} s: "
                   f"matches {iso.name}")  # fmt: skip
        return
    require_terminal(assume_yes, sys.stdin.isatty(), device)
    try:
        result = job.run(None if assume_yes else _confirm)
    except BaseException:
        _say_what_is_left(job.phase, device)
        raise
    click.echo(
        f"{device}: wrote {human(result.image.size)} in {result.write.seconds:.1f} s "
        f"({human(result.write.rate)}/s), read back in {result.verify.seconds:.1f} s "
        f"({human(result.verify.rate)}/s"
        + ("" if result.direct_read else ", through the page cache")
        + f"): it matches {iso.name} byte for byte, sha256 {result.image.sha256}"
    )
    click.echo(f"{device}: ready to boot from")


def _say_what_is_left(phase: Phase, device: Path) -> None:
    if phase is Phase.WRITING:
        click.echo(f"{device}: stopped while writing: it is unusable until flashed again",
                   err=True)  # fmt: skip
    elif phase is Phase.VERIFYING:
        click.echo(f"{device}: written, but not verified: flash it again to be sure", err=True)


def _confirm(lines: list[str]) -> bool:
    click.echo("About to overwrite:", err=True)
    for line in lines:
        click.echo(f"  {line}", err=True)
    answer: str = click.prompt("Everything on it will be lost. Type yes to continue",
                               default="", show_default=False, err=True)  # fmt: skip
    return answer.strip().lower() == "yes"


def _as_json(disk: Disk) -> dict[str, Any]:
    problem = refusal(disk, disk.path, iso_size=0, options=Options())
    return {
        "device": str(disk.path),
        "size": disk.size,
        "transport": str(disk.transport),
        "removable": disk.removable,
        "vendor": disk.vendor,
        "model": disk.model,
        "serial": disk.serial,
        "read_only": disk.read_only,
        "partitions": [
            {"name": p.name, "size": p.size, "fstype": p.fstype, "label": p.label}
            for p in disk.partitions
        ],
        "mounts": [{"device": u.device, "mount": u.mount} for u in disk.mounts],
        "in_use": [{"device": u.device, "what": u.what} for u in disk.uses],
        "refused": problem.message if problem is not None else None,
    }


def _list(*, all_disks: bool, as_json: bool) -> None:
    disks = scan()
    shown = [
        with_filesystems(d)
        for d in disks
        if all_disks or (d.hotplug and d.transport not in NOT_A_DISK)
    ]
    if as_json:
        click.echo(json.dumps({"devices": [_as_json(d) for d in shown]}, indent=2))
        return
    if not shown:
        click.echo("no USB sticks or SD cards found (--all lists every disk)")
        return
    rows = [("DEVICE", "SIZE", "TRANSPORT", "VENDOR/MODEL", "SERIAL", "MOUNTED")]
    for disk in shown:
        mounted = ", ".join(f"{u.device} at {u.mount}" for u in disk.mounts) or "-"
        rows.append((str(disk.path), human(disk.size), str(disk.transport), disk.description,
                     disk.serial or "-", mounted))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                   + "  " + row[-1])  # fmt: skip
    if all_disks:
        for disk in shown:
            problem = refusal(disk, disk.path, iso_size=0, options=Options())
            if problem is not None:
                click.echo(f"not a target: {problem.message}")
