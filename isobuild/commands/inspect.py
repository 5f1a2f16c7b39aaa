"""`isobuild inspect`: PLACEHOLDER, replaced by its owner."""

from __future__ import annotations

import click


@click.command("inspect")
def inspect() -> None:
    """Not implemented yet."""
    raise click.UsageError("not implemented yet")
