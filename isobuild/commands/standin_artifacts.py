"""`isobuild standin-artifacts`: PLACEHOLDER, replaced by its owner."""

from __future__ import annotations

import click


@click.command("standin-artifacts")
def standin_artifacts() -> None:
    """Not implemented yet."""
    raise click.UsageError("not implemented yet")
