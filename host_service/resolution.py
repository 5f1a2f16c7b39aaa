"""The release resolution: which release a channel, version or digest resolved to.

Kept under ``<state>/release/`` (derived state, not operator intent) beside the manifest it
names, so a resumed run uses the same release; the cached manifest's sha256 is checked on
every read. The release step writes it; later steps, the status view and support tooling
read it. No blocker wording here: errors are typed (``host_service.oci``, ``ReleaseError``,
``ProfileMismatch``) and the steps word them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from host_service import atomic
from host_service.errors import ExternalError
from host_service.oci import RegistryClient
from host_service.release import Release, ReleaseError, fetch_release, parse_release
from host_service.settings import Paths, Settings


@dataclass(frozen=True)
class Resolution:
    ref: str  # what the operator asked for: channel, version or digest
    repository: str  # registry/repository of the release artifact
    manifest_digest: str
    config_digest: str
    version: str
    sha256: str  # of the cached manifest file, re-checked on read


class ProfileMismatch(ExternalError):
    """The release found is for another values profile (another kind of appliance)."""

    def __init__(self, release: Release, profile: str) -> None:
        super().__init__(
            f"release {release.version} is for profile {release.values_profile!r}, this "
            f"appliance runs {profile!r}"
        )
        self.release = release
        self.profile = profile


def repository(settings: Settings) -> str:
    """``registry/repository`` of the release artifacts this appliance reads."""
    return f"{settings.registry.host}/{settings.registry.release_repository}"


def read_resolution(paths: Paths) -> Resolution | None:
    """The stored resolution (``<state>/release/resolution.json``), or None if absent or damaged."""
    try:
        data = json.loads(paths.resolution_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    names = [f.name for f in fields(Resolution)]
    if not isinstance(data, dict) or sorted(data) != sorted(names):
        return None
    if not all(isinstance(data[name], str) for name in names):
        return None
    return Resolution(**data)


def write_resolution(paths: Paths, resolution: Resolution) -> None:
    atomic.write_json(paths.resolution_file, asdict(resolution), mode=0o600)


def manifest_file(paths: Paths, manifest_digest: str) -> Path:
    """Where the release manifest with this digest is kept, beside the resolution."""
    return paths.release_dir / f"{manifest_digest.removeprefix('sha256:')}.json"


def load_resolved(settings: Settings, ref: str) -> tuple[Resolution, Release] | None:
    """The stored release for ``ref``, or None (never resolved, another ref, stale, damaged)."""
    resolution = read_resolution(settings.paths)
    if resolution is None:
        return None
    if resolution.ref != ref or resolution.repository != repository(settings):
        return None
    cached = manifest_file(settings.paths, resolution.manifest_digest)
    try:
        raw = cached.read_bytes()
    except FileNotFoundError:
        return None
    if hashlib.sha256(raw).hexdigest() != resolution.sha256:
        return None
    try:
        release = parse_release(raw, source=str(cached))
    except ReleaseError:
        return None
    return resolution, release


def resolve(client: RegistryClient, settings: Settings, ref: str) -> tuple[Resolution, Release]:
    """Read the release ``ref`` names from the registry, check it fits, and store it.

    Raises the client's ``RegistryError`` kinds, ``ReleaseError`` or ``ProfileMismatch``;
    a failed write raises ``OSError`` naming the file. Nothing is stored on failure.
    """
    fetched = fetch_release(client, settings.registry.release_repository, ref)
    release = fetched.release
    if release.values_profile != settings.values_profile:
        raise ProfileMismatch(release, settings.values_profile)
    data = release.to_json()
    atomic.write_bytes(manifest_file(settings.paths, fetched.manifest_digest), data, mode=0o600)
    resolution = Resolution(
        ref=ref,
        repository=repository(settings),
        manifest_digest=fetched.manifest_digest,
        config_digest=fetched.config_digest,
        version=release.version,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    write_resolution(settings.paths, resolution)
    return resolution, release
