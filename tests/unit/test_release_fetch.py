"""fetch_release against an in-memory registry: by tag and by digest, and each way the
artifact can be the wrong thing, named with the reference that was read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from host_service.oci import Manifest, sha256_digest
from host_service.release import RELEASE_MEDIA_TYPE, ReleaseError, fetch_release
from tests.fixtures.host_service import release_document
from tests.unit.test_update import FakeRegistry

REPO = "nine-minds/alga-appliance-release"


class Recording(FakeRegistry):
    def __init__(self) -> None:
        super().__init__()
        self.blob_limits: list[int] = []
        self.repositories: list[str] = []

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        self.repositories.append(repository)
        return super().get_manifest(repository, reference)

    def get_blob(self, repository: str, digest: str, *, max_bytes: int = 0) -> bytes:
        self.blob_limits.append(max_bytes)
        self.repositories.append(repository)
        return super().get_blob(repository, digest, max_bytes=max_bytes)

    def put_manifest(self, tag: str, document: dict[str, Any], media_type: str) -> str:
        data = json.dumps(document).encode()
        digest = sha256_digest(data)
        self.manifests[digest] = Manifest(digest, media_type, data, document)
        self.tags[tag] = digest
        return digest


def registry_with_release() -> tuple[Recording, str]:
    registry = Recording()
    digest = registry.publish(
        release_document("1.5.0", "stable", "ghcr.io/c", "sha256:" + "c" * 64), "stable"
    )
    return registry, digest


def test_a_release_by_tag_and_by_digest() -> None:
    registry, digest = registry_with_release()
    fetched = fetch_release(registry, REPO, "stable")  # type: ignore[arg-type]
    config = registry.manifests[digest].config.digest
    assert (fetched.release.version, fetched.reference) == ("1.5.0", "stable")
    assert (fetched.manifest_digest, fetched.config_digest) == (digest, config)
    assert registry.blob_limits == [8 * 1024 * 1024]
    assert registry.repositories == [REPO, REPO]
    assert fetch_release(registry, REPO, digest).reference == digest  # type: ignore[arg-type]


def refusal(registry: Recording, ref: str) -> ReleaseError:
    with pytest.raises(ReleaseError) as caught:
        fetch_release(registry, REPO, ref)  # type: ignore[arg-type]
    return caught.value


def test_an_image_index_is_not_a_release() -> None:
    registry = Recording()
    digest = registry.put_manifest(
        "stable", {"manifests": []}, "application/vnd.oci.image.index.v1+json"
    )
    expected = "is an image index, expected a release artifact manifest"
    assert str(refusal(registry, "stable")) == f"ghcr.io/{REPO}:stable: {expected}"
    assert str(refusal(registry, digest)) == f"ghcr.io/{REPO}@{digest}: {expected}"


def test_a_manifest_without_a_config_is_not_a_release() -> None:
    registry = Recording()
    registry.put_manifest("stable", {"layers": []}, "application/vnd.oci.image.manifest.v1+json")
    assert str(refusal(registry, "stable")) == (
        f"ghcr.io/{REPO}:stable: manifest has no valid config descriptor"
    )


def test_an_image_is_not_a_release_and_the_hint_says_where_to_look() -> None:
    registry = Recording()
    config = {"mediaType": "application/vnd.oci.image.config.v1+json",
              "digest": "sha256:" + "0" * 64, "size": 2}  # fmt: skip
    registry.put_manifest(
        "stable", {"config": config, "layers": []}, "application/vnd.oci.image.manifest.v1+json"
    )
    error = refusal(registry, "stable")
    assert str(error) == (
        f"ghcr.io/{REPO}:stable: config media type is "
        f"'application/vnd.oci.image.config.v1+json', expected {RELEASE_MEDIA_TYPE}"
    )
    assert error.hint == "is this the release repository (<org>/<name>-release)?"


def test_a_broken_release_names_the_reference_and_the_config_digest() -> None:
    registry, digest = registry_with_release()
    config = registry.manifests[digest].config.digest
    registry.blobs[config] = b'{"schema": "alga.appliance.release/v1"}'
    error = refusal(registry, "stable")
    assert error.problems
    assert all(p.startswith(f"ghcr.io/{REPO}:stable (config {config}): ") for p in error.problems)
