"""`isobuild build`: PLACEHOLDER, replaced by its owner."""

from __future__ import annotations

import click


@click.command("build")
def build() -> None:
    """Not implemented yet."""
    raise click.UsageError("not implemented yet")
