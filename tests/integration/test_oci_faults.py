"""RegistryClient against a misbehaving registry on loopback (TLS, a threaded http.server):
answers that break off mid-body, directly and behind a redirect, are the client's own errors
naming the registry and the reference."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from host_service.oci import RegistryClient, RegistryTimeout, RegistryUnreachable, sha256_digest
from tests.fixtures.registry import RegistryPki

MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
).encode()
BLOB = b"blob bytes " * 1000
BLOB_DIGEST = sha256_digest(BLOB)


@dataclass(frozen=True)
class Answer:
    """What the fake registry does with one request."""

    status: int | None = 200  # None: no answer at all
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    declared: int | None = None  # a Content-Length above len(body): the answer breaks off
    stall: bool = False  # then keep the connection open, silent, until the server stops


NO_ANSWER = Answer(status=None, stall=True)


def truncated(body: bytes) -> Answer:
    return Answer(body=body[: len(body) // 3], declared=len(body))


class MisbehavingRegistry:
    """A TLS server on 127.0.0.1 that answers each request with ``route(method, path)`` and
    records every request it got."""

    def __init__(self, pki: RegistryPki, route: Callable[[str, str], Answer]) -> None:
        self.requests: list[tuple[str, str]] = []
        self.released = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                fake.requests.append((self.command, self.path.split("?")[0]))
                answer = route(self.command, self.path.split("?")[0])
                declared = len(answer.body) if answer.declared is None else answer.declared
                if answer.status is not None:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(declared))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(answer.body)
                    self.wfile.flush()
                if answer.stall:
                    fake.released.wait()
                if answer.stall or declared != len(answer.body):
                    self.close_connection = True

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(pki.server_cert, pki.server_key)
        self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.ca_path = pki.ca_path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def count(self, method: str, path: str) -> int:
        return self.requests.count((method, path))

    def stop(self) -> None:
        self.released.set()  # hung handlers return and close their connections
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


Start = Callable[[Callable[[str, str], Answer]], MisbehavingRegistry]


def misbehaving_registries(pki: RegistryPki) -> Iterator[Start]:
    """The body of a ``misbehaving`` fixture: starts registries, stops them afterwards."""
    started: list[MisbehavingRegistry] = []

    def start(route: Callable[[str, str], Answer]) -> MisbehavingRegistry:
        started.append(MisbehavingRegistry(pki, route))
        return started[-1]

    yield start
    for fake in started:
        fake.stop()


@pytest.fixture
def misbehaving(registry_pki: RegistryPki) -> Iterator[Start]:
    yield from misbehaving_registries(registry_pki)


def test_a_truncated_manifest_names_registry_and_reference(
    misbehaving: Start,
) -> None:
    fake = misbehaving(lambda method, path: truncated(MANIFEST))
    with (
        RegistryClient(fake.host, ca_bundle=fake.ca_path) as client,
        pytest.raises(RegistryUnreachable) as caught,
    ):
        client.get_manifest("it/app", "v1")
    assert str(caught.value).startswith(
        f"{fake.host}/it/app:v1: the answer from {fake.host} broke off: IncompleteRead("
    )


def redirected_blob(method: str, path: str) -> Answer:
    if path.startswith("/v2/"):
        return Answer(307, {"Location": "/storage/blob"})
    return truncated(BLOB)


def test_a_truncated_blob_behind_a_redirect_names_registry_and_reference(
    misbehaving: Start, tmp_path: Path
) -> None:
    fake = misbehaving(redirected_blob)
    with RegistryClient(fake.host, ca_bundle=fake.ca_path) as client:
        with pytest.raises(RegistryUnreachable) as in_memory:
            client.get_blob("it/app", BLOB_DIGEST)
        with pytest.raises(RegistryUnreachable) as to_disk:
            client.download_blob("it/app", BLOB_DIGEST, tmp_path / "blob")
    for caught in (in_memory, to_disk):
        assert str(caught.value).startswith(f"{fake.host}/it/app@{BLOB_DIGEST}: the answer from ")
        assert "IncompleteRead(" in str(caught.value)
    assert fake.count("GET", "/storage/blob") == 2
    assert list(tmp_path.iterdir()) == [], "nothing partial is left"


def test_an_answer_that_stops_mid_body_is_a_timeout(
    misbehaving: Start,
) -> None:
    # The headers and a third of the body arrive, then nothing: the connection stays open.
    fake = misbehaving(lambda method, path: replace(truncated(MANIFEST), stall=True))
    with (
        RegistryClient(fake.host, ca_bundle=fake.ca_path, timeout=(5, 1)) as client,
        pytest.raises(RegistryTimeout) as caught,
    ):
        client.get_manifest("it/app", "v1")
    assert str(caught.value).startswith(
        f"{fake.host}/it/app:v1: the answer from {fake.host} broke off: "
    )
