"""The Flux controller image archive: pinned images → one linux/amd64 tar that k3s imports.

Images are pulled with the project's registry client (``host_service.oci``): the pinned
digest (an index or a manifest) is fetched and recomputed, the linux/amd64 manifest is
selected from an index, and every config and layer blob is hashed before it is used. No
Docker. The archive holds an OCI image layout (``oci-layout``, ``index.json`` naming each
manifest with ``io.containerd.image.name``; containerd prefers it and keeps the registry's
manifest digests) and, over the same blobs, a docker-archive ``manifest.json`` with
``RepoTags`` (what ``docker load`` and older importers read). It is byte-for-byte
reproducible from the same pins.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host_service import atomic
from host_service.oci import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    RegistryClient,
    RegistryError,
)
from isobuild.artifacts.cache import ArtifactCache
from isobuild.artifacts.lockfile import PayloadLock, PinnedImage
from isobuild.digest import sha256_file
from isobuild.errors import PayloadError, VerificationError

log = logging.getLogger(__name__)

PLATFORM = "linux/amd64"
ARCHIVE_NAME = "flux-controller-images-amd64.tar"
IMAGE_NAME_ANNOTATION = "io.containerd.image.name"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
CHUNK = 1 << 20

ClientFactory = Callable[[str], RegistryClient]


@dataclass(frozen=True, kw_only=True)
class ImageContent:
    """One single-platform image ready for the archive; its blobs are files in a blob dir."""

    reference: str  # "ghcr.io/fluxcd/source-controller:v1.9.4"
    tag: str
    manifest: bytes  # the registry's exact bytes
    manifest_media_type: str
    config_digest: str
    layer_digests: tuple[str, ...]

    @property
    def manifest_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{_hex(digest)}"


# --- writing ---------------------------------------------------------------------------------


def _tar_info(name: str, size: int, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.mtime = 0  # reproducible: the digests say everything about the content
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def index_document(images: Sequence[ImageContent]) -> dict[str, Any]:
    """The OCI layout's index.json: one platform manifest per image, named for containerd."""
    os_name, arch = PLATFORM.split("/")
    return {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": image.manifest_media_type,
                "digest": image.manifest_digest,
                "size": len(image.manifest),
                "platform": {"architecture": arch, "os": os_name},
                "annotations": {
                    IMAGE_NAME_ANNOTATION: image.reference,
                    # The full reference, not just the tag: two controllers share a tag.
                    REF_NAME_ANNOTATION: image.reference,
                },
            }
            for image in images
        ],
    }


def docker_manifest_document(images: Sequence[ImageContent]) -> list[dict[str, Any]]:
    """The docker-archive manifest.json over the same blobs."""
    return [
        {
            "Config": _blob_name(image.config_digest),
            "RepoTags": [image.reference],
            "Layers": [_blob_name(d) for d in image.layer_digests],
        }
        for image in images
    ]


def write_archive(images: Sequence[ImageContent], blob_dir: Path, dest: Path) -> str:
    """Write the archive to ``dest`` atomically; returns its sha256 hex.

    ``blob_dir`` holds the config and layer blobs as ``<hex>`` files, already verified.
    """
    images = sorted(images, key=lambda i: i.reference)
    blobs: dict[str, bytes | Path] = {}
    for image in images:
        blobs[image.manifest_digest] = image.manifest
        for digest in (image.config_digest, *image.layer_digests):
            blobs[digest] = blob_dir / _hex(digest)
    documents = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index_document(images), indent=2).encode(),
        "manifest.json": json.dumps(docker_manifest_document(images), indent=2).encode(),
    }
    with (
        atomic.replacing(dest, mode=0o644) as handle,
        tarfile.open(fileobj=handle, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        tar.addfile(_tar_info("blobs", 0, directory=True))
        tar.addfile(_tar_info("blobs/sha256", 0, directory=True))
        for blob_digest in sorted(blobs):
            content = blobs[blob_digest]
            name = _blob_name(blob_digest)
            if isinstance(content, bytes):
                tar.addfile(_tar_info(name, len(content)), io.BytesIO(content))
            else:
                with content.open("rb") as blob:
                    tar.addfile(_tar_info(name, content.stat().st_size), blob)
        for name, data in documents.items():
            tar.addfile(_tar_info(name, len(data)), io.BytesIO(data))
    return sha256_file(dest)


# --- pulling ---------------------------------------------------------------------------------


def _check_platform(config: bytes, pin: PinnedImage) -> None:
    try:
        document = json.loads(config)
    except ValueError as exc:
        raise VerificationError(f"{pin.reference}: image config is not JSON: {exc}") from exc
    found = f"{document.get('os')}/{document.get('architecture')}"
    if found != PLATFORM:
        raise VerificationError(
            f"{pin.reference}@{pin.digest}: selected image is {found}, not {PLATFORM}",
            hint="the pinned digest names a single-platform image of another architecture; "
            "pin the multi-arch index or the linux/amd64 manifest",
        )


def pull_image(client: RegistryClient, pin: PinnedImage, blob_dir: Path) -> ImageContent:
    """Fetch the linux/amd64 image ``pin`` names; every byte is checked against a digest."""
    try:
        # Through an index to its linux/amd64 manifest; every digest recomputed by the client.
        manifest = client.get_image_manifest(pin.path, pin.digest, platform=PLATFORM)
        if manifest.media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
            raise VerificationError(
                f"{pin.reference}@{pin.digest}: unsupported manifest type {manifest.media_type}"
            )
        config = manifest.config
        config_bytes = client.get_blob(pin.path, config.digest)
        _check_platform(config_bytes, pin)
        (blob_dir / _hex(config.digest)).write_bytes(config_bytes)
        layers = manifest.layers
        for layer in layers:
            target = blob_dir / _hex(layer.digest)
            if not target.exists():
                client.download_blob(pin.path, layer.digest, target)
            if target.stat().st_size != layer.size:
                raise VerificationError(
                    f"{pin.reference}: layer {layer.digest} is {target.stat().st_size} bytes, "
                    f"the manifest says {layer.size}"
                )
    except RegistryError as exc:
        raise VerificationError(
            f"{pin.reference}@{pin.digest}: {exc}",
            hint="the registry served content that does not match the pinned digests, or "
            "the image is not reachable (proxy? authentication?)",
        ) from exc
    return ImageContent(
        reference=pin.reference,
        tag=pin.tag,
        manifest=manifest.data,
        manifest_media_type=manifest.media_type,
        config_digest=config.digest,
        layer_digests=tuple(layer.digest for layer in layers),
    )


def default_client_factory(registry: str) -> RegistryClient:
    """Anonymous pulls with proxies from the environment (the client resolves them)."""
    return RegistryClient(registry)


def obtain_image_archive(
    lock: PayloadLock,
    cache: ArtifactCache,
    *,
    offline: bool,
    client_factory: ClientFactory = default_client_factory,
) -> Path:
    """The cached archive of the lock's controller images; built from the registry if needed."""
    key = lock.images_key()
    cached = cache.recall(key)
    if cached is not None:
        return cached
    if offline:
        names = ", ".join(f"{i.reference}@{i.digest}" for i in lock.images)
        raise PayloadError(
            f"--offline: the Flux controller image archive for {names} is not in the cache "
            f"{cache.root}",
            hint="run `isobuild fetch` with registry access first, or pin a prebuilt archive "
            "as flux.files.image_archive (see docs/payload.md)",
        )
    clients: dict[str, RegistryClient] = {}
    cache.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="images-", dir=cache.root) as work:
        blob_dir = Path(work)
        images = []
        try:
            for pin in lock.images:
                log.info("pulling %s@%s (%s)", pin.reference, pin.digest, PLATFORM)
                client = clients.get(pin.registry)
                if client is None:
                    client = clients[pin.registry] = client_factory(pin.registry)
                images.append(pull_image(client, pin, blob_dir))
        finally:
            for client in clients.values():
                client.close()
        staged = blob_dir / ARCHIVE_NAME
        sha256 = write_archive(images, blob_dir, staged)
        path = cache.admit(staged, sha256, label=f"image archive {ARCHIVE_NAME}")
    cache.remember(key, sha256)
    return path


# --- reading back ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ArchiveImage:
    reference: str
    manifest_digest: str
    config_digest: str
    layer_digests: tuple[str, ...]
    platform: str


def inspect_archive(path: Path) -> list[ArchiveImage]:
    """Read an archive back, checking every blob against its name and every reference.

    Raises VerificationError for a blob whose bytes do not hash to its name, a manifest or
    layer that is missing, or index.json and manifest.json disagreeing.
    """
    blobs: dict[str, bytes] = {}
    documents: dict[str, Any] = {}
    hashes: dict[str, str] = {}
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                extracted = tar.extractfile(member)
                assert extracted is not None
                if member.name.startswith("blobs/sha256/"):
                    digest = hashlib.sha256()
                    kept = bytearray()
                    while chunk := extracted.read(CHUNK):
                        digest.update(chunk)
                        if len(kept) < 4 * CHUNK:
                            kept.extend(chunk)
                    name = "sha256:" + member.name.rsplit("/", 1)[1]
                    hashes[name] = "sha256:" + digest.hexdigest()
                    blobs[name] = bytes(kept)
                elif member.name in ("index.json", "manifest.json", "oci-layout"):
                    documents[member.name] = json.loads(extracted.read())
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise VerificationError(f"{path}: not a readable image archive: {exc}") from exc
    for name, actual in hashes.items():
        if actual != name:
            raise VerificationError(f"{path}: blob {name} hashes to {actual}")
    for required in ("oci-layout", "index.json", "manifest.json"):
        if required not in documents:
            raise VerificationError(f"{path}: {required} is missing")
    result: list[ArchiveImage] = []
    docker = {tuple(m["RepoTags"]): m for m in documents["manifest.json"]}
    for descriptor in documents["index.json"]["manifests"]:
        digest = descriptor["digest"]
        if digest not in blobs:
            raise VerificationError(f"{path}: index.json names {digest}, which is missing")
        manifest = json.loads(blobs[digest])
        layers = tuple(layer["digest"] for layer in manifest["layers"])
        config = manifest["config"]["digest"]
        for needed in (config, *layers):
            if needed not in hashes:
                raise VerificationError(f"{path}: {digest} needs blob {needed}, which is missing")
        reference = descriptor["annotations"][IMAGE_NAME_ANNOTATION]
        entry = docker.get((reference,))
        expected_layers = [_blob_name(d) for d in layers]
        if (
            entry is None
            or entry["Config"] != _blob_name(config)
            or (entry["Layers"] != expected_layers)
        ):
            raise VerificationError(
                f"{path}: manifest.json disagrees with index.json on {reference}"
            )
        config_doc = json.loads(blobs[config])
        result.append(
            ArchiveImage(
                reference=reference,
                manifest_digest=digest,
                config_digest=config,
                layer_digests=layers,
                platform=f"{config_doc.get('os')}/{config_doc.get('architecture')}",
            )
        )
    return result
