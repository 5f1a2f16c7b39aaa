"""host_service.oci against the real registry: token flow, auth, TLS, proxies, digests."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from host_service.oci import (
    AuthenticationError,
    Credentials,
    DigestMismatch,
    ManifestError,
    NotFoundError,
    RegistryClient,
    RegistryTLSError,
    RegistryUnreachable,
)
from tests.fixtures.host_service import ConnectProxy
from tests.fixtures.registry import RunningRegistry


def _unique(name: str) -> bytes:
    # Blobs are shared across repositories by digest: tests that tamper need their own bytes.
    return f"{name}:{os.urandom(8).hex()}".encode()


def test_anonymous_pull_resolves_and_recomputes(registry: RunningRegistry) -> None:
    layer = _unique("layer")
    pushed = registry.push_artifact("oci/public", "v1", layers=[(layer, "application/x-test")])
    before = len(registry.policy.requests)

    with registry.client() as client:
        assert client.resolve("oci/public", "v1") == pushed
        manifest = client.get_manifest("oci/public", "v1")
        assert manifest.digest == pushed
        assert client.get_manifest("oci/public", pushed).data == manifest.data
        assert client.get_blob("oci/public", manifest.layers[0].digest) == layer

    users = {r.user for r in registry.policy.requests[before:]}
    assert users == {None}, "anonymous client must not send credentials to the token service"


def test_anonymous_stays_anonymous_with_netrc_and_docker_config(
    registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.push_artifact("oci/netrc", "v1")
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    host = registry.host.split(":")[0]
    (home / ".netrc").write_text(
        f"machine {host} login {registry.username} password {registry.password}\n"
    )
    (home / ".docker/config.json").write_text(
        json.dumps({"auths": {registry.host: {"auth": "cHVibGlzaGVyOnNlY3JldA=="}}})
    )
    monkeypatch.setenv("HOME", str(home))
    before = len(registry.policy.requests)

    with registry.client() as client:
        client.resolve("oci/netrc", "v1")

    assert {r.user for r in registry.policy.requests[before:]} == {None}


def test_wrong_password_is_refused_by_token_service(registry: RunningRegistry) -> None:
    bad = Credentials(registry.username, "not-the-password")
    with (
        RegistryClient(registry.host, credentials=bad, ca_bundle=registry.ca_path) as client,
        pytest.raises(AuthenticationError, match=r"token service .* refused credentials"),
    ):
        client.resolve("oci/public", "v1")


def test_private_repository_needs_credentials(registry: RunningRegistry) -> None:
    pushed = registry.push_artifact("private/secret", "v1")
    with registry.client() as anonymous, pytest.raises(AuthenticationError):
        anonymous.resolve("private/secret", "v1")
    with registry.client(push=True) as authenticated:
        assert authenticated.resolve("private/secret", "v1") == pushed


def test_not_found_names_registry_repository_and_tag(registry: RunningRegistry) -> None:
    with registry.client() as client, pytest.raises(NotFoundError) as caught:
        client.get_manifest("oci/public", "no-such-tag")
    assert f"{registry.host}/oci/public:no-such-tag" in str(caught.value)


def test_index_selects_platform(registry: RunningRegistry) -> None:
    amd = registry.push_artifact("oci/multi", "amd", config=_unique("amd"))
    arm = registry.push_artifact("oci/multi", "arm", config=_unique("arm"))
    registry.push_index(
        "oci/multi",
        "v1",
        [
            (arm, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
            (amd, {"os": "linux", "architecture": "amd64"}),
        ],
    )
    with registry.client() as client:
        assert client.get_manifest("oci/multi", "v1").is_index
        assert client.get_image_manifest("oci/multi", "v1").digest == amd
        assert client.get_image_manifest("oci/multi", "v1", platform="linux/arm64/v8").digest == arm
        with pytest.raises(ManifestError, match=r"no linux/s390x .*linux/amd64, linux/arm64/v8"):
            client.get_image_manifest("oci/multi", "v1", platform="linux/s390x")


def test_tampered_blob_is_refused_with_both_digests(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    layer = _unique("tamper") * 1000
    registry.push_artifact("oci/tamper", "v1", layers=[(layer, "application/x-test")])
    with registry.client() as client:
        digest = client.get_manifest("oci/tamper", "v1").layers[0].digest
        registry.tamper_blob(digest)
        dest = tmp_path / "out" / "layer.bin"
        with pytest.raises(DigestMismatch) as caught:
            client.download_blob("oci/tamper", digest, dest)
        with pytest.raises(DigestMismatch):
            client.get_blob("oci/tamper", digest)
    error = caught.value
    assert error.expected == digest
    assert error.actual.startswith("sha256:")
    assert error.actual != digest
    assert digest in str(error)
    assert error.actual in str(error)
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == [], "no partial download left behind"


def test_download_blob_streams_verified_bytes(registry: RunningRegistry, tmp_path: Path) -> None:
    layer = os.urandom(3 * 1024 * 1024 + 17)
    registry.push_artifact("oci/big", "v1", layers=[(layer, "application/x-test")])
    with registry.client() as client:
        descriptor = client.get_manifest("oci/big", "v1").layers[0]
        size = client.download_blob("oci/big", descriptor.digest, tmp_path / "big.bin")
    assert size == len(layer)
    assert (tmp_path / "big.bin").read_bytes() == layer


def test_tampered_manifest_is_refused(registry: RunningRegistry) -> None:
    pushed = registry.push_artifact("oci/tamper-manifest", "v1", config=_unique("cfg"))
    registry.tamper_blob(pushed)
    with registry.client() as client, pytest.raises(DigestMismatch) as caught:
        client.get_manifest("oci/tamper-manifest", "v1")
    assert caught.value.expected == pushed


def test_tls_without_the_ca_is_refused(registry: RunningRegistry) -> None:
    with RegistryClient(registry.host) as client, pytest.raises(RegistryTLSError) as caught:
        client.resolve("oci/public", "v1")
    assert registry.host in str(caught.value)
    assert caught.value.hint is not None
    assert "CA" in caught.value.hint


def test_unreachable_registry(registry: RunningRegistry) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        RegistryClient(f"127.0.0.1:{port}", ca_bundle=registry.ca_path, timeout=5) as client,
        pytest.raises(RegistryUnreachable, match=f"127.0.0.1:{port}/oci/x:v1"),
    ):
        client.resolve("oci/x", "v1")


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    running = ConnectProxy()
    yield running
    running.stop()


def test_explicit_proxy_carries_registry_and_token_traffic(
    registry: RunningRegistry, proxy: ConnectProxy
) -> None:
    pushed = registry.push_artifact("oci/proxied", "v1")
    with RegistryClient(
        registry.host, ca_bundle=registry.ca_path, proxies={"https": proxy.url()}
    ) as client:
        assert client.resolve("oci/proxied", "v1") == pushed
    token_host = registry.token_url.split("/")[2]
    assert registry.host in proxy.tunnels
    assert token_host in proxy.tunnels


def test_environment_proxy_and_no_proxy(
    registry: RunningRegistry, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.push_artifact("oci/proxied", "v1")
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", proxy.url())
    with registry.client() as client:
        client.resolve("oci/proxied", "v1")
    assert registry.host in proxy.tunnels

    proxy.tunnels.clear()
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with registry.client() as client:
        client.resolve("oci/proxied", "v1")
    assert proxy.tunnels == []
