"""The controller image archive, pulled from a real `docker-registry` on loopback."""

from __future__ import annotations

import json
import subprocess
import tarfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from host_service.oci import OCI_MANIFEST, RegistryClient
from isobuild.artifacts.cache import ArtifactCache
from isobuild.artifacts.image_archive import (
    IMAGE_NAME_ANNOTATION,
    inspect_archive,
    obtain_image_archive,
)
from isobuild.artifacts.lockfile import PayloadLock, parse_lock
from isobuild.errors import PayloadError, VerificationError
from isobuild.standin.artifacts import StandinImage, make_image
from tests.conftest import require_tool
from tests.fixtures.registry import RunningRegistry
from tests.fixtures.standin_artifacts import StandinArtifacts


@dataclass(frozen=True)
class Pushed:
    repository: str  # host/path
    tag: str
    index_digest: str
    amd64: StandinImage
    arm64: StandinImage


def push_multiarch(registry: RunningRegistry, path: str, tag: str) -> Pushed:
    """Push an amd64 and an arm64 image and an index over both under ``tag``."""
    images = {}
    for arch in ("amd64", "arm64"):
        image = make_image(f"{registry.host}/{path}:{tag}", architecture=arch)
        registry.push_blob(path, image.config, "application/vnd.oci.image.config.v1+json")
        registry.push_blob(path, image.layer, "application/vnd.oci.image.layer.v1.tar+gzip")
        registry.pusher.push_manifest(path, image.manifest_digest, image.manifest, OCI_MANIFEST)
        images[arch] = image
    index = registry.push_index(
        path,
        tag,
        [
            (images["arm64"].manifest_digest, {"os": "linux", "architecture": "arm64"}),
            (images["amd64"].manifest_digest, {"os": "linux", "architecture": "amd64"}),
        ],
    )
    return Pushed(f"{registry.host}/{path}", tag, index, images["amd64"], images["arm64"])


def lock_with_images(standins: StandinArtifacts, pushed: list[Pushed]) -> PayloadLock:
    """The stand-in lock with its image pins replaced (and no prebuilt archive)."""
    document = yaml.safe_load(standins.lock_path.read_text())
    del document["flux"]["files"]["image_archive"]
    document["flux"]["images"] = {
        p.repository.rsplit("/", 1)[1]: {
            "repository": p.repository,
            "tag": p.tag,
            "digest": p.index_digest,
        }
        for p in pushed
    }
    return parse_lock(yaml.safe_dump(document), source=Path("test.lock.yaml"))


@pytest.fixture
def pushed(registry: RunningRegistry) -> list[Pushed]:
    base = f"isobuild-payload/{uuid.uuid4().hex[:12]}"
    return [
        push_multiarch(registry, f"{base}/source-controller", "v1.9.4"),
        push_multiarch(registry, f"{base}/helm-controller", "v1.6.3"),
    ]


@pytest.fixture
def clients(registry: RunningRegistry) -> tuple[Callable[[str], RegistryClient], list[str]]:
    made: list[str] = []

    def factory(host: str) -> RegistryClient:
        made.append(host)
        return RegistryClient(host, ca_bundle=registry.ca_path)

    return factory, made


def test_multiarch_images_become_one_amd64_archive_k3s_can_import(
    standin_artifacts_dir: StandinArtifacts,
    pushed: list[Pushed],
    clients: tuple[Callable[[str], RegistryClient], list[str]],
    tmp_path: Path,
) -> None:
    factory, made = clients
    lock = lock_with_images(standin_artifacts_dir, pushed)
    cache = ArtifactCache(tmp_path / "cache")

    archive = obtain_image_archive(lock, cache, offline=False, client_factory=factory)

    images = {image.reference: image for image in inspect_archive(archive)}
    assert set(images) == {f"{p.repository}:{p.tag}" for p in pushed}
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        docker = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        layout = json.load(tar.extractfile("oci-layout"))  # type: ignore[arg-type]
    assert layout == {"imageLayoutVersion": "1.0.0"}
    for p in pushed:
        image = images[f"{p.repository}:{p.tag}"]
        assert image.platform == "linux/amd64"
        assert image.manifest_digest == p.amd64.manifest_digest
        assert image.config_digest == p.amd64.config_digest
        assert image.layer_digests == (p.amd64.layer_digest,)
        # Single platform: nothing of the arm64 image, not even the index, is in the archive.
        for digest in (p.arm64.manifest_digest, p.arm64.layer_digest, p.index_digest):
            assert f"blobs/sha256/{digest.removeprefix('sha256:')}" not in names
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"}
    ] * 2
    assert {m["annotations"][IMAGE_NAME_ANNOTATION] for m in index["manifests"]} == set(images)
    assert {tag for entry in docker for tag in entry["RepoTags"]} == set(images)

    made.clear()
    again = obtain_image_archive(lock, cache, offline=True, client_factory=factory)
    assert again == archive
    assert made == []  # served from the cache, registry not contacted


def test_archive_layouts_read_back_with_skopeo(
    standin_artifacts_dir: StandinArtifacts,
    pushed: list[Pushed],
    clients: tuple[Callable[[str], RegistryClient], list[str]],
    tmp_path: Path,
) -> None:
    skopeo = require_tool("skopeo")
    lock = lock_with_images(standin_artifacts_dir, pushed)
    archive = obtain_image_archive(
        lock, ArtifactCache(tmp_path / "cache"), offline=False, client_factory=clients[0]
    )
    for p in pushed:
        reference = f"{p.repository}:{p.tag}"
        diff_ids = json.loads(p.amd64.config)["rootfs"]["diff_ids"]
        # docker-archive names layers by their uncompressed digests (the config's diff_ids).
        expected = {"docker-archive": diff_ids, "oci-archive": [p.amd64.layer_digest]}
        for transport, layers in expected.items():
            out = subprocess.run(
                [skopeo, "inspect", f"{transport}:{archive}:{reference}"],
                capture_output=True,
                text=True,
                check=True,
            )
            info = json.loads(out.stdout)
            assert (info["Os"], info["Architecture"]) == ("linux", "amd64")
            assert info["Layers"] == layers
        # The OCI layout keeps the registry's manifest bytes, hence its digest.
        raw = subprocess.run(
            [skopeo, "inspect", "--raw", f"oci-archive:{archive}:{reference}"],
            capture_output=True,
            check=True,
        ).stdout
        assert raw == p.amd64.manifest


def test_corrupted_blob_is_refused_and_nothing_cached(
    registry: RunningRegistry,
    standin_artifacts_dir: StandinArtifacts,
    pushed: list[Pushed],
    clients: tuple[Callable[[str], RegistryClient], list[str]],
    tmp_path: Path,
) -> None:
    lock = lock_with_images(standin_artifacts_dir, pushed)
    cache = ArtifactCache(tmp_path / "cache")
    registry.tamper_blob(pushed[1].amd64.layer_digest)

    with pytest.raises(VerificationError) as caught:
        obtain_image_archive(lock, cache, offline=False, client_factory=clients[0])

    assert pushed[1].amd64.layer_digest in caught.value.message
    assert cache.recall(lock.images_key()) is None
    assert not (tmp_path / "cache" / "sha256").exists()
    assert not list((tmp_path / "cache").glob("images-*"))


def test_single_platform_pin_of_another_architecture_is_refused(
    standin_artifacts_dir: StandinArtifacts,
    pushed: list[Pushed],
    clients: tuple[Callable[[str], RegistryClient], list[str]],
    tmp_path: Path,
) -> None:
    # Pin the arm64 manifest directly: a single-platform image of the wrong architecture.
    wrong = Pushed(
        pushed[0].repository, pushed[0].tag, pushed[0].arm64.manifest_digest,
        pushed[0].amd64, pushed[0].arm64,
    )  # fmt: skip
    lock = lock_with_images(standin_artifacts_dir, [wrong])

    with pytest.raises(VerificationError, match="linux/arm64, not linux/amd64"):
        obtain_image_archive(
            lock, ArtifactCache(tmp_path / "cache"), offline=False, client_factory=clients[0]
        )


def test_offline_without_a_cached_archive_names_the_images(
    standin_artifacts_dir: StandinArtifacts, pushed: list[Pushed], tmp_path: Path
) -> None:
    lock = lock_with_images(standin_artifacts_dir, pushed)
    with pytest.raises(PayloadError, match="--offline") as caught:
        obtain_image_archive(lock, ArtifactCache(tmp_path / "cache"), offline=True)
    for p in pushed:
        assert p.index_digest in caught.value.message
