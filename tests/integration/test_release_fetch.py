"""fetch_release against the real registry: channel and version, wrong artifact, tampering."""

from __future__ import annotations

import pytest

from host_service.oci import DigestMismatch
from host_service.release import (
    EMPTY_BLOB,
    EMPTY_MEDIA_TYPE,
    RELEASE_MEDIA_TYPE,
    ReleaseError,
    canonical_json,
    fetch_release,
)
from tests.fixtures.registry import RunningRegistry
from tests.unit.test_release import sample

REPO = "fetch/alga-appliance-release"


def _publish(registry: RunningRegistry, version: str, *tags: str) -> tuple[str, bytes]:
    config = canonical_json(sample() | {"version": version})
    digest = ""
    for tag in (version, *tags):
        digest = registry.push_artifact(
            REPO,
            tag,
            config=config,
            config_media_type=RELEASE_MEDIA_TYPE,
            layers=[(EMPTY_BLOB, EMPTY_MEDIA_TYPE)],
        )
    return digest, config


def test_fetch_by_channel_and_version(registry: RunningRegistry) -> None:
    digest, config = _publish(registry, "1.4.0", "stable")
    with registry.client() as client:
        by_channel = fetch_release(client, REPO, "stable")
        by_version = fetch_release(client, REPO, "1.4.0")
        by_digest = fetch_release(client, REPO, digest)
    assert by_channel.release.version == "1.4.0"
    assert by_channel.manifest_digest == by_version.manifest_digest == digest
    assert by_digest.release.to_json() == config


def test_wrong_artifact_type_is_refused(registry: RunningRegistry) -> None:
    registry.push_artifact("fetch/not-a-release", "stable", config=b'{"a": 1}')
    with registry.client() as client, pytest.raises(ReleaseError) as caught:
        fetch_release(client, "fetch/not-a-release", "stable")
    assert f"{registry.host}/fetch/not-a-release:stable: config media type" in str(caught.value)


def test_invalid_release_names_the_artifact(registry: RunningRegistry) -> None:
    bad = canonical_json(sample() | {"schema": "alga.appliance.release/v9", "version": "9.0.0"})
    registry.push_artifact(REPO, "9.0.0", config=bad, config_media_type=RELEASE_MEDIA_TYPE)
    with registry.client() as client, pytest.raises(ReleaseError) as caught:
        fetch_release(client, REPO, "9.0.0")
    assert f"{registry.host}/{REPO}:9.0.0 (config sha256:" in str(caught.value)
    assert "unsupported release schema 'alga.appliance.release/v9'" in str(caught.value)


def test_tampered_release_config_is_refused(registry: RunningRegistry) -> None:
    _publish(registry, "1.4.1-tamper")
    with registry.client() as client:
        manifest = client.get_manifest(REPO, "1.4.1-tamper")
        registry.tamper_blob(manifest.config.digest)
        with pytest.raises(DigestMismatch) as caught:
            fetch_release(client, REPO, "1.4.1-tamper")
    assert caught.value.expected == manifest.config.digest
