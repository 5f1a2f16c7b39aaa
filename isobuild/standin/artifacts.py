"""Clearly labelled stand-ins for the k3s and Flux release assets, in the publishers' layouts.

Machines without internet (CI, these) cannot download the real assets. ``write_standins``
writes files that have the real names, formats and checksum files (a k3s "binary" that is a
shell script refusing to run, a zstd airgap image archive, a Flux CLI tarball, an
install.yaml, a controller image archive) plus a ``payload.lock.yaml`` pinning them with
``standin: true``. They go through the same fetch/verify/cache code as the real ones
(``isobuild build --lock DIR/payload.lock.yaml --mirror DIR``). Every file says it is a
stand-in. Output is deterministic: same arguments, same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host_service.oci import OCI_MANIFEST
from isobuild import no_room, output_file
from isobuild.artifacts.image_archive import ARCHIVE_NAME, ImageContent, write_archive
from isobuild.artifacts.lockfile import DEFAULT_FLUX_CONTROLLERS, format_lock
from isobuild.errors import ConfigError, OutputExistsError

STANDIN_MARK = "STAND-IN"
README_NAME = "README-STANDIN.txt"  # marks a directory this module wrote
WRITING = "writing the stand-in artifacts"
WAY_OUT = "choose another DIRECTORY"
LABEL = (
    "isobuild stand-in artifact, NOT the real release asset: written by "
    "`isobuild standin-artifacts` so appliance ISOs can be built and tested offline"
)
K3S_VERSION = "v1.36.3+k3s1"
FLUX_VERSION = "2.9.4"
# The controller tags Flux 2.9.4's install.yaml references (see payload.lock.yaml).
FLUX_CONTROLLER_TAGS: Mapping[str, str] = {
    "source-controller": "v1.9.4",
    "kustomize-controller": "v1.9.4",
    "helm-controller": "v1.6.3",
    "notification-controller": "v1.9.3",
}
# What the real k3s airgap archive carries, by name (stand-in content).
K3S_AIRGAP_IMAGES = (
    "docker.io/rancher/mirrored-pause:3.6",
    "docker.io/rancher/mirrored-coredns-coredns:1.14.6",
    "docker.io/rancher/local-path-provisioner:v0.0.36",
    "docker.io/rancher/mirrored-metrics-server:v0.9.0",
    "docker.io/rancher/mirrored-library-busybox:1.36.1",  # local-path's helper pod
)
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DEFAULT_FILLER = 256 * 1024


# --- formats -------------------------------------------------------------------------------


def zstd_frame(data: bytes) -> bytes:
    """``data`` as a valid zstd frame of raw (stored) blocks, decodable by any zstd.

    Frame header: magic, a descriptor with Single_Segment and an 8-byte content size, then
    blocks of at most 128 KiB, each with a 3-byte header (last flag, type 0 = raw, size).
    """
    out = bytearray(b"\x28\xb5\x2f\xfd")
    out.append(0b1110_0000)  # FCS field 8 bytes, single segment, no checksum, no dict
    out += len(data).to_bytes(8, "little")
    block_max = 128 * 1024
    offset = 0
    while True:
        block = data[offset : offset + block_max]
        offset += len(block)
        last = offset >= len(data)
        header = (len(block) << 3) | (0 << 1) | int(last)
        out += header.to_bytes(3, "little") + block
        if last:
            return bytes(out)


def _filler(seed: str, size: int) -> bytes:
    """Deterministic comment lines of pseudo-random hex, ``size`` bytes in all."""
    lines = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(lines) < size:
        block = hashlib.sha256(block).digest()
        lines += b"# " + block.hex().encode() + b"\n"
    return bytes(lines[:size])


def _tar_bytes(files: Mapping[str, tuple[bytes, int]], *, gzip_it: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            data, mode = files[name]
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    return gzip.compress(raw, mtime=0) if gzip_it else raw


def checksum_line(sha256: str, name: str) -> str:
    """One ``sha256sum`` line, the format k3s and Flux publish."""
    return f"{sha256}  {name}\n"


def goreleaser_checksums(entries: Mapping[str, str]) -> str:
    """Flux's ``flux_<v>_checksums.txt`` as goreleaser writes it: ``sha256sum`` lines sorted
    by file name, listing the archives and (since Flux 0.25.3) ``install.yaml``,
    ``manifests.tar.gz`` and ``crd-schemas.tar.gz``."""
    return "".join(checksum_line(entries[name], name) for name in sorted(entries))


# --- stand-in images -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StandinImage:
    """A tiny image: one layer with a label file; blobs and the manifest as bytes."""

    config: bytes
    layer: bytes
    manifest: bytes

    @property
    def manifest_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.manifest).hexdigest()

    @property
    def config_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.config).hexdigest()

    @property
    def layer_digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.layer).hexdigest()


def make_image(name: str, *, architecture: str = "amd64") -> StandinImage:
    """A labelled stand-in image for ``name`` on linux/``architecture``."""
    text = f"{STANDIN_MARK}: {name} for linux/{architecture}\n{LABEL}\n".encode()
    layer_tar = _tar_bytes({"STANDIN.txt": (text, 0o644)})
    layer = gzip.compress(layer_tar, mtime=0)
    config_doc = {
        "architecture": architecture,
        "os": "linux",
        "config": {
            "Cmd": ["/STANDIN.txt"],
            "Labels": {"org.opencontainers.image.description": f"{STANDIN_MARK} {name}"},
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()],
        },
    }
    config = json.dumps(config_doc, sort_keys=True).encode()
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": LAYER_GZIP,
                "digest": "sha256:" + hashlib.sha256(layer).hexdigest(),
                "size": len(layer),
            }
        ],
        "annotations": {"org.opencontainers.image.description": f"{STANDIN_MARK} {name}"},
    }
    manifest = json.dumps(manifest_doc, indent=2, sort_keys=True).encode()
    return StandinImage(config=config, layer=layer, manifest=manifest)


def _image_archive(references: Sequence[str], dest: Path, work: Path) -> tuple[dict[str, str], str]:
    """Write an archive of stand-in images; returns (reference → manifest digest, its sha256)."""
    blob_dir = work / "blobs"
    blob_dir.mkdir(parents=True, exist_ok=True)
    contents = []
    digests = {}
    for reference in references:
        image = make_image(reference)
        (blob_dir / image.config_digest.removeprefix("sha256:")).write_bytes(image.config)
        (blob_dir / image.layer_digest.removeprefix("sha256:")).write_bytes(image.layer)
        contents.append(
            ImageContent(
                reference=reference,
                tag=reference.rsplit(":", 1)[1],
                manifest=image.manifest,
                manifest_media_type=OCI_MANIFEST,
                config_digest=image.config_digest,
                layer_digests=(image.layer_digest,),
            )
        )
        digests[reference] = image.manifest_digest
    return digests, write_archive(contents, blob_dir, dest)


# --- the stand-in release files --------------------------------------------------------------


def _k3s_binary(version: str, filler: int) -> bytes:
    script = f"""#!/bin/sh
# {STANDIN_MARK} k3s {version}: {LABEL}.
# It is a shell script, not k3s: `--version` answers, every other command fails with 69.
case "$1" in
  --version|-v|version)
    echo "k3s version {version} ({STANDIN_MARK}: not a real k3s binary)"
    exit 0 ;;
esac
echo "k3s {STANDIN_MARK}: this is not a real k3s binary; it cannot run a cluster." >&2
echo "Build the ISO with the real pinned artifacts (payload.lock.yaml) to install k3s." >&2
exit 69
"""
    return script.encode() + _filler(f"k3s {version}", filler)


def _flux_binary(version: str) -> bytes:
    script = f"""#!/bin/sh
# {STANDIN_MARK} flux {version}: {LABEL}.
case "$1" in
  --version|-v|version)
    echo "flux version {version} ({STANDIN_MARK}: not the real Flux CLI)"
    exit 0 ;;
esac
echo "flux {STANDIN_MARK}: this is not the real Flux CLI." >&2
exit 69
"""
    return script.encode()


def install_yaml_text(
    version: str, images: Mapping[str, str], crds: Sequence[Mapping[str, Any]] = ()
) -> bytes:
    """A stand-in install.yaml: the namespace, ``crds`` and one Deployment per controller.

    ``crds`` are real Flux CustomResourceDefinitions (the test suite takes them from a kept
    package generated from Flux's CRDs: tests/fixtures/flux_crds.py); without them the
    file carries no CRD and cannot serve as the Flux schemas (isobuild/release/flux_crds.py).
    """
    documents: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "flux-system",
                "labels": {"app.kubernetes.io/version": f"v{version}"},
                "annotations": {"isobuild.standin": LABEL},
            },
        }
    ]
    documents += [dict(crd) for crd in crds]
    for name, reference in images.items():
        documents.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": "flux-system",
                    "annotations": {"isobuild.standin": LABEL},
                },
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "manager",
                                    "image": reference,
                                    "imagePullPolicy": "IfNotPresent",
                                }
                            ]
                        },
                    },
                },
            }
        )
    header = f"# {STANDIN_MARK} Flux v{version} install.yaml: {LABEL}\n"
    body = "".join("---\n" + json.dumps(d, indent=2, sort_keys=True) + "\n" for d in documents)
    return (header + body).encode()


@dataclass(frozen=True, kw_only=True)
class StandinResult:
    directory: Path
    lock: Path
    files: Mapping[str, str]  # relative path → sha256


class _Tree:
    """The files written under ``root``, each hashed once: from its bytes as it is written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sha256: dict[str, str] = {}  # path relative to root → sha256

    def write(self, path: Path, data: bytes, mode: int = 0o644) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
        return self.record(path, hashlib.sha256(data).hexdigest())

    def record(self, path: Path, sha256: str) -> str:
        """A file written elsewhere whose digest is already known."""
        self.sha256[str(path.relative_to(self.root))] = sha256
        return sha256


def _populate(
    root: Path,
    *,
    k3s_version: str,
    flux_version: str,
    k3s_base_url: str,
    flux_base_url: str,
    filler: int,
    flux_crds: Sequence[Mapping[str, Any]],
) -> dict[str, str]:
    k3s_dir = root / "k3s" / k3s_version
    flux_dir = root / "flux" / flux_version
    work = root / ".work"
    tree = _Tree(root)
    sums: dict[str, str] = {}

    sums["k3s"] = tree.write(k3s_dir / "k3s", _k3s_binary(k3s_version, filler), 0o755)
    inner = work / "k3s-airgap-images-amd64.tar"
    _image_archive(K3S_AIRGAP_IMAGES, inner, work / "airgap")
    airgap = zstd_frame(inner.read_bytes())
    sums["k3s-airgap-images-amd64.tar.zst"] = tree.write(
        k3s_dir / "k3s-airgap-images-amd64.tar.zst", airgap
    )
    images_txt = "".join(f"{ref}\n" for ref in K3S_AIRGAP_IMAGES).encode()
    sums["k3s-images.txt"] = tree.write(k3s_dir / "k3s-images.txt", images_txt)
    k3s_checksums = "".join(checksum_line(sha, name) for name, sha in sorted(sums.items()))
    tree.write(k3s_dir / "sha256sum-amd64.txt", k3s_checksums.encode())

    flux_refs = {
        name: f"ghcr.io/fluxcd/{name}:{FLUX_CONTROLLER_TAGS[name]}"
        for name in DEFAULT_FLUX_CONTROLLERS
    }
    cli_name = f"flux_{flux_version}_linux_amd64.tar.gz"
    cli = _tar_bytes({"flux": (_flux_binary(flux_version), 0o755)}, gzip_it=True)
    flux_sums = {cli_name: tree.write(flux_dir / cli_name, cli)}
    install = install_yaml_text(flux_version, flux_refs, flux_crds)
    install_sha = flux_sums["install.yaml"] = tree.write(flux_dir / "install.yaml", install)
    manifests = _tar_bytes({"STANDIN.txt": (f"{STANDIN_MARK}: {LABEL}\n".encode(), 0o644)},
                           gzip_it=True)  # fmt: skip
    flux_sums["manifests.tar.gz"] = tree.write(flux_dir / "manifests.tar.gz", manifests)
    tree.write(
        flux_dir / f"flux_{flux_version}_checksums.txt",
        goreleaser_checksums(flux_sums).encode(),
    )
    archive = flux_dir / ARCHIVE_NAME
    image_digests, archive_sha = _image_archive(list(flux_refs.values()), archive, work / "fx")
    tree.record(archive, archive_sha)
    shutil.rmtree(work)

    readme = (
        f"{STANDIN_MARK} k3s and Flux release assets\n\n{LABEL}.\n\n"
        "Layout: <component>/<version>/<file>, the --mirror layout of docs/payload.md.\n"
        "Build with: isobuild build --lock DIR/payload.lock.yaml --mirror DIR (DIR: here)\n"
        "The result installs and boots, but k3s and Flux cannot start from these files.\n"
    )
    tree.write(root / README_NAME, readme.encode())

    document = {
        "schema": 1,
        "standin": True,
        "k3s": {
            "version": k3s_version,
            "base_url": k3s_base_url,
            "checksum_file": "sha256sum-amd64.txt",
            "files": {
                "binary": {"name": "k3s", "sha256": sums["k3s"]},
                "airgap_images": {
                    "name": "k3s-airgap-images-amd64.tar.zst",
                    "sha256": sums["k3s-airgap-images-amd64.tar.zst"],
                },
            },
        },
        "flux": {
            "version": flux_version,
            "base_url": flux_base_url,
            "checksum_file": f"flux_{flux_version}_checksums.txt",
            "files": {
                "cli": {"name": cli_name, "sha256": flux_sums[cli_name]},
                "install_manifest": {"name": "install.yaml", "sha256": install_sha},
                "image_archive": {
                    "name": ARCHIVE_NAME,
                    "sha256": archive_sha,
                    "checksum_entry": False,
                },
            },
            "images": {
                name: {
                    "repository": ref.rsplit(":", 1)[0],
                    "tag": ref.rsplit(":", 1)[1],
                    "digest": image_digests[ref],
                }
                for name, ref in flux_refs.items()
            },
        },
    }
    header = (
        f"{STANDIN_MARK} payload lock: pins the stand-in files beside it, not real k3s/Flux.\n"
        f"{LABEL}.\n"
        "Build with --mirror pointing at this directory; the base URLs are the publishers'\n"
        "(downloading from them would be refused: the real files have other digests)."
    )
    lock_path = root / "payload.lock.yaml"
    tree.write(lock_path, format_lock(document, header=header, source=lock_path).encode("utf-8"))
    return dict(sorted(tree.sha256.items()))


def _check_replaceable(directory: Path, *, force: bool) -> None:
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory}: is not a directory", hint="name a new or empty directory")
    if not directory.exists() or not any(directory.iterdir()):
        return
    if not (directory / README_NAME).is_file():
        raise ConfigError(
            f"{directory}: is not empty and holds no stand-in mirror ({README_NAME}); "
            "--force replaces only those",
            hint="name a new or empty directory",
        )
    if not force:
        raise OutputExistsError(
            f"{directory}: holds a stand-in mirror already", hint="pass --force to replace it"
        )


def write_standins(
    directory: Path,
    *,
    force: bool = False,
    k3s_version: str = K3S_VERSION,
    flux_version: str = FLUX_VERSION,
    k3s_base_url: str | None = None,
    flux_base_url: str | None = None,
    filler: int = DEFAULT_FILLER,
    flux_crds: Sequence[Mapping[str, Any]] = (),
) -> StandinResult:
    """Write the stand-in release files and their lock file into ``directory`` atomically.

    ``force`` replaces a mirror this function wrote before (it holds README-STANDIN.txt),
    never another directory: replacing deletes the old tree.
    """
    _check_replaceable(directory, force=force)
    k3s_base = k3s_base_url or (
        "https://github.com/k3s-io/k3s/releases/download/" + k3s_version.replace("+", "%2B")
    )
    flux_base = (
        flux_base_url or f"https://github.com/fluxcd/flux2/releases/download/v{flux_version}"
    )
    with output_file.directory_for(directory):
        return _write(directory, k3s_version, flux_version, k3s_base, flux_base, filler,
                      flux_crds)  # fmt: skip


def _write(
    directory: Path,
    k3s_version: str,
    flux_version: str,
    k3s_base: str,
    flux_base: str,
    filler: int,
    flux_crds: Sequence[Mapping[str, Any]],
) -> StandinResult:
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    except OSError as exc:
        raise no_room.problem(exc, directory, WRITING, WAY_OUT) from None
    try:
        files = _populate(
            staging,
            k3s_version=k3s_version,
            flux_version=flux_version,
            k3s_base_url=k3s_base,
            flux_base_url=flux_base,
            filler=filler,
            flux_crds=flux_crds,
        )
        staging.chmod(0o755)
        # The old set is renamed aside, not deleted in place: a stop or an error leaves
        # either the old set or the new one complete, never a half-deleted mirror.
        old = staging.with_name(staging.name + ".old") if directory.exists() else None
        if old is not None:
            directory.rename(old)
        try:
            staging.rename(directory)
        except BaseException:
            if old is not None:
                old.rename(directory)
            raise
    except OSError as exc:
        # Read before the cleanup frees inodes again (the hint reads df -i). The staging
        # directory's name is not the user's, and is gone afterwards: name DIRECTORY.
        refused = no_room.within(exc, directory.parent)
        error = no_room.problem(exc, directory, WRITING, WAY_OUT) if refused else None
        shutil.rmtree(staging, ignore_errors=True)
        if error is not None:
            raise error from None
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return StandinResult(directory=directory, lock=directory / "payload.lock.yaml", files=files)
