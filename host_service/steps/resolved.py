"""The resolved release for the release step and every step after it: the stored resolution,
or the channel or version resolved again; each way resolving can fail, worded as data.

Not a step: steps never import each other, they share this, ``context`` and ``blockers``.
"""

from __future__ import annotations

from host_service import resolution
from host_service.oci import (
    AuthenticationError,
    DigestMismatch,
    NotFoundError,
    RegistryError,
    RegistryTLSError,
    RegistryUnreachable,
)
from host_service.registry_access import trust_site_ca
from host_service.release import Release, ReleaseError
from host_service.resolution import ProfileMismatch, Resolution
from host_service.steps.blockers import Wording, WordingTable
from host_service.steps.context import StepContext

# Why resolving failed, by error class (most specific first); ``{exc}`` is the error.
BLOCKERS = WordingTable(
    {
        NotFoundError: Wording(
            "no release found for {what} {ref!r} ({exc.detail})",
            "the {what} does not exist in {repository}, or nothing was published to it yet",
            "check the channel or version in setup (stable, nightly, or a published "
            "version), save it, and the bootstrap continues",
        ),
        DigestMismatch: Wording(
            "the release from {where} failed its digest check",
            "the bytes received do not hash to their digest: a corrupting proxy or mirror, "
            "or a tampered registry",
            "do not bypass this; check the proxy or mirror, then retry",
        ),
        RegistryTLSError: Wording(
            "TLS to the registry failed: {exc.detail}",
            "a TLS-inspecting proxy or firewall, or a private registry, whose CA the "
            "appliance does not trust",
            "exempt the registry from TLS inspection, or {trust_site_ca}",
        ),
        RegistryUnreachable: Wording(
            "cannot reach the registry: {exc.detail}",
            "network, proxy or DNS trouble since preflight",
            "check connectivity to the registry (and the proxy), then retry",
        ),
        AuthenticationError: Wording(
            "the registry refused access to {where}: {exc.detail}",
            "the release repository is private or the name is wrong",
            "make the release repository public or fix its name in the build config, then retry",
        ),
        ReleaseError: Wording(
            "the release manifest at {where} is not valid",
            "it was published with a schema this appliance does not read, or is broken",
            "pin a release this appliance supports, or update the appliance",
        ),
        ProfileMismatch: Wording(
            "{exc}",
            "the channel carries releases for another kind of appliance",
            "pick a channel or release for this profile",
        ),
        RegistryError: Wording(
            "reading the release failed: {exc.detail}",
            "the registry answered something unexpected",
            "retry; if it persists, collect a support bundle",
        ),
    }
)


def load(ctx: StepContext) -> tuple[Resolution, Release] | None:
    """The stored release for the current inputs, or None."""
    return resolution.load_resolved(ctx.settings, ctx.intent.release_ref)


def resolve(ctx: StepContext) -> tuple[Resolution, Release]:
    """Resolve the operator's channel or version at the registry and store it."""
    ref = ctx.intent.release_ref
    repository = resolution.repository(ctx.settings)
    where = f"{repository}{'@' if ref.startswith('sha256:') else ':'}{ref}"
    ctx.report(f"resolving {where}")
    try:
        with ctx.registry() as client:
            found, release = resolution.resolve(client, ctx.settings, ref)
    except (RegistryError, ReleaseError, ProfileMismatch) as exc:
        output = "" if isinstance(exc, ProfileMismatch) else str(exc)
        raise BLOCKERS.failed(
            exc,
            output=output,
            what="channel" if ctx.intent.channel and not ctx.intent.release else "release",
            ref=ref,
            where=where,
            repository=repository,
            trust_site_ca=trust_site_ca(ctx.settings),
        ) from exc
    ctx.report(
        f"release {release.version} ({found.manifest_digest[:19]}…)",
        detail=f"release {release.version} = {found.manifest_digest}",
    )
    return found, release


def require(ctx: StepContext) -> tuple[Resolution, Release]:
    """For the steps after the release step: the stored release, resolved again if it went
    missing (the persisted state is a cache; the registry is the truth)."""
    return load(ctx) or resolve(ctx)
