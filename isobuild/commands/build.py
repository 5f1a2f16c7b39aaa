"""`isobuild build`: remaster the base ISO into the appliance installer ISO."""

from __future__ import annotations

from pathlib import Path

import click

from isobuild.cache_dir import default_cache_dir
from isobuild.digest import BackgroundDigest, DigestCache
from isobuild.errors import ConfigError

# Existence and permissions are checked by the build, which says what to do about them.
_PATH = click.Path(path_type=Path, readable=False)


@click.command("build")
@click.option(
    "--base-iso",
    type=_PATH,
    required=True,
    help="The Ubuntu Server 24.04.x live-server amd64 ISO (or the stand-in).",
)
@click.option(
    "--config",
    "config_path",
    type=_PATH,
    default=None,
    help="Appliance config (YAML) [default: the embedded default config].",
)
@click.option("--output-dir", type=_PATH, default=Path("out"), show_default=True)
@click.option("--force", is_flag=True, help="Replace outputs that already exist.")
@click.option(
    "--sha256",
    "expected_sha256",
    default=None,
    help="Refuse the base ISO unless its sha256 is this.",
)
@click.option(
    "--sha256sums",
    type=_PATH,
    default=None,
    help="A SHA256SUMS file that lists the base ISO by name.",
)
@click.option(
    "--sha256sums-signature",
    type=_PATH,
    default=None,
    help="Detached signature of --sha256sums (SHA256SUMS.gpg), checked with gpgv.",
)
@click.option(
    "--keyring",
    type=_PATH,
    default=None,
    help="Keyring gpgv checks --sha256sums-signature against.",
)
@click.option(
    "--source-date-epoch",
    type=int,
    default=None,
    help="Timestamp for every date on the ISO [default: $SOURCE_DATE_EPOCH, else "
    "the base ISO's modification date].",
)
@click.option(
    "--cache-dir",
    type=_PATH,
    default=None,
    help="Cache (base ISO digests, artifacts) [default: $XDG_CACHE_HOME/isobuild].",
)
@click.option(
    "--lock",
    type=_PATH,
    default=None,
    help="Payload lock file pinning k3s/Flux [default: the config's payload.lock].",
)
@click.option(
    "--mirror",
    default=None,
    metavar="URL|DIR",
    help="Fetch the pinned k3s/Flux files from this mirror instead of the publishers.",
)
@click.option("--offline", is_flag=True, help="Use only the artifact cache; download nothing.")
@click.option(
    "--sign-key",
    metavar="FINGERPRINT|FILE",
    default=None,
    help="Sign SHA256SUMS (SHA256SUMS.gpg) with this key: a fingerprint of a key in "
    "gpg-agent or a secret key file [default: the config's signing.key].",
)
@click.pass_context
def build(
    ctx: click.Context,
    base_iso: Path,
    config_path: Path | None,
    output_dir: Path,
    force: bool,
    expected_sha256: str | None,
    sha256sums: Path | None,
    sha256sums_signature: Path | None,
    keyring: Path | None,
    source_date_epoch: int | None,
    cache_dir: Path | None,
    lock: Path | None,
    mirror: str | None,
    offline: bool,
    sign_key: str | None,
) -> None:
    """Write OUTPUT_DIR/<name>-<version>.iso, its .sha256, build-manifest.json, the SBOM
    (sbom.cdx.json) and SHA256SUMS over them, signed as SHA256SUMS.gpg with a key."""
    if sha256sums_signature is not None and (sha256sums is None or keyring is None):
        raise ConfigError("--sha256sums-signature needs --sha256sums and --keyring")
    if keyring is not None and sha256sums_signature is None:
        raise ConfigError("--keyring is only used with --sha256sums-signature")
    cache = cache_dir or default_cache_dir()
    # The base ISO's sha256 (one core for ~2 s over 2.6 GiB unless cached) starts here, on
    # its own thread, so the otherwise idle core hashes while the build's modules load (the
    # imports below, ~0.3 s) and its first steps run. A base the build then refuses only
    # costs the hashing done until then; the thread ends with the process.
    base_digest = BackgroundDigest(DigestCache(cache), base_iso)
    from isobuild.build import BaseIsoCheck, BuildOptions, Tools
    from isobuild.build import build as run_build
    from isobuild.config import load_config
    from isobuild.iso.gpgv import RealGpgv
    from isobuild.iso.verify import normalize_sha256
    from isobuild.iso.xorriso import RealXorriso

    config = load_config(config_path)
    options = BuildOptions(
        base_iso=base_iso,
        output_dir=output_dir,
        cache_dir=cache,
        base_digest=base_digest,
        force=force,
        quiet=bool((ctx.obj or {}).get("quiet")),
        check=BaseIsoCheck(
            sha256=normalize_sha256(expected_sha256, "--sha256") if expected_sha256 else None,
            sha256sums=sha256sums,
            signature=sha256sums_signature,
            keyring=keyring,
        ),
        source_date_epoch=source_date_epoch,
        lock=lock,
        mirror=mirror,
        offline=offline,
        sign_key=sign_key,
    )
    result = run_build(config, Tools(xorriso=RealXorriso(), gpgv=RealGpgv()), options)
    click.echo(f"{result.iso}  sha256 {result.sha256}")
    if result.signed_by is not None:
        click.echo(f"{result.signature}  signed by {result.signed_by}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if result.standin_artifacts:
        click.echo("note: built with STAND-IN k3s/Flux artifacts: k3s cannot run on this ISO")
