"""host_service.oci: references, platforms, and auth decisions over a fake transport."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from host_service.oci import (
    AuthenticationError,
    Credentials,
    Descriptor,
    DigestMismatch,
    ProtocolError,
    Reference,
    RegistryClient,
    parse_reference,
    select_platform,
    sha256_digest,
)
from host_service.oci.reference import redact_reference

DIGEST = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ghcr.io/org/app:1.0", Reference("ghcr.io", "org/app", "1.0", None)),
        ("127.0.0.1:5000/a/b/c", Reference("127.0.0.1:5000", "a/b/c", None, None)),
        (f"ghcr.io/org/app@{DIGEST}", Reference("ghcr.io", "org/app", None, DIGEST)),
        (f"localhost/app:v1@{DIGEST}", Reference("localhost", "app", "v1", DIGEST)),
    ],
)
def test_parse_reference(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected
    assert str(parse_reference(text)) == text


@pytest.mark.parametrize(
    "text",
    ["app:1.0", "ghcr.io/Org/App:1", "ghcr.io/org/app:bad tag", "ghcr.io/org/app@sha256:12"],
)
def test_parse_reference_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected|not a valid|not a sha256"):
        parse_reference(text)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("user:S3cretPW@ghcr.io/org/app:1", "***@ghcr.io/org/app:1"),
        ("S3cretPW@ghcr.io/org/app", "***@ghcr.io/org/app"),
        ("u:p@S3cretPW@ghcr.io/org/app", "***@ghcr.io/org/app"),
        ("u:pa/S3cretPW@ghcr.io:5000", "***@ghcr.io:5000"),
        (f"u:S3cretPW@ghcr.io/org/app@{DIGEST}", f"***@ghcr.io/org/app@{DIGEST}"),
        ("https://u:S3cretPW@ghcr.io/org/app", "https://***@ghcr.io/org/app"),
    ],
)
def test_credentials_in_a_reference_are_refused_without_repeating_them(
    text: str, shown: str
) -> None:
    assert redact_reference(text) == shown
    with pytest.raises(ValueError, match="credentials") as caught:
        parse_reference(text)
    assert str(caught.value) == f"{shown!r}: credentials do not belong in a registry reference"
    assert "S3cretPW" not in str(caught.value)


@pytest.mark.parametrize(
    "text", [f"ghcr.io/org/app@{DIGEST}", "ghcr.io/org/app@sha256:12", "ghcr.io/o/a@SHA256:1"]
)
def test_a_digest_is_no_credentials(text: str) -> None:
    assert redact_reference(text) == text


def test_reference_prefers_digest() -> None:
    assert Reference("r", "a", "v1", DIGEST).reference == DIGEST
    assert Reference("r", "a", "v1").reference == "v1"


def test_select_platform() -> None:
    amd = Descriptor(
        "m", "sha256:" + "1" * 64, 1, platform={"os": "linux", "architecture": "amd64"}
    )
    arm = Descriptor(
        "m",
        "sha256:" + "2" * 64,
        1,
        platform={"os": "linux", "architecture": "arm64", "variant": "v8"},
    )
    bare = Descriptor("m", "sha256:" + "3" * 64, 1)
    assert select_platform([bare, arm, amd], "linux/amd64") is amd
    assert select_platform([amd, arm], "linux/arm64") is arm
    assert select_platform([amd, arm], "linux/arm64/v8") is arm
    assert select_platform([amd], "windows/amd64") is None


def test_descriptor_round_trip() -> None:
    data = {"mediaType": "x", "digest": DIGEST, "size": 3, "annotations": {"a": "b"}}
    assert Descriptor.from_json(data).to_json() == data


def test_credentials_repr_hides_password() -> None:
    assert "hunter2" not in repr(Credentials("me", "hunter2"))


Handler = Callable[[requests.PreparedRequest], tuple[int, Mapping[str, str], bytes]]


class FakeTransport(BaseAdapter):
    """A requests transport adapter answering from a handler and recording every request."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        status, headers, body = self.handler(request)
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response.raw = io.BytesIO(body)
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def client_with(handler: Handler, **kwargs: Any) -> tuple[RegistryClient, FakeTransport]:
    transport = FakeTransport(handler)
    session = requests.Session()
    session.mount("https://", transport)
    session.mount("http://", transport)
    return RegistryClient("reg.example", session=session, proxies={}, **kwargs), transport


def test_basic_challenge_uses_credentials() -> None:
    expected = "Basic " + base64.b64encode(b"me:pw").decode()

    def handler(request: requests.PreparedRequest) -> tuple[int, Mapping[str, str], bytes]:
        if request.headers.get("Authorization") != expected:
            return 401, {"Www-Authenticate": 'Basic realm="reg"'}, b""
        return 200, {"Docker-Content-Digest": DIGEST}, b""

    client, transport = client_with(handler, credentials=Credentials("me", "pw"))
    assert client.resolve("org/app", "v1") == DIGEST
    assert [r.headers.get("Authorization") for r in transport.sent] == [None, expected]


def test_basic_challenge_without_credentials_is_denied() -> None:
    client, _ = client_with(lambda r: (401, {"Www-Authenticate": 'Basic realm="reg"'}, b""))
    with pytest.raises(AuthenticationError, match=r"reg.example/org/app:v1: HEAD denied"):
        client.resolve("org/app", "v1")


def test_credentials_never_go_to_a_plain_http_realm() -> None:
    challenge = 'Bearer realm="http://auth.example/token",service="reg",scope="repository:a:pull"'
    client, transport = client_with(
        lambda r: (401, {"Www-Authenticate": challenge}, b""), credentials=Credentials("me", "pw")
    )
    with pytest.raises(AuthenticationError, match="not https"):
        client.resolve("a", "v1")
    assert all("auth.example" not in (r.url or "") for r in transport.sent)


def test_token_answer_without_token_is_a_protocol_error() -> None:
    challenge = 'Bearer realm="https://auth.example/token",service="reg"'

    def handler(request: requests.PreparedRequest) -> tuple[int, Mapping[str, str], bytes]:
        if (request.url or "").startswith("https://auth.example/"):
            return 200, {"Content-Type": "application/json"}, b'{"nothing": 1}'
        return 401, {"Www-Authenticate": challenge}, b""

    client, _ = client_with(handler)
    with pytest.raises(ProtocolError, match="without a token"):
        client.resolve("a", "v1")


def test_bearer_token_is_fetched_once_and_reused() -> None:
    challenge = 'Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"'
    body = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}'

    def handler(request: requests.PreparedRequest) -> tuple[int, Mapping[str, str], bytes]:
        if (request.url or "").startswith("https://auth.example/"):
            assert "Authorization" not in request.headers, "anonymous token request"
            assert "scope=repository%3Aa%3Apull" in (request.url or "")
            return 200, {}, b'{"token": "t0k"}'
        if request.headers.get("Authorization") != "Bearer t0k":
            return 401, {"Www-Authenticate": challenge}, b""
        return 200, {"Docker-Content-Digest": sha256_digest(body)}, body

    client, transport = client_with(handler)
    assert client.get_manifest("a", "v1").digest == sha256_digest(body)
    assert client.get_manifest("a", "v1").document["schemaVersion"] == 2
    assert len(transport.sent) == 4  # challenge, token, retry, then straight with the token


def test_announced_digest_is_checked_against_the_bytes() -> None:
    body = b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}'
    client, _ = client_with(lambda r: (200, {"Docker-Content-Digest": DIGEST}, body))
    with pytest.raises(DigestMismatch) as caught:
        client.get_manifest("a", "v1")
    assert caught.value.expected == DIGEST
    assert caught.value.actual == sha256_digest(body)
    assert f"expected {DIGEST}, got {sha256_digest(body)}" in str(caught.value)
