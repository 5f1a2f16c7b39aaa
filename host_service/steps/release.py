"""Release: channel or version tag -> manifest digest -> validated release manifest.

The resolution is kept under ``<state>/release/`` (derived state, not operator intent) so a
resumed run uses the same release; the cached manifest's digest is checked on every read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from host_service import atomic
from host_service.intent import DIGEST, VERSION
from host_service.oci import (
    AuthenticationError,
    DigestMismatch,
    NotFoundError,
    RegistryError,
    RegistryTLSError,
    RegistryUnreachable,
)
from host_service.registry_access import trust_site_ca
from host_service.release import (
    FetchedRelease,
    Release,
    ReleaseError,
    fetch_release,
    parse_release,
)
from host_service.settings import Paths
from host_service.steps.context import StepContext, StepFailed


@dataclass(frozen=True)
class Resolution:
    ref: str  # what the operator asked for: channel, version or digest
    repository: str  # registry/repository of the release artifact
    manifest_digest: str
    config_digest: str
    version: str
    sha256: str  # of the cached manifest file, re-checked on read


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


def _manifest_file(paths: Paths, manifest_digest: str) -> Path:
    """Where the release manifest with this digest is kept, beside the resolution."""
    return paths.release_dir / f"{manifest_digest.removeprefix('sha256:')}.json"


def load_resolved(ctx: StepContext) -> tuple[Resolution, Release] | None:
    """The resolved release for the current inputs, or None (never resolved, stale, damaged)."""
    resolution = read_resolution(ctx.settings.paths)
    if resolution is None:
        return None
    cached = _manifest_file(ctx.settings.paths, resolution.manifest_digest)
    try:
        raw = cached.read_bytes()
    except FileNotFoundError:
        return None
    if resolution.ref != ctx.intent.release_ref:
        return None
    if resolution.repository != _repository(ctx):
        return None
    if hashlib.sha256(raw).hexdigest() != resolution.sha256:
        return None
    try:
        release = parse_release(raw, source=str(cached))
    except ReleaseError:
        return None
    return resolution, release


def _repository(ctx: StepContext) -> str:
    return f"{ctx.settings.registry.host}/{ctx.settings.registry.release_repository}"


def probe(ctx: StepContext) -> bool:
    return load_resolved(ctx) is not None


def run(ctx: StepContext) -> None:
    ref = ctx.intent.release_ref
    fetched = fetch(ctx, ref)
    store(ctx, ref, fetched)
    ctx.report(
        f"release {fetched.release.version} ({fetched.manifest_digest[:19]}…)",
        detail=f"release {fetched.release.version} = {fetched.manifest_digest}",
    )


def fetch(ctx: StepContext, ref: str) -> FetchedRelease:
    """Resolve ``ref`` (channel, version or manifest digest) and read the validated release
    manifest for this appliance's profile; stores nothing. Raises StepFailed."""
    settings = ctx.settings
    where = f"{_repository(ctx)}{'@' if ref.startswith('sha256:') else ':'}{ref}"
    ctx.report(f"resolving {where}")
    try:
        with ctx.registry() as client:
            fetched = fetch_release(client, settings.registry.release_repository, ref)
    except NotFoundError as exc:
        what = "release" if VERSION.fullmatch(ref) or DIGEST.fullmatch(ref) else "channel"
        raise StepFailed(
            f"no release found for {what} {ref!r} ({exc.detail})",
            cause=f"the {what} does not exist in {_repository(ctx)}, or nothing was "
            "published to it yet",
            next_step="check the channel or version in setup (stable, nightly, or a "
            "published version), save it, and the bootstrap continues",
            output=str(exc),
        ) from exc
    except DigestMismatch as exc:
        raise StepFailed(
            f"the release from {where} failed its digest check",
            cause="the bytes received do not hash to their digest: a corrupting proxy or "
            "mirror, or a tampered registry",
            next_step="do not bypass this; check the proxy or mirror, then retry",
            output=str(exc),
        ) from exc
    except RegistryTLSError as exc:
        raise StepFailed(
            f"TLS to the registry failed: {exc.detail}",
            cause="a TLS-inspecting proxy or firewall, or a private registry, whose CA the "
            "appliance does not trust",
            next_step=f"exempt the registry from TLS inspection, or {trust_site_ca(settings)}",
            output=str(exc),
        ) from exc
    except RegistryUnreachable as exc:
        raise StepFailed(
            f"cannot reach the registry: {exc.detail}",
            cause="network, proxy or DNS trouble since preflight",
            next_step="check connectivity to the registry (and the proxy), then retry",
            output=str(exc),
        ) from exc
    except AuthenticationError as exc:
        raise StepFailed(
            f"the registry refused access to {where}: {exc.detail}",
            cause="the release repository is private or the name is wrong",
            next_step="make the release repository public or fix its name in the build "
            "config, then retry",
            output=str(exc),
        ) from exc
    except ReleaseError as exc:
        raise StepFailed(
            f"the release manifest at {where} is not valid",
            cause="it was published with a schema this appliance does not read, or is broken",
            next_step="pin a release this appliance supports, or update the appliance",
            output=str(exc),
        ) from exc
    except RegistryError as exc:
        raise StepFailed(
            f"reading the release failed: {exc.detail}",
            cause="the registry answered something unexpected",
            next_step="retry; if it persists, collect a support bundle",
            output=str(exc),
        ) from exc
    release = fetched.release
    if release.values_profile != settings.values_profile:
        raise StepFailed(
            f"release {release.version} is for profile {release.values_profile!r}, this "
            f"appliance runs {settings.values_profile!r}",
            cause="the channel carries releases for another kind of appliance",
            next_step="pick a channel or release for this profile",
        )
    return fetched


def store(ctx: StepContext, ref: str, fetched: FetchedRelease) -> Resolution:
    """Keep ``fetched`` as the resolution of ``ref`` (what the later steps apply)."""
    data = fetched.release.to_json()
    paths = ctx.settings.paths
    atomic.write_bytes(_manifest_file(paths, fetched.manifest_digest), data, mode=0o600)
    resolution = Resolution(
        ref=ref,
        repository=_repository(ctx),
        manifest_digest=fetched.manifest_digest,
        config_digest=fetched.config_digest,
        version=fetched.release.version,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    write_resolution(paths, resolution)
    return resolution


def require_resolved(ctx: StepContext) -> tuple[Resolution, Release]:
    """For the steps after this one: the resolution, resolving again if it went missing."""
    found = load_resolved(ctx)
    if found is None:
        run(ctx)
        found = load_resolved(ctx)
    if found is None:  # pragma: no cover - run() either stores a resolution or raises
        raise StepFailed(
            "the release resolution could not be stored",
            cause="the state directory is not writable",
            next_step="check the disk, then retry",
        )
    return found
