"""`isobuild payload`: PLACEHOLDER, replaced by its owner."""

from __future__ import annotations

import click


@click.command("fetch")
def fetch() -> None:
    """Not implemented yet."""
    raise click.UsageError("not implemented yet")


@click.command("lock")
def lock() -> None:
    """Not implemented yet."""
    raise click.UsageError("not implemented yet")
