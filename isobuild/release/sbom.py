"""The build's SBOM: CycloneDX 1.6 JSON, written beside the ISO as ``sbom.cdx.json``.

CycloneDX rather than SPDX 2.3: one maintained library (cyclonedx-python-lib) builds the
document and ships the official JSON schema to validate it; a component carries its
hashes, purl and free properties directly (an SPDX package needs relationships and a
verification code for the same facts), and container images have a first-class type.

What it lists: the base ISO, every pinned payload artifact (k3s binary and airgap archive,
Flux CLI and install.yaml, each controller image as ``pkg:oci/...@sha256:...``), every file
the build put on the ISO (the host service, overlays, rendered autoinstall, menus; property
``isobuild:iso_path``) and every EFI binary of the boot chain with its signers. Same inputs,
same bytes: the serial number derives from the ISO's digest, the timestamp is the build's
SOURCE_DATE_EPOCH, every bom-ref is a fixed name.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from isobuild.artifacts.lockfile import PayloadLock
from isobuild.iso.efi_inventory import ISO9660, EfiEntry

FILE_NAME = "sbom.cdx.json"
NAMESPACE = uuid.UUID("6d1c5f0e-5b0e-4d3b-9f53-2f1f0c2b7a11")  # isobuild's SBOM serials
ISO_PATH = "isobuild:iso_path"
ROLE = "isobuild:role"
EFI_LOCATION = "isobuild:efi_location"
SIGNER = "isobuild:authenticode_signer"
SBAT = "isobuild:sbat"
CONTAINED_IN = "isobuild:contained_in"
PAYLOAD_DIR = "/appliance"
IMAGE_ARCHIVE = f"{PAYLOAD_DIR}/k3s/images/flux-controller-images-amd64.tar"
# What a file on the ISO is, by where it is (first match).
_ROLES = (
    ("/autoinstall.yaml", "autoinstall"),
    ("/nocloud/", "autoinstall"),
    ("/boot/grub/", "boot-menu"),
    (f"{PAYLOAD_DIR}/opt/host_service/", "host-service"),
    (f"{PAYLOAD_DIR}/overlay/", "overlay"),
    (f"{PAYLOAD_DIR}/", "payload"),
)


@dataclass(frozen=True, kw_only=True)
class IsoFileRecord:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True, kw_only=True)
class SbomInputs:
    name: str
    version: str
    iso_file: str
    iso_sha256: str
    epoch: int
    tool_version: str
    base_name: str
    base_sha256: str
    base_volume_id: str
    base_disk_info: str
    lock: PayloadLock
    files: Sequence[IsoFileRecord]
    efi: Sequence[EfiEntry]


def _sha(hex_digest: str) -> list[HashType]:
    return [HashType(alg=HashAlgorithm.SHA_256, content=hex_digest.removeprefix("sha256:"))]


def _props(*pairs: tuple[str, str]) -> list[Property]:
    return [Property(name=name, value=value) for name, value in pairs]


def file_role(iso_path: str) -> str:
    for prefix, role in _ROLES:
        if iso_path == prefix or iso_path.startswith(prefix):
            return role
    return "medium"


def _artifacts(lock: PayloadLock, on_iso: dict[str, str]) -> Iterable[Component]:
    for component in (lock.k3s, lock.flux):
        for role, pinned in sorted(component.files.items()):
            purl = PackageURL(
                type="generic",
                namespace=pinned.component,
                name=pinned.name,
                version=pinned.version,
                qualifiers={
                    "download_url": f"{pinned.base_url}/{pinned.name}",
                    "checksum": f"sha256:{pinned.sha256}",
                },
            )
            where = on_iso.get(pinned.sha256)
            yield Component(
                type=ComponentType.APPLICATION if role in ("binary", "cli") else ComponentType.FILE,
                bom_ref=f"artifact:{pinned.component}:{role}",
                group=pinned.component,
                name=pinned.name,
                version=pinned.version,
                hashes=_sha(pinned.sha256),
                purl=purl,
                properties=_props(
                    (ROLE, f"payload-{role}"), *([(ISO_PATH, where)] if where else [])
                ),
            )
    for image in lock.images:
        registry, _, path = image.repository.partition("/")
        namespace, _, name = path.rpartition("/")
        yield Component(
            type=ComponentType.CONTAINER,
            bom_ref=f"image:{image.repository}",
            group=f"{registry}/{namespace}",
            name=name,
            version=image.tag,
            hashes=_sha(image.digest),
            purl=PackageURL(
                type="oci",
                name=name,
                version=image.digest,
                qualifiers={"repository_url": image.repository, "tag": image.tag},
            ),
            properties=_props((ROLE, "controller-image"), (CONTAINED_IN, IMAGE_ARCHIVE)),
        )


def _efi(entry: EfiEntry) -> Component:
    binary = entry.binary
    pairs = [(EFI_LOCATION, entry.location), (ROLE, "efi-binary")]
    if entry.location == ISO9660:
        pairs.append((ISO_PATH, entry.path))
    pairs += [(SIGNER, signer) for signer in binary.signers]
    pairs += [(SBAT, f"{n},{g}") for n, g in binary.sbat]
    return Component(
        type=ComponentType.APPLICATION,
        bom_ref=f"efi:{entry.key}",
        name=entry.path,
        hashes=_sha(binary.sha256),
        properties=_props(*pairs),
        description="signed: " + (", ".join(binary.signers) if binary.signed else "no"),
    )


def render(inputs: SbomInputs) -> str:
    """The SBOM as JSON text (pure, reproducible)."""
    on_iso = {f.sha256: f.path for f in sorted(inputs.files, key=lambda f: f.path)}
    components = [
        Component(
            type=ComponentType.OPERATING_SYSTEM,
            bom_ref="base-iso",
            name=inputs.base_name,
            version=inputs.base_volume_id,
            description=inputs.base_disk_info,
            hashes=_sha(inputs.base_sha256),
            properties=_props((ROLE, "base-iso")),
        ),
        *_artifacts(inputs.lock, on_iso),
        *(
            Component(
                type=ComponentType.FILE,
                bom_ref=f"file:{f.path}",
                name=f.path,
                hashes=_sha(f.sha256),
                properties=_props((ISO_PATH, f.path), (ROLE, file_role(f.path))),
            )
            for f in inputs.files
        ),
        *(_efi(e) for e in inputs.efi),
    ]
    metadata = BomMetaData(
        component=Component(
            type=ComponentType.OPERATING_SYSTEM,
            bom_ref="appliance-iso",
            name=inputs.name,
            version=inputs.version,
            hashes=_sha(inputs.iso_sha256),
            properties=_props(
                ("isobuild:file", inputs.iso_file), ("isobuild:version", inputs.tool_version)
            ),
        ),
        timestamp=datetime.datetime.fromtimestamp(inputs.epoch, tz=datetime.UTC),
    )
    bom = Bom(
        components=components,
        metadata=metadata,
        serial_number=uuid.uuid5(NAMESPACE, f"{inputs.iso_file}:{inputs.iso_sha256}"),
    )
    # The ISO contains every component; the base ISO and artifacts have no graph of their own.
    assert metadata.component is not None
    bom.register_dependency(metadata.component, components)
    text = JsonV1Dot6(bom).output_as_string(indent=2)
    # Re-dumped with sorted keys: the library's key order is not part of its contract.
    return json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def validation_errors(text: str) -> str | None:
    """The official CycloneDX 1.6 JSON schema's complaint about ``text``, or None."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    return None if error is None else str(error)
