"""`isobuild standin-artifacts DIR`: labelled stand-in k3s/Flux release files and their lock."""

from __future__ import annotations

from pathlib import Path

import click

from isobuild.standin.artifacts import DEFAULT_FILLER, write_standins


@click.command("standin-artifacts")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--force", is_flag=True, help="Replace the stand-in mirror DIRECTORY holds (never another)."
)
@click.option(
    "--filler",
    type=click.IntRange(min=0),
    default=DEFAULT_FILLER,
    show_default=True,
    help="Bytes of padding in the stand-in k3s binary (bigger downloads for benchmarks).",
)
def standin_artifacts(directory: Path, force: bool, filler: int) -> None:
    """Write stand-in k3s/Flux release files and DIRECTORY/payload.lock.yaml pinning them.

    For machines without internet: build with
    `isobuild build --lock DIRECTORY/payload.lock.yaml --mirror DIRECTORY ...`.
    """
    result = write_standins(directory, force=force, filler=filler)
    click.echo(f"{result.lock}: STAND-IN artifacts ({len(result.files)} files), not real k3s/Flux")
