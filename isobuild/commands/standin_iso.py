"""`isobuild standin-iso`: PLACEHOLDER, replaced by its owner."""

from __future__ import annotations

import click


@click.command("standin-iso")
def standin_iso() -> None:
    """Not implemented yet."""
    raise click.UsageError("not implemented yet")
