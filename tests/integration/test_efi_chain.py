"""The build keeps the base's UEFI boot chain byte for byte, lists it, and fails loudly when
something touches it; an unsigned base chain is said on the build's output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pytest

from isobuild.build import BuildOptions, Tools, build
from isobuild.config import load_config
from isobuild.errors import VerificationError
from isobuild.iso.efi_inventory import changed_binaries, read_inventory
from isobuild.iso.gpgv import RealGpgv
from isobuild.iso.xorriso import IsoEdit, RealXorriso, Remaster, WriteResult
from tests.fixtures.appliance_iso import ApplianceBuild

if TYPE_CHECKING:
    from tests.fixtures.standin_artifacts import StandinArtifacts

ISOBUILD = [sys.executable, "-m", "isobuild.cli"]


def test_every_efi_binary_of_the_base_is_in_the_output_byte_for_byte(
    standin_base_iso: Path, appliance_iso: ApplianceBuild
) -> None:
    base = read_inventory(standin_base_iso)
    output = read_inventory(appliance_iso.iso)
    assert len(base.entries) >= 11  # 3 binaries x 3 places + 2 kernels
    assert changed_binaries(base.by_key(), output.by_key()) == []
    assert appliance_iso.result.warnings == ()


def test_the_manifest_lists_each_efi_binary_with_signers_and_sbat(
    appliance_iso: ApplianceBuild,
) -> None:
    manifest = json.loads(appliance_iso.result.manifest.read_text())
    listed = {f"{b['location']}:{b['path']}": b for b in manifest["efi_binaries"]}
    assert listed.keys() == read_inventory(appliance_iso.iso).by_key().keys()
    shim = listed["esp:/EFI/boot/bootx64.efi"]
    assert shim["signed"] is True
    assert [s["signer"] for s in shim["signatures"]] == [
        "Microsoft Windows UEFI Driver Publisher",
        "Microsoft UEFI CA 2023 signer",
    ]
    assert shim["signatures"][0]["issuer"] == "Microsoft Corporation UEFI CA 2011"
    assert "shim,4" in shim["sbat"]
    grub = listed["eltorito:/EFI/boot/grubx64.efi"]
    assert grub["signatures"][0]["signer"] == "Debian Secure Boot Signer 2022 - grub2"
    assert listed["iso9660:/casper/vmlinuz"]["signed"] is True


def test_inspect_json_lists_the_chain(appliance_iso: ApplianceBuild) -> None:
    done = subprocess.run([*ISOBUILD, "inspect", str(appliance_iso.iso), "--json"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    document = json.loads(done.stdout)
    manifest = json.loads(appliance_iso.result.manifest.read_text())
    assert document["efi_binaries"] == manifest["efi_binaries"]
    text = subprocess.run([*ISOBUILD, "inspect", str(appliance_iso.iso)],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "UEFI boot chain  (signed)" in text
    assert "esp:/EFI/boot/grubx64.efi" in text


def test_an_unsigned_base_chain_is_said_on_the_builds_output(
    unsigned_grub_iso: Path,
    standin_artifacts_dir: StandinArtifacts,
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [*ISOBUILD, "--quiet", "build", "--base-iso", str(unsigned_grub_iso), "--output-dir",
         str(tmp_path / "out"), "--lock", str(standin_artifacts_dir.lock_path), "--mirror",
         str(standin_artifacts_dir.directory), "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "warning: the base ISO's UEFI boot chain is not signed" in done.stderr
    assert "esp:/EFI/boot/grubx64.efi" in done.stderr
    assert "Secure Boot" in done.stderr
    manifest = json.loads((tmp_path / "out" / "build-manifest.json").read_text())
    grub = next(b for b in manifest["efi_binaries"] if b["path"] == "/EFI/boot/grubx64.efi")
    assert grub["signed"] is False


class ChainTouchingXorriso:
    """The real xorriso, plus one edit the build did not ask for: a file over /EFI."""

    def __init__(self, iso_path: str, replacement: Path) -> None:
        self.real = RealXorriso()
        self.edit = IsoEdit(iso_path=iso_path, local_path=replacement, mode=0o444)

    def version(self) -> str:
        return self.real.version()

    def report(self, iso: Path) -> str:
        return self.real.report(iso)

    def write(
        self, spec: Remaster, out: IO[bytes], progress: Callable[[float], None]
    ) -> WriteResult:
        touched = Remaster(
            base=spec.base, volume_id=spec.volume_id, joliet=spec.joliet,
            edits=(*spec.edits, self.edit), new_dirs=spec.new_dirs, epoch=spec.epoch,
        )  # fmt: skip
        return self.real.write(touched, out, progress)


@pytest.mark.parametrize("iso_path", ["/EFI/boot/grubx64.efi", "/casper/vmlinuz"])
def test_a_build_that_changes_an_efi_binary_fails_naming_it(
    standin_base_iso: Path,
    standin_artifacts_dir: StandinArtifacts,
    isobuild_cache: Path,
    tmp_path: Path,
    iso_path: str,
) -> None:
    replacement = tmp_path / "replacement.efi"
    replacement.write_bytes(b"MZ not the signed binary\n")
    options = BuildOptions(
        base_iso=standin_base_iso, output_dir=tmp_path / "out", cache_dir=isobuild_cache,
        quiet=True, lock=standin_artifacts_dir.lock_path,
        mirror=str(standin_artifacts_dir.directory),
    )  # fmt: skip
    xorriso = ChainTouchingXorriso(iso_path, replacement)
    with pytest.raises(VerificationError) as exc:
        build(load_config(None), Tools(xorriso=xorriso, gpgv=RealGpgv()), options)
    assert f"iso9660:{iso_path}: sha256 " in exc.value.message
    assert "in the base" in exc.value.message
    assert not (tmp_path / "out").exists()  # nothing partial
