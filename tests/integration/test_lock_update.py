"""`isobuild lock --update` against a loopback release server and the real registry."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner

from host_service.oci import OCI_MANIFEST, RegistryClient
from isobuild.artifacts.fetch import HttpDownloader
from isobuild.artifacts.lock_update import Upstream, update_lock
from isobuild.artifacts.lockfile import DEFAULT_FLUX_CONTROLLERS, load_lock
from isobuild.errors import VerificationError
from isobuild.resources import DEFAULT_LOCK
from isobuild.standin.artifacts import (
    FLUX_CONTROLLER_TAGS,
    checksum_line,
    goreleaser_checksums,
    install_yaml_text,
    make_image,
)
from tests.fixtures.artifact_server import ArtifactServer
from tests.fixtures.registry import RunningRegistry

K3S_NEW = "v1.36.5+k3s1"
FLUX_NEW = "2.10.0"


@pytest.fixture
def release_world(
    artifact_server: ArtifactServer, registry: RunningRegistry
) -> tuple[Upstream, dict[str, str]]:
    """A k3s channel, a Flux "latest", their release files and controller images."""
    server = artifact_server
    base = f"isobuild-lock/{uuid.uuid4().hex[:10]}"
    expected: dict[str, str] = {}
    k3s_dir = f"/k3s/download/{K3S_NEW}"
    k3s_files = {"k3s": b"new k3s\n", "k3s-airgap-images-amd64.tar.zst": b"new airgap\n"}
    for name, data in k3s_files.items():
        server.put(f"{k3s_dir}/{name}", data)
        expected[name] = hashlib.sha256(data).hexdigest()
    server.put(
        f"{k3s_dir}/sha256sum-amd64.txt",
        "".join(checksum_line(expected[n], n) for n in k3s_files).encode()
        + checksum_line("0" * 64, "k3s-airgap-images-amd64.tar").encode(),
    )
    server.served.redirects["/v1-release/channels/stable"] = (
        f"https://github.com/k3s-io/k3s/releases/tag/{K3S_NEW.replace('+', '%2B')}"
    )
    server.put(
        "/repos/fluxcd/flux2/releases/latest", json.dumps({"tag_name": f"v{FLUX_NEW}"}).encode()
    )

    references = {}
    # The release install.yaml deploys more than the four default controllers.
    for name in (*DEFAULT_FLUX_CONTROLLERS, "source-watcher"):
        path = f"{base}/{name}"
        tag = FLUX_CONTROLLER_TAGS.get(name, "v2.2.3")
        amd64 = make_image(f"{path}:{tag}")
        registry.push_blob(path, amd64.config, "application/vnd.oci.image.config.v1+json")
        registry.push_blob(path, amd64.layer, "application/vnd.oci.image.layer.v1.tar+gzip")
        registry.pusher.push_manifest(path, amd64.manifest_digest, amd64.manifest, OCI_MANIFEST)
        index = registry.push_index(
            path, tag, [(amd64.manifest_digest, {"os": "linux", "architecture": "amd64"})]
        )
        expected[f"image:{name}"] = index
        references[name] = f"{registry.host}/{path}:{tag}"
    install_yaml = install_yaml_text(FLUX_NEW, references).decode()
    flux_dir = f"/flux/download/v{FLUX_NEW}"
    server.put(f"{flux_dir}/install.yaml", install_yaml.encode())
    expected["install.yaml"] = hashlib.sha256(install_yaml.encode()).hexdigest()
    cli = f"flux_{FLUX_NEW}_linux_amd64.tar.gz"
    server.put(f"{flux_dir}/{cli}", b"new flux cli\n")
    expected[cli] = hashlib.sha256(b"new flux cli\n").hexdigest()
    # goreleaser's format, as Flux publishes it since 0.25.3: install.yaml is listed too.
    sums = {cli: expected[cli], "install.yaml": expected["install.yaml"]}
    server.put(f"{flux_dir}/flux_{FLUX_NEW}_checksums.txt", goreleaser_checksums(sums).encode())
    upstream = Upstream(
        k3s_channel=f"{server.url}/v1-release/channels/stable",
        flux_latest=f"{server.url}/repos/fluxcd/flux2/releases/latest",
        k3s_releases=f"{server.url}/k3s/download",
        flux_releases=f"{server.url}/flux/download",
    )
    return upstream, expected


def _client(registry: RunningRegistry) -> Callable[[str], RegistryClient]:
    return lambda host: RegistryClient(host, ca_bundle=registry.ca_path)


def test_update_resolves_versions_writes_pins_and_shows_the_diff(
    release_world: tuple[Upstream, dict[str, str]], registry: RunningRegistry, tmp_path: Path
) -> None:
    upstream, expected = release_world
    path = tmp_path / "payload.lock.yaml"
    path.write_text(DEFAULT_LOCK.read_text())

    result = update_lock(
        path,
        upstream=upstream,
        http=HttpDownloader(requests.Session(), backoff=0.01),
        client_factory=_client(registry),
    )

    assert result.changed
    lock = load_lock(path)
    assert path.read_text() == result.new_text
    assert (lock.k3s.version, lock.flux.version) == (K3S_NEW, FLUX_NEW)
    assert lock.k3s.files["binary"].sha256 == expected["k3s"]
    assert lock.k3s.files["airgap_images"].sha256 == expected["k3s-airgap-images-amd64.tar.zst"]
    assert lock.flux.files["cli"].sha256 == expected[f"flux_{FLUX_NEW}_linux_amd64.tar.gz"]
    assert lock.flux.files["install_manifest"].sha256 == expected["install.yaml"]
    assert lock.flux.files["install_manifest"].checksum_file == f"flux_{FLUX_NEW}_checksums.txt"
    assert {i.name: i.digest for i in lock.images} == {
        n: expected[f"image:{n}"] for n in (*DEFAULT_FLUX_CONTROLLERS, "source-watcher")
    }
    diff = result.diff()
    assert "-  version: v1.36.3+k3s1" in diff
    assert f"+  version: {K3S_NEW}" in diff
    assert "isobuild lock --update" in result.new_text.splitlines()[1]

    again = update_lock(
        path,
        upstream=upstream,
        http=HttpDownloader(requests.Session(), backoff=0.01),
        client_factory=_client(registry),
    )
    assert not again.changed


def test_check_mode_writes_nothing(
    release_world: tuple[Upstream, dict[str, str]], registry: RunningRegistry, tmp_path: Path
) -> None:
    upstream, _ = release_world
    path = tmp_path / "payload.lock.yaml"
    path.write_text(DEFAULT_LOCK.read_text())

    result = update_lock(
        path,
        write=False,
        upstream=upstream,
        client_factory=_client(registry),
    )

    assert result.changed
    assert path.read_text() == DEFAULT_LOCK.read_text()


def test_a_release_without_the_airgap_checksum_is_refused(
    release_world: tuple[Upstream, dict[str, str]],
    artifact_server: ArtifactServer,
    registry: RunningRegistry,
    tmp_path: Path,
) -> None:
    upstream, expected = release_world
    artifact_server.put(
        f"/k3s/download/{K3S_NEW}/sha256sum-amd64.txt",
        checksum_line(expected["k3s"], "k3s").encode(),
    )
    path = tmp_path / "payload.lock.yaml"
    path.write_text(DEFAULT_LOCK.read_text())

    with pytest.raises(VerificationError, match=r"no entry for k3s-airgap-images-amd64\.tar\.zst"):
        update_lock(path, upstream=upstream, client_factory=_client(registry))
    assert path.read_text() == DEFAULT_LOCK.read_text()


def test_lock_command_without_update_shows_pins_and_never_writes(tmp_path: Path) -> None:
    from isobuild.cli import main

    path = tmp_path / "payload.lock.yaml"
    path.write_text(DEFAULT_LOCK.read_text())
    result = CliRunner().invoke(main, ["lock", "--lock", str(path)])

    assert result.exit_code == 0, result.output
    assert "k3s v1.36.3+k3s1, Flux 2.9.4" in result.output
    assert "2f98a9f8fe5782479ee2d54e70a1b10a7f6fd4cae8d38ed3098452dc6eed76b5" in result.output
    assert path.read_text() == DEFAULT_LOCK.read_text()
    assert yaml.safe_load(path.read_text())["k3s"]["version"] == "v1.36.3+k3s1"
