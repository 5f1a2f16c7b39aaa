"""`isobuild inspect`: show an ISO's identity, boot records, menus and autoinstall."""

from __future__ import annotations

import json
from pathlib import Path

import click

from isobuild.iso.report import inspect_iso, to_json, to_text
from isobuild.iso.xorriso import RealXorriso


@click.command("inspect")
@click.argument("iso", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(iso: Path, as_json: bool) -> None:
    """Show ISO's volume ID, .disk/info, El Torito entries, partitions, GRUB menus and
    whether (and where) autoinstall is present. Works on base ISOs and on our output."""
    report = inspect_iso(iso, RealXorriso())
    if as_json:
        click.echo(json.dumps(to_json(report), indent=2))
    else:
        click.echo(to_text(report), nl=False)
