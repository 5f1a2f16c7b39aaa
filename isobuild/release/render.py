"""Render a release manifest from a version, image references, the bundle and a values profile."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from host_service.oci import parse_reference
from host_service.release import (
    IMAGE_SERVICES,
    SCHEMA_V1,
    ChartRef,
    ConfigBundleRef,
    ImageRef,
    Release,
    ReleaseError,
    parse_release,
    profile_values_file,
)
from isobuild.errors import ConfigError
from isobuild.release.bundle import NotUtf8Error, read_utf8, values_files


def parse_image(text: str, what: str) -> ImageRef:
    """``registry/repo[:tag][@digest]`` as an ImageRef; ``what`` names the option for errors."""
    try:
        ref = parse_reference(text)
    except ValueError as exc:
        raise ConfigError(f"{what}: {exc}") from exc
    if ref.tag is None and ref.digest is None:
        raise ConfigError(f"{what}: {text!r} has neither a tag nor a digest: pin one")
    return ImageRef(f"{ref.registry}/{ref.repository}", ref.tag, ref.digest)


def split_repository(text: str, what: str) -> tuple[str, str]:
    """``registry/repository`` (no tag) into its two parts."""
    try:
        ref = parse_reference(text)
    except ValueError as exc:
        raise ConfigError(f"{what}: {exc}") from exc
    if ref.tag or ref.digest:
        raise ConfigError(f"{what}: {text!r}: give the repository without a tag or digest")
    return ref.registry, ref.repository


def parse_image_options(values: tuple[str, ...]) -> dict[str, ImageRef]:
    """``--image algaCore=REF`` options; every image key must be given exactly once."""
    images: dict[str, ImageRef] = {}
    seen: set[str] = set()
    problems = []
    for value in values:
        key, eq, ref = value.partition("=")
        if not eq or key not in IMAGE_SERVICES:
            problems.append(
                f"--image {value!r}: expected KEY=REF with KEY one of {', '.join(IMAGE_SERVICES)}"
            )
            continue
        if key in seen:
            problems.append(f"--image {key}: given twice")
            continue
        seen.add(key)
        try:
            images[key] = parse_image(ref, f"--image {key}")
        except ConfigError as exc:
            problems += exc.problems
    for key in IMAGE_SERVICES:
        if key not in seen:
            problems.append(f"--image {key}=REF: missing")
    if problems:
        raise ConfigError(problems)
    return images


def pin_digests(
    images: Mapping[str, ImageRef], resolve: Callable[[ImageRef], str]
) -> dict[str, ImageRef]:
    """Add the registry's digest to every image given by tag only."""
    return {
        key: ref if ref.digest else ImageRef(ref.repository, ref.tag, resolve(ref))
        for key, ref in images.items()
    }


def pin_charts(
    versions: Mapping[str, str], repository: str, resolve: Callable[[ImageRef], str]
) -> dict[str, ChartRef]:
    """Each chart's ``<repository>/<chart>:<version>`` resolved to the digest the release
    pins (Helm tags an OCI chart with its version, ``+`` written as ``_``)."""
    pinned = {}
    for chart, version in sorted(versions.items()):
        ref = ImageRef(f"{repository}/{chart}", version.replace("+", "_"))
        pinned[chart] = ChartRef(ref.repository, version, resolve(ref))
    return pinned


def profile_values(flux_dir: Path, profile: str) -> dict[str, str]:
    """``{"<service>.<profile>.yaml": text}`` from ``flux/profiles/<profile>/values/``: the
    files the bundle ships (``bundle.values_files``: no hidden files, symlinks refused)."""
    values_dir = flux_dir / "profiles" / profile / "values"
    if not values_dir.is_dir():
        known = sorted(p.parent.name for p in (flux_dir / "profiles").glob("*/values"))
        raise ConfigError(
            f"{values_dir}: no such values profile",
            hint=f"profiles with values: {', '.join(known) or 'none'}",
        )
    values = {}
    for name, path in sorted(values_files(flux_dir, f"profiles/{profile}").items()):
        try:
            values[profile_values_file(name, profile)] = read_utf8(path)
        except NotUtf8Error as exc:
            raise ConfigError(f"{path}: {exc}", hint="save the file as UTF-8") from exc
    return values


def render_release(
    *,
    version: str,
    channel: str,
    profile: str,
    images: Mapping[str, ImageRef],
    control_plane: ImageRef,
    config: ConfigBundleRef,
    charts: Mapping[str, ChartRef],
    values: Mapping[str, str],
) -> Release:
    """The release manifest, validated by the same loader the appliance uses."""
    config_json: dict[str, Any] = {"repository": config.repository, "digest": config.digest}
    if config.tag:
        config_json["tag"] = config.tag
    document = {
        "schema": SCHEMA_V1,
        "version": version,
        "channel": channel,
        "valuesProfile": profile,
        "images": {key: images[key].to_json() for key in IMAGE_SERVICES},
        "controlPlane": control_plane.to_json(),
        "config": config_json,
        "charts": {name: charts[name].to_json() for name in sorted(charts)},
        "profileValues": dict(sorted(values.items())),
    }
    try:
        return parse_release(document, source="rendered release")
    except ReleaseError as exc:
        raise ConfigError(exc.problems, hint=exc.hint) from exc
