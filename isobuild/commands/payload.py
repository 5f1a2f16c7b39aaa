"""`isobuild fetch` and `isobuild lock --update`: the pinned k3s/Flux artifacts."""

from __future__ import annotations

from pathlib import Path

import click

from isobuild.artifacts.lock_update import update_lock
from isobuild.artifacts.lockfile import load_lock
from isobuild.cache_dir import default_cache_dir
from isobuild.config import load_config
from isobuild.errors import ConfigError
from isobuild.installer.payload import fetch_payload

_PATH = click.Path(path_type=Path)


def _lock_path(lock: Path | None, config_path: Path | None) -> Path:
    return lock if lock is not None else load_config(config_path).payload.lock


@click.command("fetch")
@click.option("--config", "config_path", type=_PATH, default=None, help="Appliance config (YAML).")
@click.option(
    "--lock", type=_PATH, default=None, help="Lock file [default: the config's payload.lock]."
)
@click.option("--mirror", default=None, metavar="URL|DIR", help="Fetch from this mirror.")
@click.option("--offline", is_flag=True, help="Only check that the cache has everything.")
@click.option(
    "--cache-dir",
    type=_PATH,
    default=None,
    help="Cache directory [default: $XDG_CACHE_HOME/isobuild].",
)
@click.pass_context
def fetch(
    ctx: click.Context,
    config_path: Path | None,
    lock: Path | None,
    mirror: str | None,
    offline: bool,
    cache_dir: Path | None,
) -> None:
    """Download and verify every pinned k3s/Flux artifact into the cache."""
    pins = load_lock(_lock_path(lock, config_path))
    fetched = fetch_payload(
        pins,
        cache_dir=cache_dir or default_cache_dir(),
        mirror=mirror,
        offline=offline,
        progress=not (ctx.obj or {}).get("quiet"),
    )
    rows = [
        ("k3s binary", fetched.k3s_binary),
        ("k3s airgap images", fetched.airgap_images),
        ("flux CLI", fetched.flux_cli_tarball),
        ("flux install.yaml", fetched.flux_install),
        ("flux controller images", fetched.image_archive),
    ]
    for label, path in rows:
        click.echo(f"{label:24} {path.name[:16]}  {path}")
    note = " (STAND-IN artifacts)" if pins.standin else ""
    click.echo(f"k3s {pins.k3s.version}, Flux {pins.flux.version}: all verified{note}")


@click.command("lock")
@click.option("--update", is_flag=True, help="Resolve new versions and rewrite the pins.")
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="With --update: show the diff, write nothing, exit 1 if pins would change.",
)
@click.option("--config", "config_path", type=_PATH, default=None, help="Appliance config (YAML).")
@click.option(
    "--lock", type=_PATH, default=None, help="Lock file [default: the config's payload.lock]."
)
@click.option("--k3s-version", default=None, help="Pin this k3s release instead of stable.")
@click.option("--flux-version", default=None, help="Pin this Flux release instead of latest.")
def lock(
    update: bool,
    check_only: bool,
    config_path: Path | None,
    lock: Path | None,
    k3s_version: str | None,
    flux_version: str | None,
) -> None:
    """Show the pins; with --update, move them to the k3s stable / latest Flux releases."""
    path = _lock_path(lock, config_path)
    if not update:
        if check_only or k3s_version or flux_version:
            raise ConfigError("--check, --k3s-version and --flux-version need --update")
        pins = load_lock(path)
        click.echo(f"{path}: k3s {pins.k3s.version}, Flux {pins.flux.version}")
        for pin in pins.files():
            click.echo(f"  {pin.key:28} {pin.sha256}  {pin.name}")
        for image in pins.images:
            click.echo(f"  flux.images.{image.name:16} {image.digest}  {image.reference}")
        return
    result = update_lock(
        path, write=not check_only, k3s_version=k3s_version, flux_version=flux_version
    )
    if not result.changed:
        click.echo(f"{path}: pins are current")
        return
    click.echo(result.diff(), nl=False)
    if check_only:
        raise click.exceptions.Exit(1)
    click.echo(f"{path}: updated; review the diff above and commit it")
