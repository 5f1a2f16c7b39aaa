"""build-info.json: what was installed, kept at ``<etc>/build-info.json`` on the appliance.

The host service reads it as its settings (``host_service/settings.py``): the
``appliance`` section is the build config's (paths, port, namespaces, registry, k3s
options, values profile; a configured registry CA bundle as its installed path) and
``payload`` says where the installed payload lives. Overlay
templates (``overlays/**/*.j2``) are rendered with this same document. Checked before it is
written against the schema the host service ships and validates every load with
(``host_service/schemas/build-info-v1.json``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from host_service.schema import Schema
from host_service.settings import REGISTRY_CA_NAME, SCHEMA_FILE, SCHEMA_ID
from isobuild import ca_bundle
from isobuild.artifacts.lockfile import PayloadLock
from isobuild.config import BuildConfig, to_mapping
from isobuild.errors import ConfigError

# Fixed by k3s, not by the appliance config.
K3S_BINARY = PurePosixPath("/usr/local/bin/k3s")
K3S_IMAGES_DIR = PurePosixPath("/var/lib/rancher/k3s/agent/images")
# Kept by the host service's k3s smoke test: an image the airgap archive carries.
K3S_SMOKE_IMAGE = "rancher/mirrored-library-busybox:1.36.1"
# The site registry CA bundle, in <etc> on the installed system and in /appliance on the ISO.


@dataclass(frozen=True, kw_only=True)
class InstalledLayout:
    """Where the payload goes on the installed system (``<opt>``-relative parts fixed)."""

    opt: PurePosixPath
    etc: PurePosixPath
    state: PurePosixPath

    @classmethod
    def of(cls, config: BuildConfig) -> InstalledLayout:
        paths = config.appliance.paths
        return cls(
            opt=PurePosixPath(paths.opt),
            etc=PurePosixPath(paths.etc),
            state=PurePosixPath(paths.state),
        )

    @property
    def host_service(self) -> PurePosixPath:
        return self.opt / "host_service"

    @property
    def topology(self) -> PurePosixPath:
        return self.opt / "flux"

    @property
    def flux_cli(self) -> PurePosixPath:
        return self.opt / "bin" / "flux"

    @property
    def flux_install(self) -> PurePosixPath:
        return self.opt / "flux-install" / "install.yaml"

    @property
    def payload_manifest(self) -> PurePosixPath:
        return self.opt / "payload-manifest.json"

    @property
    def build_info(self) -> PurePosixPath:
        return self.etc / "build-info.json"

    @property
    def registry_ca(self) -> PurePosixPath:
        """The site registry CA bundle (``appliance.registry.ca_bundle``), when configured."""
        return self.etc / REGISTRY_CA_NAME


@dataclass(frozen=True, kw_only=True)
class ImageArchive:
    """An image archive the payload puts into the k3s images directory."""

    file: str
    sha256: str
    images: Sequence[str]  # references it carries, for people reading build-info


def build_id(config: BuildConfig, lock: PayloadLock, base: Mapping[str, Any], epoch: int) -> str:
    """A reproducible id for one build: same inputs, same id (no clock, no host)."""
    inputs: dict[str, Any] = {
        "config": config.sha256,
        "lock": lock.sha256,
        "base": dict(base),
        "epoch": epoch,
        "name": config.name,
        "version": config.version,
    }
    ca = site_ca(config)
    if ca is not None:
        # The config names the file; its bytes are an input of their own.
        inputs["ca_bundle"] = hashlib.sha256(ca).hexdigest()
    text = json.dumps(inputs, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def site_ca(config: BuildConfig) -> bytes | None:
    """The configured registry CA bundle's bytes, checked again as they are read."""
    path = config.appliance.registry.ca_bundle
    if path is None:
        return None
    try:
        return ca_bundle.read(path)
    except ca_bundle.BadBundle as exc:
        # Checked when the config was loaded; it changed since.
        raise ConfigError(f"{config.source}: appliance.registry.ca_bundle: {exc}") from exc


def appliance_section(config: BuildConfig) -> dict[str, Any]:
    """The config's ``appliance`` section as the installed system sees it.

    ``registry.ca_bundle`` names the installed copy of the CA bundle (never the builder's
    local path) and is absent when none is configured.
    """
    section: dict[str, Any] = dict(to_mapping(config)["appliance"])
    registry = dict(section["registry"])
    if config.appliance.registry.ca_bundle is None:
        registry.pop("ca_bundle", None)
    else:
        registry["ca_bundle"] = str(InstalledLayout.of(config).registry_ca)
    section["registry"] = registry
    return section


def build_info_document(
    config: BuildConfig,
    lock: PayloadLock,
    *,
    build: str,
    archives: Sequence[ImageArchive],
) -> dict[str, Any]:
    """The build-info document (pure)."""
    layout = InstalledLayout.of(config)
    return {
        "schema": SCHEMA_ID,
        "name": config.name,
        "version": config.version,
        "build_id": build,
        "standin": lock.standin,
        "config_sha256": config.sha256,
        "lock_sha256": lock.sha256,
        "appliance": appliance_section(config),
        "payload": {
            "manifest": str(layout.payload_manifest),
            "host_service": str(layout.host_service),
            "topology": str(layout.topology),
            "k3s": {
                "version": lock.k3s.version,
                "binary": str(K3S_BINARY),
                "images_dir": str(K3S_IMAGES_DIR),
                "smoke_image": K3S_SMOKE_IMAGE,
                "image_archives": [
                    {"file": a.file, "sha256": a.sha256, "images": list(a.images)} for a in archives
                ],
            },
            "flux": {
                "version": lock.flux.version,
                "install_yaml": str(layout.flux_install),
                "cli": str(layout.flux_cli),
                "images": [
                    {"name": i.name, "reference": i.reference, "digest": i.digest}
                    for i in lock.images
                ],
            },
        },
    }


def render_build_info(document: Mapping[str, Any]) -> str:
    """Stable JSON text, after checking the document against its schema."""
    problems = Schema.load(SCHEMA_FILE).problems(document)
    if problems:  # a bug in this module, not a user error
        raise ValueError("build-info.json: " + "; ".join(str(p) for p in problems))
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
