"""`isobuild release`: bundle, render, validate, push and show appliance releases."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from host_service import atomic
from host_service.oci import (
    DIGEST_RE,
    TAG_RE,
    AuthenticationError,
    Credentials,
    DigestMismatch,
    RegistryClient,
    RegistryError,
    parse_reference,
)
from host_service.oci.reference import CREDENTIALS_IN_REFERENCE
from host_service.release import (
    SCHEMA_FILE,
    SCHEMA_V1,
    ConfigBundleRef,
    ImageRef,
    Release,
    ReleaseError,
    fetch_release,
    load_release,
)
from host_service.schema import Schema
from isobuild.artifacts.lockfile import load_lock
from isobuild.cache_dir import default_cache_dir
from isobuild.config import BuildConfig, load_config
from isobuild.errors import ConfigError, PayloadError, VerificationError
from isobuild.output_file import check_replaceable, directory_for
from isobuild.release.bundle import Artifact, build_bundle, read_layout, write_layout
from isobuild.release.flux_check import (
    KubectlKustomize,
    SchemaChecker,
    chart_versions,
    check_topology,
)
from isobuild.release.flux_crds import pinned_flux_schemas
from isobuild.release.render import (
    parse_image,
    parse_image_options,
    pin_charts,
    pin_digests,
    profile_values,
    render_release,
    split_repository,
)
from isobuild.resources import FLUX_DIR

log = logging.getLogger(__name__)

_PATH = click.Path(path_type=Path)
USERNAME_ENV = "ISOBUILD_REGISTRY_USERNAME"
PASSWORD_ENV = "ISOBUILD_REGISTRY_PASSWORD"
CREDENTIALS_HINT = f"set {USERNAME_ENV} and {PASSWORD_ENV} (or --password-stdin)"
MANIFEST_HINT = "fix the manifest or re-render it"

flux_dir_option = click.option(
    "--flux-dir",
    type=_PATH,
    default=FLUX_DIR,
    show_default="the checkout's flux/",
    help="The Flux topology to bundle and check.",
)
ca_option = click.option(
    "--ca-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="PEM CA bundle that replaces the system trust store for the registry "
    "[default: with --config, its appliance.registry.ca_bundle].",
)
json_option = click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
config_option = click.option(
    "--config",
    "config_path",
    type=_PATH,
    default=None,
    help="Appliance config for the default registry and repositories.",
)


def flux_schema_options(command: Any) -> Any:
    """Where the pinned Flux install.yaml (whose CRDs check the topology) comes from."""
    for option in reversed(
        [
            click.option("--lock", type=_PATH, default=None, envvar="ISOBUILD_LOCK",
                         help="Payload lock pinning Flux [default: $ISOBUILD_LOCK, else the "
                         "config's payload.lock]."),
            click.option("--mirror", default=None, metavar="URL|DIR", envvar="ISOBUILD_MIRROR",
                         help="Fetch the pinned Flux install.yaml from this mirror "
                         "[default: $ISOBUILD_MIRROR]."),
            click.option("--offline", is_flag=True,
                         help="Use only the cached Flux install.yaml (`isobuild fetch` first)."),
            click.option("--cache-dir", type=_PATH, default=None, envvar="ISOBUILD_CACHE_DIR",
                         help="Cache directory [default: $ISOBUILD_CACHE_DIR, else "
                         "$XDG_CACHE_HOME/isobuild]."),
        ]
    ):  # fmt: skip
        command = option(command)
    return command


def _schemas(
    config_path: Path | None,
    lock: Path | None,
    mirror: str | None,
    offline: bool,
    cache_dir: Path | None,
) -> SchemaChecker:
    """The topology checker with the CRDs of the Flux the appliance is built with."""
    pins = load_lock(lock if lock is not None else load_config(config_path).payload.lock)
    flux = pinned_flux_schemas(
        pins, cache_dir=cache_dir or default_cache_dir(), mirror=mirror, offline=offline
    )
    return SchemaChecker(flux)


@contextlib.contextmanager
def _registry_errors() -> Iterator[None]:
    """Registry and release errors from host_service, as isobuild errors with exit codes."""
    try:
        yield
    except (DigestMismatch, ReleaseError) as exc:
        raise VerificationError(str(exc), hint=exc.hint) from exc
    except AuthenticationError as exc:
        raise PayloadError(str(exc), hint=exc.hint or CREDENTIALS_HINT) from exc
    except RegistryError as exc:
        raise PayloadError(str(exc), hint=exc.hint) from exc


@contextlib.contextmanager
def _collect(problems: list[str]) -> Iterator[None]:
    """Add a ConfigError's problems to ``problems``: every mistake is reported at once."""
    try:
        yield
    except ConfigError as exc:
        problems += exc.problems


def _usage_error(problems: list[str]) -> ConfigError:
    """The command line's problems as one usage error."""
    hint = None
    if any(CREDENTIALS_IN_REFERENCE in p for p in problems):
        # parse_reference quoted the reference as ***@...: say where credentials come from.
        hint = f"registry credentials come from {USERNAME_ENV} and {PASSWORD_ENV} (or "
        hint += "--password-stdin), and only `push` sends them"
    return ConfigError(problems, hint=hint)


def _release_name_problems(version: str, channel: str, config_tag: str | None) -> list[str]:
    """--version, --channel and --config-tag against the release schema, before any work."""
    given = {"version": ("--version", version), "channel": ("--channel", channel)}
    document: dict[str, Any] = {"schema": SCHEMA_V1, "version": version, "channel": channel}
    if config_tag is not None:
        given["config.tag"] = ("--config-tag", config_tag)
        document["config"] = {"tag": config_tag}
    return [
        f"{given[p.path][0]}: {p.message}"
        for p in Schema.load(SCHEMA_FILE).problems(document)
        if p.path in given
    ]


def _load_manifest(path: Path) -> Release:
    """A local release manifest; what is wrong with it is a usage error, as for validate."""
    try:
        return load_release(path)
    except ReleaseError as exc:
        raise ConfigError(exc.problems, hint=exc.hint or MANIFEST_HINT) from exc


def _credentials(username: str | None, password_stdin: bool) -> Credentials | None:
    """Push credentials from the environment or stdin: never argv, never a docker config."""
    username = username or os.environ.get(USERNAME_ENV)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = os.environ.get(PASSWORD_ENV, "")
    if not username and not password:
        return None
    if not username or not password:
        raise ConfigError(
            "registry credentials need both a user name and a password",
            hint=f"set {USERNAME_ENV} and {PASSWORD_ENV}, or --username with --password-stdin",
        )
    return Credentials(username, password)


def _ca_file(ca_file: Path | None, config_path: Path | None, config: BuildConfig) -> Path | None:
    """--ca-file; else, when --config names a config, its site registry CA bundle."""
    if ca_file is not None or config_path is None:
        return ca_file
    return config.appliance.registry.ca_bundle


def _bundle(bundle_file: Path | None, flux_dir: Path, schemas: SchemaChecker | None) -> Artifact:
    if bundle_file is not None:
        return read_layout(bundle_file)
    if schemas is not None:
        check_topology(flux_dir, KubectlKustomize(), schemas=schemas)
    return build_bundle(flux_dir)


def _write_output(path: Path, data: bytes, *, force: bool) -> None:
    check_replaceable(path, force=force)
    with directory_for(path):
        atomic.write_bytes(path, data, mode=0o644)


def _echo_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=True))


@click.group("release")
def release() -> None:
    """Publish appliance releases: the Flux config bundle and the release manifest."""


@release.command("bundle")
@click.option("--output", type=_PATH, required=True, help="OCI image layout tar to write.")
@flux_dir_option
@click.option("--tag", default=None, help="Tag recorded in the layout's index.json.")
@click.option("--no-check", is_flag=True, help="Skip the topology check (not for releases).")
@click.option("--force", is_flag=True, help="Replace --output if it exists.")
@config_option
@flux_schema_options
@json_option
def bundle(
    output: Path,
    flux_dir: Path,
    tag: str | None,
    no_check: bool,
    force: bool,
    config_path: Path | None,
    lock: Path | None,
    mirror: str | None,
    offline: bool,
    cache_dir: Path | None,
    as_json: bool,
) -> None:
    """Check flux/ and pack it into a reproducible Flux config bundle; print its digest."""
    check_replaceable(output, force=force)  # before the work; again when writing
    schemas = None if no_check else _schemas(config_path, lock, mirror, offline, cache_dir)
    artifact = _bundle(None, flux_dir, schemas)
    write_layout(artifact, output, tag=tag, force=force)
    if as_json:
        _echo_json(
            {
                "output": str(output),
                "digest": artifact.digest,
                "layerDigest": artifact.layers[0].digest,
                "layerSize": len(artifact.layers[0].data),
            }
        )
    else:
        click.echo(artifact.digest)


@release.command("render")
@click.option("--version", "version", required=True, help="Release version, e.g. 1.4.0.")
@click.option("--channel", required=True, help="Channel the release is published to.")
@click.option("--profile", default=None, help="Values profile [default: the config's].")
@click.option("--image", "images", multiple=True, help="KEY=REF for algaCore, workflowWorker, "
              "emailService and temporalWorker (each once).")  # fmt: skip
@click.option("--control-plane", required=True, help="Control-plane image REF.")
@click.option(
    "--config-repository",
    default=None,
    help="Bundle repository registry/org/name [default: beside the release repo].",
)
@click.option("--config-tag", default=None, help="Tag for the bundle [default: the version].")
@click.option(
    "--charts-repository",
    default=None,
    help="Where the charts are, registry/org/name: chart C version V is <this>/C:V, resolved "
    "to its digest [default: beside the release repo, -release replaced by -charts].",
)
@click.option(
    "--bundle",
    "bundle_file",
    type=_PATH,
    default=None,
    help="Bundle file from `release bundle` [default: pack --flux-dir now].",
)
@click.option("--pin", is_flag=True, help="Resolve tag-only images to digests at the registry.")
@flux_dir_option
@ca_option
@config_option
@flux_schema_options
@click.option("--output", type=_PATH, required=True, help="Release manifest JSON to write.")
@click.option("--force", is_flag=True, help="Replace --output if it exists.")
@json_option
def render(
    version: str,
    channel: str,
    profile: str | None,
    images: tuple[str, ...],
    control_plane: str,
    config_repository: str | None,
    config_tag: str | None,
    charts_repository: str | None,
    bundle_file: Path | None,
    pin: bool,
    flux_dir: Path,
    ca_file: Path | None,
    config_path: Path | None,
    lock: Path | None,
    mirror: str | None,
    offline: bool,
    cache_dir: Path | None,
    output: Path,
    force: bool,
    as_json: bool,
) -> None:
    """Write a release manifest: images, control plane, bundle digest, charts, profile values."""
    check_replaceable(output, force=force)  # before any registry call; again when writing
    config = load_config(config_path)
    registry = config.appliance.registry
    ca_file = _ca_file(ca_file, config_path, config)
    profile = profile or config.appliance.values_profile
    if config_repository is None:
        config_repository = (
            f"{registry.host}/{registry.release_repository}".removesuffix("-release") + "-config"
        )
    if charts_repository is None:
        charts_repository = (
            f"{registry.host}/{registry.release_repository}".removesuffix("-release") + "-charts"
        )
    # Every option is checked before the topology, the charts and the registry.
    problems = _release_name_problems(version, channel, config_tag)
    image_refs: dict[str, ImageRef] = {}
    control: ImageRef | None = None
    with _collect(problems):
        image_refs = parse_image_options(images)
    with _collect(problems):
        control = parse_image(control_plane, "--control-plane")
    with _collect(problems):
        split_repository(config_repository, "--config-repository")
    with _collect(problems):
        split_repository(charts_repository, "--charts-repository")
    if problems or control is None:
        raise _usage_error(problems)
    schemas = _schemas(config_path, lock, mirror, offline, cache_dir)
    overlays = check_topology(flux_dir, KubectlKustomize(), schemas=schemas)
    wanted = f"profiles/{profile}"
    built = next((o for o in overlays if o.path == wanted), None)
    if built is None:
        raise ConfigError(f"--profile {profile}: {flux_dir / wanted} has no kustomization")
    artifact = read_layout(bundle_file) if bundle_file else build_bundle(flux_dir)
    with _registry_errors():
        # Charts are always pinned: the appliance pulls them by digest only.
        charts = pin_charts(
            chart_versions(built), charts_repository, lambda ref: _resolve(ref, ca_file)
        )
    if pin:
        with _registry_errors():
            image_refs = pin_digests(image_refs, lambda ref: _resolve(ref, ca_file))
            if not control.digest:
                control = ImageRef(control.repository, control.tag, _resolve(control, ca_file))
    manifest = render_release(
        version=version,
        channel=channel,
        profile=profile,
        images=image_refs,
        control_plane=control,
        config=ConfigBundleRef(config_repository, artifact.digest, config_tag),
        charts=charts,
        values=profile_values(flux_dir, profile),
    )
    _write_output(output, manifest.to_json(), force=force)
    if as_json:
        _echo_json({"output": str(output), "bundleDigest": artifact.digest, "version": version})
    else:
        click.echo(f"{output}: release {version} ({channel}), bundle {artifact.digest}")


def _resolve(ref: ImageRef, ca_file: Path | None) -> str:
    parsed = parse_reference(f"{ref.repository}:{ref.tag}")
    with RegistryClient(parsed.registry, ca_bundle=ca_file) as client:
        return client.resolve(parsed.repository, parsed.reference)


@release.command("validate")
@click.argument("manifests", nargs=-1, type=_PATH)
@click.option("--topology", is_flag=True, help="Also check the Flux topology in --flux-dir.")
@click.option("--bundle", "bundle_file", type=_PATH, default=None,
              help="Also check config.digest against this bundle file.")  # fmt: skip
@flux_dir_option
@config_option
@flux_schema_options
def validate(
    manifests: tuple[Path, ...],
    topology: bool,
    bundle_file: Path | None,
    flux_dir: Path,
    config_path: Path | None,
    lock: Path | None,
    mirror: str | None,
    offline: bool,
    cache_dir: Path | None,
) -> None:
    """Check release manifests (schema, digests, profile values); with none, the topology."""
    if topology or not manifests:
        schemas = _schemas(config_path, lock, mirror, offline, cache_dir)
        overlays = check_topology(flux_dir, KubectlKustomize(), schemas=schemas)
        click.echo(f"{flux_dir}: ok ({', '.join(o.path for o in overlays)})")
    problems: list[str] = []
    hints: list[str] = []  # a manifest's own (e.g. what to make smaller), else the general one
    loaded: list[tuple[Path, Release]] = []
    for path in manifests:
        try:
            loaded.append((path, load_release(path)))
        except ReleaseError as exc:
            problems += exc.problems
            hints += [exc.hint] if exc.hint else []
    if bundle_file is not None:
        digest = read_layout(bundle_file).digest
        problems += [
            f"{path}: config.digest: {r.config.digest} is not the bundle's {digest}"
            for path, r in loaded
            if r.config.digest != digest
        ]
    if problems:
        raise ConfigError(problems, hint=hints[0] if hints else MANIFEST_HINT)
    for path, r in loaded:
        click.echo(f"{path}: ok (release {r.version}, channel {r.channel}, {r.values_profile})")


@release.command("push")
@click.argument("manifest", type=_PATH)
@click.option(
    "--to",
    "to",
    default=None,
    help="Release repository registry/org/name-release [default: the config's].",
)
@click.option(
    "--bundle",
    "bundle_file",
    type=_PATH,
    default=None,
    help="Bundle file from `release bundle` [default: pack --flux-dir now].",
)
@flux_dir_option
@ca_option
@config_option
@flux_schema_options
@click.option("--username", default=None, help=f"Registry user [default: ${USERNAME_ENV}].")
@click.option("--password-stdin", is_flag=True, help=f"Read the password from stdin "
              f"[default: ${PASSWORD_ENV}].")  # fmt: skip
@json_option
def push(
    manifest: Path,
    to: str | None,
    bundle_file: Path | None,
    flux_dir: Path,
    ca_file: Path | None,
    config_path: Path | None,
    lock: Path | None,
    mirror: str | None,
    offline: bool,
    cache_dir: Path | None,
    username: str | None,
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Publish the bundle and the release with oras, then move the release's channel tag."""
    # Only a push loads oras (and, through it, jsonschema and its format grammars: 1.3 s).
    from isobuild.release.publish import publish_release

    loaded = _load_manifest(manifest)
    config = load_config(config_path)
    ca_file = _ca_file(ca_file, config_path, config)
    if to is None:
        registry = config.appliance.registry
        to = f"{registry.host}/{registry.release_repository}"
    try:
        split_repository(to, "--to")
    except ConfigError as exc:
        raise _usage_error(exc.problems) from exc
    schemas = None if bundle_file else _schemas(config_path, lock, mirror, offline, cache_dir)
    artifact = _bundle(bundle_file, flux_dir, schemas)
    credentials = _credentials(username, password_stdin)
    with _registry_errors():
        published = publish_release(
            loaded, artifact, release_repository=to, credentials=credentials, ca_bundle=ca_file
        )
    if as_json:
        _echo_json(published.to_json())
        return
    click.echo(f"bundle   {published.bundle.reference}")
    click.echo(f"release  {published.release.reference}")
    click.echo(f"tags     {', '.join(published.release.tags)}")


@release.command("show")
@click.argument("ref")
@ca_option
@config_option
@json_option
def show(ref: str, ca_file: Path | None, config_path: Path | None, as_json: bool) -> None:
    """Resolve REF (a channel, a version, or registry/repo:tag) and print its manifest.

    Anonymous: no credentials are read or sent."""
    config = load_config(config_path)
    ca_file = _ca_file(ca_file, config_path, config)
    if "/" in ref or "@" in ref:  # "@": a digest, or user:password@ to refuse unrepeated
        try:
            parsed = parse_reference(ref)
        except ValueError as exc:
            raise _usage_error([f"REF: {exc}"]) from exc
        registry, repository, reference = parsed.registry, parsed.repository, parsed.reference
    elif TAG_RE.fullmatch(ref) or DIGEST_RE.fullmatch(ref):
        settings = config.appliance.registry
        registry, repository, reference = settings.host, settings.release_repository, ref
    else:
        raise ConfigError(
            f"REF: {ref!r}: expected a channel or version (an OCI tag), a "
            "digest sha256:<64 lowercase hex>, or registry/repository[:tag][@digest]",
            hint="for example: stable, 1.4.0 or ghcr.io/nine-minds/alga-appliance-release:stable",
        )
    where = f"{registry}/{repository}{'@' if DIGEST_RE.fullmatch(reference) else ':'}{reference}"
    with _registry_errors(), RegistryClient(registry, ca_bundle=ca_file) as client:
        fetched = fetch_release(client, repository, reference)
    if as_json:
        _echo_json(
            {
                "reference": where,
                "manifestDigest": fetched.manifest_digest,
                "configDigest": fetched.config_digest,
                "release": fetched.release.document,
            }
        )
        return
    log.info("%s -> %s", where, fetched.manifest_digest)
    click.echo(fetched.release.to_json().decode(), nl=False)
