"""`isobuild boot_test`: PLACEHOLDER, replaced by its owner."""

from __future__ import annotations

import click


@click.command("boot-test")
def boot_test() -> None:
    """Not implemented yet."""
    raise click.UsageError("not implemented yet")
