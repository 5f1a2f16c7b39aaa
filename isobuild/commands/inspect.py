"""`isobuild inspect`: show an ISO's identity, boot records, menus and autoinstall."""

from __future__ import annotations

import json
from pathlib import Path

import click

from isobuild.errors import ConfigError
from isobuild.iso.report import inspect_iso, to_json, to_text
from isobuild.iso.source import ANY_ISO
from isobuild.iso.xorriso import RealXorriso


@click.command("inspect")
@click.argument("iso", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(iso: Path, as_json: bool) -> None:
    """Show ISO's volume ID, .disk/info, El Torito entries, partitions, GRUB menus and
    whether (and where) autoinstall is present. Works on base ISOs and on our output."""
    if iso.is_dir():  # a wrong argument, not a refused ISO: exit 2, as `verify DIR`
        inside = sorted(iso.glob("*.iso"))
        raise ConfigError(
            f"{iso}: is a directory, expected an ISO file",
            hint=f"pass the ISO in it: {inside[0]}" if len(inside) == 1 else ANY_ISO.wrong_hint,
        )
    report = inspect_iso(iso, RealXorriso())
    if as_json:
        click.echo(json.dumps(to_json(report), indent=2))
    else:
        click.echo(to_text(report), nl=False)
