"""Resolving the release (steps.resolved): what each registry failure tells the operator, the
reference it names (tag or digest), and resolving again when the stored release is gone."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from host_service.intent import SetupIntent
from host_service.oci import (
    AuthenticationError,
    DigestMismatch,
    NotFoundError,
    RegistryError,
    RegistryTLSError,
    RegistryUnreachable,
)
from host_service.registry_access import trust_site_ca
from host_service.release import ReleaseError, parse_release
from host_service.resolution import ProfileMismatch
from host_service.steps import resolved
from host_service.steps.context import StepContext, StepFailed
from tests.fixtures.host_service import release_document
from tests.unit.test_host_steps import context
from tests.unit.test_update import FakeRegistry

REPOSITORY = "ghcr.io/nine-minds/alga-appliance-release"
DIGEST = "sha256:" + "a" * 64


class Refusing:
    """A registry client that fails every read with ``error``."""

    registry = "ghcr.io"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_manifest(self, repository: str, reference: str) -> Any:
        raise self.error

    def __enter__(self) -> Refusing:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def with_registry(ctx: StepContext, client: Any) -> StepContext:
    return dataclasses.replace(ctx, registry=lambda: client)


def refused(tmp_path: Path, error: Exception, ref: str = "stable") -> tuple[StepFailed, list[Any]]:
    ctx, reports = context(tmp_path)
    with pytest.raises(StepFailed) as caught:
        resolved.fetch(with_registry(ctx, Refusing(error)), ref)
    return caught.value, reports


def repository(tmp_path: Path) -> str:
    ctx, _ = context(tmp_path)
    return f"{ctx.settings.registry.host}/{ctx.settings.registry.release_repository}"


def test_a_channel_nobody_published_to(tmp_path: Path) -> None:
    error = NotFoundError("manifest unknown", registry="ghcr.io")
    failed, reports = refused(tmp_path, error)
    repo = repository(tmp_path)
    assert reports == [(f"resolving {repo}:stable", None)]
    assert str(failed) == "no release found for channel 'stable' (manifest unknown)"
    assert failed.cause == (
        f"the channel does not exist in {repo}, or nothing was published to it yet"
    )
    assert failed.output == "ghcr.io: manifest unknown"


@pytest.mark.parametrize("ref", ["1.4.2", DIGEST])
def test_a_version_or_digest_is_a_release_not_a_channel(tmp_path: Path, ref: str) -> None:
    failed, reports = refused(tmp_path, NotFoundError("manifest unknown", registry="ghcr.io"), ref)
    separator = "@" if ref.startswith("sha256:") else ":"
    assert reports == [(f"resolving {repository(tmp_path)}{separator}{ref}", None)]
    assert str(failed) == f"no release found for release {ref!r} (manifest unknown)"


def test_each_registry_failure_has_its_own_wording(tmp_path: Path) -> None:
    repo = repository(tmp_path)
    cases: list[tuple[Exception, str]] = [
        (
            DigestMismatch(expected=DIGEST, actual="sha256:" + "b" * 64, what="manifest",
                           registry="ghcr.io", repository="r", reference="stable"),
            f"the release from {repo}:stable failed its digest check",
        ),
        (
            RegistryTLSError("certificate verify failed", registry="ghcr.io"),
            "TLS to the registry failed: certificate verify failed",
        ),
        (
            RegistryUnreachable("connection refused", registry="ghcr.io"),
            "cannot reach the registry: connection refused",
        ),
        (
            AuthenticationError("denied", registry="ghcr.io"),
            f"the registry refused access to {repo}:stable: denied",
        ),
        (ReleaseError("bad schema"), f"the release manifest at {repo}:stable is not valid"),
        (
            RegistryError("HTTP 500", registry="ghcr.io"),
            "reading the release failed: HTTP 500",
        ),
    ]  # fmt: skip
    for n, (error, message) in enumerate(cases):
        failed, _ = refused(tmp_path / str(n), error)
        assert str(failed) == message.replace(repo, repository(tmp_path / str(n)))
        assert failed.output == str(error)


def test_tls_failure_says_how_to_trust_the_site_ca(tmp_path: Path) -> None:
    failed, _ = refused(tmp_path, RegistryTLSError("self-signed", registry="ghcr.io"))
    ctx, _ = context(tmp_path)
    trust = trust_site_ca(ctx.settings)
    assert failed.next_step == f"exempt the registry from TLS inspection, or {trust}"


def test_a_release_for_another_profile_has_no_output(tmp_path: Path) -> None:
    document = release_document("1.4.0", "stable", "ghcr.io/c", DIGEST)
    error = ProfileMismatch(parse_release(document, source="test"), "ha-cluster")
    failed, _ = refused(tmp_path, error)
    assert str(failed) == str(error)
    assert failed.cause == "the channel carries releases for another kind of appliance"
    assert failed.output == ""


def test_resolve_reports_the_version_and_digest(tmp_path: Path) -> None:
    registry = FakeRegistry()
    digest = registry.publish(release_document("1.4.0", "stable", "ghcr.io/c", DIGEST), "stable")
    ctx, reports = context(tmp_path)
    found, release = resolved.resolve(with_registry(ctx, registry))
    assert (found.manifest_digest, release.version) == (digest, "1.4.0")
    assert reports[-1] == (f"release 1.4.0 ({digest[:19]}…)", f"release 1.4.0 = {digest}")
    assert len(f"{digest[:19]}") == 19


def test_require_resolves_again_when_the_stored_release_is_gone(tmp_path: Path) -> None:
    registry = FakeRegistry()
    registry.publish(release_document("1.4.0", "stable", "ghcr.io/c", DIGEST), "stable")
    ctx, _ = context(tmp_path)
    ctx = with_registry(ctx, registry)
    assert resolved.load(ctx) is None
    found, _ = resolved.require(ctx)
    assert registry.asked == ["stable"]
    assert resolved.require(ctx)[0] == found  # stored now: no second registry read
    assert registry.asked == ["stable"]
    nightly = dataclasses.replace(
        ctx, intent=SetupIntent(app_url="https://psa.example.com", channel="nightly")
    )
    with pytest.raises(KeyError):
        resolved.require(nightly)  # another channel: resolved again (and not published)
