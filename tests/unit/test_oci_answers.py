"""RegistryClient over an in-memory transport: what a registry answered is what the error
says, and a body that breaks off (truncated, timed out, behind a redirect) is the client's
own error naming registry and reference, never a requests traceback."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from requests.adapters import BaseAdapter, HTTPAdapter

from host_service.oci import (
    AuthenticationError,
    NotFoundError,
    ProtocolError,
    RegistryClient,
    RegistryTimeout,
    RegistryUnreachable,
    sha256_digest,
)

MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
).encode()
BLOB = b"a config blob" * 100
BLOB_DIGEST = sha256_digest(BLOB)


class _TimesOut(io.RawIOBase):
    """A body whose first bytes arrive and then nothing: the socket read times out (a
    socket's timeout is the builtin TimeoutError)."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.first:
            raise TimeoutError("timed out")
        size = min(len(buffer), len(self.first))
        buffer[:size] = self.first[:size]
        self.first = self.first[size:]
        return size


Answer = tuple[int, Mapping[str, str], bytes | io.RawIOBase]


class Transport(BaseAdapter):
    """Answers each request with ``handler(request)``; a body shorter than its
    Content-Length breaks off as a truncated answer does on the wire."""

    def __init__(self, handler: Callable[[requests.PreparedRequest], Answer]) -> None:
        super().__init__()
        self.handler = handler
        self.urls: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.urls.append(request.url or "")
        status, headers, body = self.handler(request)
        if request.method == "HEAD":
            body = b""  # an answer to HEAD has no body
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(body) if isinstance(body, bytes) else io.BufferedReader(body),
            headers=dict(headers),
            status=status,
            reason={200: "OK", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error",
                    307: "Temporary Redirect"}.get(status),
            preload_content=False,
            enforce_content_length=True,
            request_method=request.method,
        )  # fmt: skip
        return HTTPAdapter().build_response(request, raw)

    def close(self) -> None:
        pass


def client_with(
    handler: Callable[[requests.PreparedRequest], Answer],
) -> tuple[RegistryClient, Transport]:
    transport = Transport(handler)
    session = requests.Session()
    session.mount("https://", transport)
    return RegistryClient("reg.example", session=session, proxies={}), transport


def truncated(data: bytes) -> Answer:
    return 200, {"Content-Length": str(len(data))}, data[: len(data) // 2]


def test_a_truncated_manifest_is_the_clients_error() -> None:
    client, _ = client_with(lambda r: truncated(MANIFEST))
    with pytest.raises(RegistryUnreachable) as caught:
        client.get_manifest("org/app", "v1")
    assert not isinstance(caught.value, RegistryTimeout)
    assert str(caught.value).startswith(
        "reg.example/org/app:v1: the answer from reg.example broke off: IncompleteRead("
    )


def test_a_truncated_blob_is_the_clients_error() -> None:
    client, _ = client_with(lambda r: truncated(BLOB))
    with pytest.raises(RegistryUnreachable, match=rf"^reg.example/org/app@{BLOB_DIGEST}: the "):
        client.get_blob("org/app", BLOB_DIGEST)


def test_a_truncated_download_behind_a_redirect_names_the_host_that_sent_it(
    tmp_path: Path,
) -> None:
    def handler(request: requests.PreparedRequest) -> Answer:
        if (request.url or "").startswith("https://reg.example/"):
            return 307, {"Location": "https://cdn.example/blob", "Content-Length": "0"}, b""
        return truncated(BLOB)

    client, transport = client_with(handler)
    dest = tmp_path / "blob"
    with pytest.raises(RegistryUnreachable) as caught:
        client.download_blob("org/app", BLOB_DIGEST, dest)
    assert transport.urls[-1] == "https://cdn.example/blob"
    assert str(caught.value).startswith(
        f"reg.example/org/app@{BLOB_DIGEST}: the answer from cdn.example broke off: "
    )
    assert list(tmp_path.iterdir()) == [], "nothing partial is left"


def test_a_body_that_stops_coming_is_a_timeout() -> None:
    client, _ = client_with(
        lambda r: (200, {"Content-Length": str(len(MANIFEST))}, _TimesOut(MANIFEST[:10]))
    )
    with pytest.raises(RegistryTimeout, match=r"reg.example/org/app:v1: the answer from "):
        client.get_manifest("org/app", "v1")


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (500, ProtocolError, "manifest: the registry answered HTTP 500 Internal Server Error"),
        (403, AuthenticationError, "manifest: access refused: HTTP 403 Forbidden"),
        (404, NotFoundError, "manifest not found: HTTP 404 Not Found"),
    ],
)
@pytest.mark.parametrize("method", ["resolve", "get_manifest"])
def test_a_manifest_answer_says_what_the_registry_answered(
    status: int, error: type[Exception], message: str, method: str
) -> None:
    body = json.dumps({"errors": [{"code": "UNKNOWN", "message": "disk on fire"}]}).encode()
    client, _ = client_with(lambda r: (status, {"Content-Type": "application/json"}, body))
    with pytest.raises(error) as caught:
        getattr(client, method)("org/app", "v1")
    assert type(caught.value) is error
    detail = "" if method == "resolve" else ": UNKNOWN disk on fire"  # HEAD has no body
    assert str(caught.value) == f"reg.example/org/app:v1: {message}{detail}"


def test_a_blob_answer_says_what_the_registry_answered() -> None:
    client, _ = client_with(lambda r: (500, {}, b"oops"))
    with pytest.raises(ProtocolError) as caught:
        client.get_blob("org/app", BLOB_DIGEST)
    assert str(caught.value) == (
        f"reg.example/org/app@{BLOB_DIGEST}: blob: the registry answered HTTP 500 Internal "
        "Server Error"
    )
