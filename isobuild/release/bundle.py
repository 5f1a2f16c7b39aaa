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
from host_service.oci import DIGEST_RE, OCI_MANIFEST, sha256_digest
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


def values_files(root: Path, overlay: str) -> dict[str, Path]:
    """``{name: path}`` of the ``<overlay>/values/<name>.yaml`` files the bundle ships: what
    ``tree_entries`` packs (hidden files left out, symlinks refused), nothing else."""
    prefix = f"{overlay}/values/"
    found = {}
    for name, path in tree_entries(root):
        base = name.removeprefix(prefix)
        shipped = name.startswith(prefix) and "/" not in base and base.endswith(".yaml")
        if shipped and path.is_file():
            found[base.removesuffix(".yaml")] = path
    return found


class NotUtf8Error(ValueError):
    """A file of the tree is not UTF-8: kustomize, Flux and Helm read nothing else."""


def read_utf8(path: Path) -> str:
    """A text file of the tree; raises NotUtf8Error naming the first bad byte and its line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise NotUtf8Error(f"not UTF-8 (byte 0x{data[exc.start]:02x} on line {line})") from exc


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
        # "r:": write_layout writes a plain tar; "r" would try every compression and report
        # a failed attempt per method.
        with tarfile.open(path, mode="r:") as tar:
            files = {m.name: _read_member(tar, m) for m in tar.getmembers() if m.isfile()}
    except tarfile.TarError as exc:
        raise ConfigError(
            f"{path}: not a tar archive ({_one_line(exc)})",
            hint="pass the OCI layout tar `isobuild release bundle --output` wrote",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            expected = "sha256:" + name.removeprefix("blobs/sha256/")
            if sha256_digest(data) != expected:
                raise VerificationError(
                    f"{path}: {name}: digest mismatch: expected {expected}, "
                    f"got {sha256_digest(data)}"
                )
    index = _json_member(path, files, "index.json")
    entries = index.get("manifests")
    if not isinstance(entries, list) or len(entries) != 1:
        raise _malformed(path, "index.json", "manifests", "expected a list of one descriptor")
    digest = _blob_digest(path, "index.json", "manifests[0]", entries[0], files)
    manifest = _json_member(path, files, _blob_name(digest))
    where = f"manifest {digest}"
    config = _blob(path, where, "config", manifest.get("config"), files)
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise _malformed(path, where, "layers", "expected a list of descriptors")
    artifact = Artifact(
        config=config,
        layers=tuple(_blob(path, where, f"layers[{i}]", d, files) for i, d in enumerate(layers)),
    )
    if artifact.digest != digest:
        raise ConfigError(
            f"{path}: manifest is not in the canonical form isobuild writes "
            f"({digest} != {artifact.digest})",
            hint="create the file with `isobuild release bundle`",
        )
    return artifact


def _malformed(path: Path, member: str, key: str, message: str) -> ConfigError:
    where = f"{member}: {key}" if key else member
    return ConfigError(
        f"{path}: {where}: {message}", hint="create the file with `isobuild release bundle`"
    )


def _json_member(path: Path, files: Mapping[str, bytes], name: str) -> dict[str, Any]:
    if name not in files:
        raise _malformed(path, name, "", "missing from the layout")
    try:
        document = json.loads(files[name])
    except ValueError as exc:
        raise _malformed(path, name, "", f"not valid JSON: {exc}") from exc
    except RecursionError as exc:  # the parser recurses per level: [[[[...]]]]
        raise _malformed(path, name, "", "not valid JSON: too deeply nested") from exc
    if not isinstance(document, dict):
        raise _malformed(path, name, "", f"expected a JSON object, got {type(document).__name__}")
    return document


def _blob_digest(path: Path, member: str, key: str, value: Any, files: Mapping[str, bytes]) -> str:
    """The digest of a descriptor whose blob is in the layout (so already re-hashed)."""
    if not isinstance(value, dict):
        raise _malformed(path, member, key, "expected a descriptor (a JSON object)")
    digest = value.get("digest")
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise _malformed(
            path, member, f"{key}.digest", f"expected sha256:<64 lowercase hex>, got {digest!r}"
        )
    if _blob_name(digest) not in files:
        raise _malformed(path, member, f"{key}.digest", f"no blob {digest} in the layout")
    return digest


def _blob(path: Path, member: str, key: str, value: Any, files: Mapping[str, bytes]) -> Blob:
    digest = _blob_digest(path, member, key, value, files)
    media_type = value.get("mediaType")
    if not isinstance(media_type, str):
        raise _malformed(path, member, f"{key}.mediaType", f"expected a string, got {media_type!r}")
    return Blob(media_type, files[_blob_name(digest)])


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    return handle.read() if handle is not None else b""


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{digest.removeprefix('sha256:')}"
