"""The CycloneDX SBOM: valid against the official 1.6 schema, complete, reproducible."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from isobuild.artifacts.lockfile import load_lock
from isobuild.iso.efi_binary import read_efi_binary
from isobuild.iso.efi_inventory import EfiEntry
from isobuild.release import sbom
from tests.conftest import PROJECT_ROOT, TESTS_DIR

EFI = TESTS_DIR / "data" / "efi"


@pytest.fixture
def inputs() -> sbom.SbomInputs:
    signed = read_efi_binary((EFI / "signed.efi").read_bytes())
    unsigned = read_efi_binary((EFI / "unsigned.efi").read_bytes())
    return sbom.SbomInputs(
        name="alga-appliance", version="0.1.0", iso_file="alga-appliance-0.1.0.iso",
        iso_sha256="a" * 64, epoch=1754438047, tool_version="0.1.0",
        base_name="ubuntu-24.04.3-live-server-amd64.iso", base_sha256="b" * 64,
        base_volume_id="Ubuntu-Server 24.04.3 LTS amd64", base_disk_info="Ubuntu-Server 24.04.3",
        lock=load_lock(PROJECT_ROOT / "payload.lock.yaml"),
        files=[
            sbom.IsoFileRecord(path="/autoinstall.yaml", sha256="1" * 64, size=10),
            sbom.IsoFileRecord(path="/appliance/k3s/k3s", sha256=(
                "2f98a9f8fe5782479ee2d54e70a1b10a7f6fd4cae8d38ed3098452dc6eed76b5"), size=10),
            sbom.IsoFileRecord(path="/appliance/opt/host_service/app.py", sha256="3" * 64, size=1),
        ],
        efi=[
            EfiEntry(location="esp", path="/EFI/boot/bootx64.efi", binary=signed),
            EfiEntry(location="iso9660", path="/EFI/boot/grubx64.efi", binary=unsigned),
        ],
    )  # fmt: skip


def _components(text: str) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in json.loads(text)["components"]}


def _props(component: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["name"], p["value"]) for p in component.get("properties", [])]


def test_valid_against_the_official_cyclonedx_1_6_schema(inputs: sbom.SbomInputs) -> None:
    text = sbom.render(inputs)
    assert sbom.validation_errors(text) is None
    document = json.loads(text)
    assert document["specVersion"] == "1.6"
    assert document["metadata"]["timestamp"] == "2025-08-05T23:54:07+00:00"
    broken = json.dumps({**document, "components": [{"type": "nonsense", "name": "x"}]})
    assert sbom.validation_errors(broken) is not None


def test_same_inputs_same_bytes_and_the_serial_follows_the_iso(inputs: sbom.SbomInputs) -> None:
    first = sbom.render(inputs)
    assert sbom.render(inputs) == first
    other = sbom.render(dataclasses.replace(inputs, iso_sha256="c" * 64))
    assert json.loads(other)["serialNumber"] != json.loads(first)["serialNumber"]


def test_every_pinned_artifact_and_image_with_digest_and_purl(inputs: sbom.SbomInputs) -> None:
    components = _components(sbom.render(inputs))
    k3s = components["artifact:k3s:binary"]
    assert k3s["hashes"] == [{"alg": "SHA-256", "content": inputs.lock.k3s.files["binary"].sha256}]
    assert k3s["purl"].startswith("pkg:generic/k3s/k3s@v1.36.3%2Bk3s1?checksum=sha256:")
    # The pinned file is on the ISO as is: the SBOM says where.
    assert (sbom.ISO_PATH, "/appliance/k3s/k3s") in _props(k3s)
    assert {"artifact:k3s:airgap_images", "artifact:flux:cli",
            "artifact:flux:install_manifest"} <= components.keys()  # fmt: skip
    for image in inputs.lock.images:
        component = components[f"image:{image.repository}"]
        assert component["type"] == "container"
        assert component["purl"].startswith(f"pkg:oci/{image.name}@{image.digest}?")
        assert f"repository_url={image.repository}" in component["purl"]
        assert component["hashes"][0]["content"] == image.digest.removeprefix("sha256:")


def test_files_base_and_efi_binaries_with_roles_and_signers(inputs: sbom.SbomInputs) -> None:
    text = sbom.render(inputs)
    components = _components(text)
    assert (sbom.ROLE, "autoinstall") in _props(components["file:/autoinstall.yaml"])
    host = components["file:/appliance/opt/host_service/app.py"]
    assert (sbom.ROLE, "host-service") in _props(host)
    base = components["base-iso"]
    assert base["type"] == "operating-system"
    assert base["hashes"][0]["content"] == "b" * 64
    shim = components["efi:esp:/EFI/boot/bootx64.efi"]
    assert (sbom.SIGNER, "isobuild test signer") in _props(shim)
    assert (sbom.SBAT, "isobuild-test,2") in _props(shim)
    assert (sbom.ISO_PATH, "/EFI/boot/bootx64.efi") not in _props(shim)  # in the ESP only
    grub = components["efi:iso9660:/EFI/boot/grubx64.efi"]
    assert not [p for p in _props(grub) if p[0] == sbom.SIGNER]
    root = json.loads(text)["metadata"]["component"]
    assert root["hashes"][0]["content"] == "a" * 64
    (dependency,) = [d for d in json.loads(text)["dependencies"] if d["ref"] == "appliance-iso"]
    assert len(dependency["dependsOn"]) == len(components)
