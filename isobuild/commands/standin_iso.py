"""`isobuild standin-iso`: build the stand-in for the Ubuntu 24.04.x live-server ISO."""

from __future__ import annotations

import math
from pathlib import Path

import click

from isobuild.cache_dir import default_cache_dir
from isobuild.errors import ConfigError
from isobuild.output_file import check_replaceable
from isobuild.standin import debs as standin_debs
from isobuild.standin.iso import BootChain, Release, StandinOptions, build_standin

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """``2.5G``, ``700M``, ``4096`` → bytes."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1:] if value[-1:] in _UNITS else ""
    try:
        number = float(value[: len(value) - len(unit)]) * _UNITS[unit]
    except ValueError:
        number = math.nan
    # float() also takes nan, inf and 1e400 (inf); 1e300G overflows to inf when scaled.
    if not math.isfinite(number):
        raise ConfigError(f"--filler-size: expected a size like 2.5G or 700M, got {text!r}")
    if number < 0:
        raise ConfigError(f"--filler-size: must not be negative, got {text!r}")
    return int(number)


@click.command("standin-iso")
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False), required=False)
@click.option("--release", default="24.04.3", show_default=True, help="Point release to claim.")
@click.option(
    "--filler-size",
    default="0",
    show_default=True,
    help="Bytes of filler in the casper layers (e.g. 2.5G to match the real ISO's size).",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the Debian kernel package is cached [default: $XDG_CACHE_HOME/isobuild].",
)
@click.option(
    "--boot-chain",
    type=click.Choice([c.value for c in BootChain]),
    default=BootChain.SIGNED.value,
    show_default=True,
    help="signed: shim, signed GRUB and kernel as on Ubuntu's ISO; unsigned-grub: shim "
    "then an unsigned GRUB (refused under Secure Boot); unsigned: no shim, unsigned GRUB.",
)
@click.option(
    "--update-pins",
    is_flag=True,
    help="Rewrite the Debian package pins from apt-cache (after apt-get update) and exit.",
)
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def standin_iso(
    out: Path | None,
    release: str,
    filler_size: str,
    cache_dir: Path | None,
    boot_chain: str,
    update_pins: bool,
    force: bool,
) -> None:
    """Build OUT, a stand-in base ISO with the Ubuntu 24.04 layout and boot records.

    Its kernel is Debian's; its initrd reports over the serial port what the installer
    would see (kernel command line, firmware, autoinstall sources, md5sum.txt check)
    instead of installing. It proves the remastering and the boot paths, not subiquity.
    Its UEFI chain is Debian's signed shim, GRUB and kernel, pinned by the sha256 of each
    package in isobuild/standin/debian-pins.yaml (--update-pins rewrites them).
    """
    if update_pins:
        for pin in standin_debs.update_pins().values():
            click.echo(f"{pin.role}: {pin.package} {pin.version} {pin.sha256}")
        click.echo(f"wrote {standin_debs.PINS_FILE}: review the diff and commit it")
        return
    if out is None:
        raise ConfigError("missing argument OUT", hint="isobuild standin-iso OUT.iso")
    check_replaceable(out, force=force)
    cache = (cache_dir or default_cache_dir()) / "standin"
    build_standin(
        StandinOptions(
            out=out,
            cache=cache,
            release=Release(version=release),
            filler_size=parse_size(filler_size),
            boot_chain=BootChain(boot_chain),
        )
    )
    click.echo(str(out))
