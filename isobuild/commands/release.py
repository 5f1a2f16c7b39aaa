"""`isobuild release`: PLACEHOLDER, replaced by its owner."""

from __future__ import annotations

import click


@click.group("release")
def release() -> None:
    """Not implemented yet."""
