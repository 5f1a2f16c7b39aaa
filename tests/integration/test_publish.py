"""The one push path (``isobuild.release.publish.Publisher``, oras-py) against the real
registry with its ghcr-like token service: refusals name who was refused, the pull token a
push starts with is replaced, and the exact bytes land under their digest."""

from __future__ import annotations

import json
import os

import pytest

from host_service.oci import OCI_INDEX, NotFoundError
from isobuild.errors import PayloadError
from isobuild.release.publish import Publisher
from tests.fixtures.registry import RunningRegistry


def _unique(name: str) -> bytes:
    return f"{name}:{os.urandom(8).hex()}".encode()


def test_anonymous_push_is_refused(registry: RunningRegistry) -> None:
    with (
        Publisher(registry.host, credentials=None, ca_bundle=registry.ca_path) as publisher,
        pytest.raises(PayloadError) as caught,
    ):
        publisher.push_blob("oci/anon-push", _unique("nope"), "application/x-test")
    message = str(caught.value)
    assert f"{registry.host}/oci/anon-push" in message
    assert "HTTP 401" in message
    assert "anonymous" in message
    assert "ISOBUILD_REGISTRY_USERNAME" in (caught.value.hint or "")


def test_pull_token_is_upgraded_for_push(registry: RunningRegistry) -> None:
    """The first request of a push (the blob HEAD) gets a pull-only token; the upload's 401
    must fetch a push token, not resend the pull one (oras-py's own backend does)."""
    with Publisher(
        registry.host, credentials=registry.credentials, ca_bundle=registry.ca_path
    ) as publisher:
        with pytest.raises(NotFoundError):
            publisher.client.resolve("oci/upgrade", "missing")
        descriptor = publisher.push_blob("oci/upgrade", _unique("up"), "application/x-test")
        assert publisher.client.blob_exists("oci/upgrade", descriptor.digest)
    scopes = [s for r in registry.policy.requests for s in r.scopes if "oci/upgrade" in s]
    assert any("push" in s for s in scopes), scopes


def test_exact_manifest_bytes_land_under_their_digest(registry: RunningRegistry) -> None:
    """An index with its own media type, formatted as the caller wrote it: the registry keeps
    these bytes (oras-py's upload_manifest would re-serialise them as an image manifest)."""
    amd = registry.push_artifact("oci/exact", "amd", config=_unique("amd"))
    with registry.client() as reader:
        size = len(reader.get_manifest("oci/exact", amd).data)
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": amd,
                "size": size,
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    }
    data = json.dumps(document, indent=3).encode() + b"\n"
    digest = registry.pusher.push_manifest("oci/exact", "v1", data, OCI_INDEX)
    with registry.client() as reader:
        fetched = reader.get_manifest("oci/exact", "v1")
    assert (fetched.digest, fetched.data, fetched.media_type) == (digest, data, OCI_INDEX)
