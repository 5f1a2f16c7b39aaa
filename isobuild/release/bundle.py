"""Pack flux/ into a Flux config bundle (an OCI artifact), reproducibly: same tree, same digest."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host_service import atomic
from host_service.oci import OCI_MANIFEST, sha256_digest
from isobuild.errors import ConfigError, VerificationError
from isobuild.output_file import check_replaceable, directory_for

FLUX_CONFIG_MEDIA_TYPE = "application/vnd.cncf.flux.config.v1+json"
FLUX_CONTENT_MEDIA_TYPE = "application/vnd.cncf.flux.content.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"

# Every entry gets the same owner, times and modes, so the checkout's mtimes, umask and
# owner never reach the digest. 0 is the epoch: tar and Flux accept it.
FIXED_MTIME = 0
FILE_MODE = 0o644
DIR_MODE = 0o755


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


@dataclass(frozen=True)
class Artifact:
    """An OCI artifact ready to push: its blobs and the exact manifest bytes."""

    config: Blob
    layers: tuple[Blob, ...]

    @property
    def manifest_document(self) -> dict[str, Any]:
        # manifest_bytes is json.dumps of this dict; the publisher pushes exactly those bytes.
        return {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.config.descriptor(),
            "layers": [layer.descriptor() for layer in self.layers],
        }

    @property
    def manifest_bytes(self) -> bytes:
        return json.dumps(self.manifest_document).encode()

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest_bytes)

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.config, *self.layers)


def tree_entries(root: Path) -> list[tuple[str, Path]]:
    """``(archive name, path)`` of every directory and regular file, sorted by name.

    Hidden files and directories (editor droppings, ``.git``) are left out; symlinks and
    special files are refused: Flux would see something other than what was reviewed.
    """
    if not root.is_dir():
        raise ConfigError(f"{root}: not a directory", hint="pass the checkout's flux/ directory")
    entries: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        for name in [*dirnames, *filenames]:
            if name.startswith("."):
                continue
            path = here / name
            mode = path.lstat().st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise ConfigError(
                    f"{path}: not a regular file or directory (symlink or special file)",
                    hint="replace it with a copy of the file it points to",
                )
            entries.append((path.relative_to(root).as_posix(), path))
    return sorted(entries)


def pack_content(root: Path) -> bytes:
    """The bundle layer: a tar of ``root`` with fixed metadata, gzip without name or time."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, path in tree_entries(root):
            info = tarfile.TarInfo(name)
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = DIR_MODE
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size = len(data)
                info.mode = FILE_MODE
                tar.addfile(info, io.BytesIO(data))
    compressed = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of the host's name and clock.
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return compressed.getvalue()


def build_bundle(root: Path) -> Artifact:
    """The Flux config bundle of ``root`` (the flux/ directory)."""
    return Artifact(
        config=Blob(FLUX_CONFIG_MEDIA_TYPE, b"{}"),
        layers=(Blob(FLUX_CONTENT_MEDIA_TYPE, pack_content(root)),),
    )


# -- OCI image layout file ------------------------------------------------------------------


def layout_members(artifact: Artifact, *, tag: str | None = None) -> list[tuple[str, bytes]]:
    """The files of an OCI image layout holding ``artifact``, in archive order."""
    descriptor: dict[str, Any] = {
        "mediaType": OCI_MANIFEST,
        "digest": artifact.digest,
        "size": len(artifact.manifest_bytes),
    }
    if tag:
        descriptor["annotations"] = {REF_NAME: tag}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor]}
    blobs = {b.digest: b.data for b in artifact.blobs}
    blobs[artifact.digest] = artifact.manifest_bytes
    members = [
        ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
        ("index.json", json.dumps(index, sort_keys=True).encode()),
    ]
    members += [(f"blobs/sha256/{d.removeprefix('sha256:')}", blobs[d]) for d in sorted(blobs)]
    return members


def write_layout(artifact: Artifact, output: Path, *, tag: str | None = None, force: bool) -> None:
    """Write ``artifact`` as an OCI image layout tar, atomically (no partial file)."""
    check_replaceable(output, force=force)
    with (
        directory_for(output),
        atomic.replacing(output, mode=FILE_MODE) as out,
        tarfile.open(fileobj=out, mode="w") as tar,
    ):
        for name, data in layout_members(artifact, tag=tag):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = FIXED_MTIME
            info.mode = FILE_MODE
            tar.addfile(info, io.BytesIO(data))


def read_layout(path: Path) -> Artifact:
    """Read back an artifact written by ``write_layout``; every blob is re-hashed."""
    try:
        with tarfile.open(path, mode="r") as tar:
            files = {m.name: _read_member(tar, m) for m in tar.getmembers() if m.isfile()}
    except (OSError, tarfile.TarError) as exc:
        raise ConfigError(f"{path}: not a readable OCI layout tar: {exc}") from exc
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            expected = "sha256:" + name.removeprefix("blobs/sha256/")
            if sha256_digest(data) != expected:
                raise VerificationError(
                    f"{path}: {name}: digest mismatch: expected {expected}, "
                    f"got {sha256_digest(data)}"
                )
    try:
        index = json.loads(files["index.json"])
        [entry] = index["manifests"]
        manifest = json.loads(files[_blob_name(entry["digest"])])
        config = _blob(files, manifest["config"])
        layers = tuple(_blob(files, d) for d in manifest["layers"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not an OCI layout with one manifest: {exc!r}") from exc
    artifact = Artifact(config=config, layers=layers)
    if artifact.digest != entry["digest"]:
        raise ConfigError(
            f"{path}: manifest is not in the canonical form isobuild writes "
            f"({entry['digest']} != {artifact.digest})",
            hint="create the file with `isobuild release bundle`",
        )
    return artifact


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    return handle.read() if handle is not None else b""


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{digest.removeprefix('sha256:')}"


def _blob(files: Mapping[str, bytes], descriptor: Mapping[str, Any]) -> Blob:
    return Blob(str(descriptor["mediaType"]), files[_blob_name(str(descriptor["digest"]))])
