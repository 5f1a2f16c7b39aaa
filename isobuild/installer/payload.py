"""The payload build step: pinned artifacts, code and overlays into ``/appliance/`` on the ISO.

``stage_payload(ctx)`` fetches (or finds in the cache) everything the lock file pins,
renders the overlays with the build-info document, and puts one directory on the ISO:

    /appliance/payload-manifest.json   every file below: sha256, size, mode, install path
    /appliance/install-payload         the script the late-commands run (verify, install)
    /appliance/build-info.json         -> <etc>/build-info.json
    /appliance/registry-ca.pem         -> <etc>/registry-ca.pem (appliance.registry.ca_bundle,
                                          when configured)
    /appliance/k3s/k3s                 -> /usr/local/bin/k3s
    /appliance/k3s/images/*            -> /var/lib/rancher/k3s/agent/images/
    /appliance/opt/...                 -> <opt>/... (host_service, flux topology, Flux CLI
                                          and install.yaml)
    /appliance/rootfs/...              -> /... (the rendered overlays)

The payload manifest is also folded into build-manifest.json (``extra.payload``). Big
artifacts go onto the ISO straight from the artifact cache; nothing is copied twice.
"""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from host_service.settings import REGISTRY_CA_NAME
from isobuild import no_room
from isobuild.artifacts.cache import ArtifactCache
from isobuild.artifacts.fetch import Fetcher, make_source
from isobuild.artifacts.flux_install import check_images_pinned
from isobuild.artifacts.image_archive import (
    ARCHIVE_NAME,
    ClientFactory,
    default_client_factory,
    inspect_archive,
    obtain_image_archive,
)
from isobuild.artifacts.lockfile import PayloadLock
from isobuild.config import BuildConfig
from isobuild.digest import sha256_file
from isobuild.errors import ConfigError, PayloadError, VerificationError
from isobuild.installer import build_info, install_payload, overlay
from isobuild.resources import FLUX_DIR, HOST_SERVICE_DIR, OVERLAYS_DIR

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

ISO_DIR = "/appliance"
MEDIUM = "/cdrom/appliance"  # where the installer sees ISO_DIR
INSTALLER = "install-payload"
MANIFEST = install_payload.MANIFEST
SKIP = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache"})


# --- fetching --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FetchedPayload:
    """The verified artifacts of one lock file, as files in the artifact cache."""

    lock: PayloadLock
    k3s_binary: Path
    airgap_images: Path
    flux_cli_tarball: Path
    flux_install: Path
    image_archive: Path
    # Each path above → its sha256, verified when it entered the cache (or was looked up).
    digests: Mapping[Path, str]


def fetch_payload(
    lock: PayloadLock,
    *,
    cache_dir: Path,
    mirror: str | None = None,
    offline: bool = False,
    progress: bool = False,
    client_factory: ClientFactory = default_client_factory,
) -> FetchedPayload:
    """Every pinned artifact, downloaded (or found in the cache) and verified."""
    if offline and mirror is not None:
        raise ConfigError("--offline and --mirror exclude each other", hint="pass one of them")
    cache = ArtifactCache.under(cache_dir)
    try:
        return _fetch_into(
            cache, lock, mirror=mirror, offline=offline, progress=progress,
            client_factory=client_factory,
        )  # fmt: skip
    except OSError as exc:
        # Only the cache is written here: a write that names no file was into it.
        if not no_room.within(exc, cache_dir):
            raise
        raise no_room.problem(
            exc, cache.root, "writing the artifact cache",
            "pass --cache-dir with a directory on a filesystem with room", cleaned_up=True,
        ) from exc  # fmt: skip


def _fetch_into(
    cache: ArtifactCache,
    lock: PayloadLock,
    *,
    mirror: str | None,
    offline: bool,
    progress: bool,
    client_factory: ClientFactory,
) -> FetchedPayload:
    source = None if offline else make_source(mirror, progress=progress)
    prebuilt = lock.image_archive
    built = None if prebuilt is not None else cache.recall(lock.images_key())
    also_missing = []
    if prebuilt is None and built is None:
        images = ", ".join(f"{i.reference}@{i.digest}" for i in lock.images)
        also_missing.append(f"  flux.images: the controller image archive of {images}")
    got = Fetcher(cache, source).fetch_all(lock.files(), also_missing=also_missing)
    install_yaml = got["flux.files.install_manifest"]
    check_images_pinned(lock, install_yaml)
    if prebuilt is not None:
        archive = got[prebuilt.key]
        _check_prebuilt_archive(lock, archive)
    elif built is not None:
        archive = built
    else:
        archive = obtain_image_archive(lock, cache, offline=offline, client_factory=client_factory)
    k3s_binary, airgap = got["k3s.files.binary"], got["k3s.files.airgap_images"]
    cli = got["flux.files.cli"]
    return FetchedPayload(
        lock=lock,
        k3s_binary=k3s_binary,
        airgap_images=airgap,
        flux_cli_tarball=cli,
        flux_install=install_yaml,
        image_archive=archive,
        digests={
            path: cache.digest_of(path) for path in (k3s_binary, airgap, cli, install_yaml, archive)
        },
    )


def _check_prebuilt_archive(lock: PayloadLock, archive: Path) -> None:
    """A pinned prebuilt archive must carry exactly the images the lock names."""
    found = {image.reference for image in inspect_archive(archive)}
    wanted = {image.reference for image in lock.images}
    if found != wanted:
        raise VerificationError(
            f"{lock.source}: flux.files.image_archive carries {sorted(found)}, but "
            f"flux.images names {sorted(wanted)}",
            hint="rebuild the archive from the pinned images (`isobuild fetch`)",
        )


# --- assembling --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PlannedFile:
    """One file of the payload directory: where its bytes are and where it is installed."""

    path: str  # relative to /appliance
    source: Path
    sha256: str
    size: int
    mode: int
    install: str | None


@dataclass(kw_only=True)
class PayloadPlan:
    """The payload directory as a list of files plus its manifest document."""

    files: list[PlannedFile] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    manifest_file: Path | None = None
    standin: bool = False

    def add(
        self,
        path: str,
        source: Path,
        mode: int,
        install: PurePosixPath | None,
        *,
        sha256: str | None = None,
    ) -> None:
        """Plan ``source`` as ``path``; ``sha256`` when it is already verified, else hashed."""
        self.files.append(
            PlannedFile(
                path=path,
                source=source,
                sha256=sha256 if sha256 is not None else sha256_file(source),
                size=source.stat().st_size,
                mode=mode,
                install=None if install is None else str(install),
            )
        )


def _tree(directory: Path) -> list[Path]:
    return [
        p
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not SKIP.intersection(p.relative_to(directory).parts)
        and p.suffix != ".pyc"
    ]  # fmt: skip


def _extract_flux_cli(tarball: Path, dest: Path) -> Path:
    """The ``flux`` binary out of the verified release tarball (that member only)."""
    try:
        with tarfile.open(tarball) as tar:
            member = tar.getmember("flux")
            if not member.isfile():
                raise PayloadError(f"{tarball}: 'flux' in the Flux CLI tarball is not a file")
            extracted = tar.extractfile(member)
            assert extracted is not None
            with extracted, dest.open("wb") as out:
                shutil.copyfileobj(extracted, out, 1 << 20)
    except KeyError:
        raise PayloadError(f"{tarball}: the Flux CLI tarball has no 'flux' binary") from None
    except tarfile.TarError as exc:
        raise PayloadError(f"{tarball}: unreadable Flux CLI tarball: {exc}") from exc
    dest.chmod(0o755)
    return dest


def plan_payload(
    config: BuildConfig,
    fetched: FetchedPayload,
    work: Path,
    *,
    build: str,
    overlays_dir: Path = OVERLAYS_DIR,
    host_service_dir: Path = HOST_SERVICE_DIR,
    flux_dir: Path = FLUX_DIR,
) -> PayloadPlan:
    """Decide every file of /appliance; generated files are written under ``work``."""
    lock = fetched.lock
    layout = build_info.InstalledLayout.of(config)
    k3s_images = build_info.K3S_IMAGES_DIR
    airgap_name = lock.k3s.files["airgap_images"].name
    known = fetched.digests
    archives = [
        build_info.ImageArchive(file=airgap_name, sha256=known[fetched.airgap_images], images=()),
        build_info.ImageArchive(
            file=ARCHIVE_NAME,
            sha256=known[fetched.image_archive],
            images=[image.reference for image in lock.images],
        ),
    ]
    info = build_info.build_info_document(config, lock, build=build, archives=archives)
    plan = PayloadPlan(standin=lock.standin)

    work.mkdir(parents=True, exist_ok=True)
    info_file = work / "build-info.json"
    info_file.write_text(build_info.render_build_info(info), encoding="utf-8")
    plan.add("build-info.json", info_file, 0o640, layout.build_info)
    site_ca = build_info.site_ca(config)
    if site_ca is not None:
        # A checked copy: the bytes hashed into the manifest are the bytes on the ISO.
        ca_copy = work / REGISTRY_CA_NAME
        ca_copy.write_bytes(site_ca)
        plan.add(REGISTRY_CA_NAME, ca_copy, 0o644, layout.registry_ca)
    script = work / INSTALLER
    script.write_bytes(Path(install_payload.__file__).read_bytes())
    script.chmod(0o755)
    plan.add(INSTALLER, script, 0o755, None)

    for rel, cached, mode, install in (
        ("k3s/k3s", fetched.k3s_binary, 0o755, build_info.K3S_BINARY),
        (f"k3s/images/{airgap_name}", fetched.airgap_images, 0o644, k3s_images / airgap_name),
        (f"k3s/images/{ARCHIVE_NAME}", fetched.image_archive, 0o644, k3s_images / ARCHIVE_NAME),
        ("opt/flux-install/install.yaml", fetched.flux_install, 0o644, layout.flux_install),
    ):
        plan.add(rel, cached, mode, install, sha256=known[cached])

    flux_cli = _extract_flux_cli(fetched.flux_cli_tarball, work / "flux")
    plan.add("opt/bin/flux", flux_cli, 0o755, layout.flux_cli)
    for source_dir, installed in (
        (host_service_dir, layout.host_service),
        (flux_dir, layout.topology),
    ):
        for path in _tree(source_dir):
            rel = path.relative_to(source_dir).as_posix()
            rel_opt = (installed / rel).relative_to(layout.opt).as_posix()
            plan.add(f"opt/{rel_opt}", path, 0o644, installed / rel)

    rendered = work / "rootfs"
    overlay_files = overlay.render_overlay(overlays_dir, info, rendered)
    overlay.add_appliance_target(overlay_files, rendered, config.name)
    for item in overlay_files:
        plan.add(f"rootfs{item.install}", item.local, item.mode, item.install)

    readme = work / "README.txt"
    readme.write_text(_readme(config, lock, build), encoding="utf-8")
    plan.add("README.txt", readme, 0o644, None)

    plan.files.sort(key=lambda f: f.path)
    plan.manifest = _manifest_document(config, lock, build, layout, plan.files)
    manifest_file = work / MANIFEST
    manifest_file.write_text(json.dumps(plan.manifest, indent=2, sort_keys=True) + "\n")
    plan.manifest_file = manifest_file
    return plan


def _manifest_document(
    config: BuildConfig,
    lock: PayloadLock,
    build: str,
    layout: build_info.InstalledLayout,
    files: list[PlannedFile],
) -> dict[str, Any]:
    return {
        "schema": install_payload.SCHEMA,
        "name": config.name,
        "version": config.version,
        "build_id": build,
        "standin": lock.standin,
        "k3s_version": lock.k3s.version,
        "flux_version": lock.flux.version,
        "manifest_install": str(layout.payload_manifest),
        "directories": [
            {"path": str(layout.opt), "mode": "0755"},
            {"path": str(layout.etc), "mode": "0750"},
            {"path": str(layout.state), "mode": "0700"},
            {"path": str(build_info.K3S_IMAGES_DIR), "mode": "0755"},
        ],
        "files": [
            {
                "path": f.path,
                "sha256": f.sha256,
                "size": f.size,
                "mode": f"{f.mode:04o}",
                "install": f.install,
            }
            for f in files
        ],
    }


def _readme(config: BuildConfig, lock: PayloadLock, build: str) -> str:
    standin = (
        "\nSTAND-IN: the k3s and Flux files here are labelled stand-ins, not the real release\n"
        "assets. The system installs and boots, but k3s cannot start.\n"
        if lock.standin
        else ""
    )
    return (
        f"{config.name} {config.version} appliance payload (build {build})\n"
        f"k3s {lock.k3s.version}, Flux {lock.flux.version}\n{standin}\n"
        f"The autoinstall late-commands run `{INSTALLER}` from here: it checks every file\n"
        f"against {MANIFEST}, installs it, and writes /boot/{config.name}-installed.\n"
        "See docs/payload.md in the isobuild sources.\n"
    )
