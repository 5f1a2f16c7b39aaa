"""The same checks on a build from the real Ubuntu ISO, where one is available.

Set ISOBUILD_REAL_ISO=/path/to/ubuntu-24.04.x-live-server-amd64.iso (and optionally
ISOBUILD_REAL_SHA256) to run them; these machines cannot download it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from isobuild.build import BaseIsoCheck
from isobuild.installer.autoinstall import ROOT_FILE, USER_DATA
from isobuild.iso.grub import AUTOINSTALL_ARGS, installer_entries
from isobuild.iso.source import SourceIso
from tests.fixtures.appliance_iso import ApplianceBuild, build_appliance
from tests.integration import iso_checks

if TYPE_CHECKING:
    from tests.fixtures.standin_artifacts import StandinArtifacts

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def real_iso() -> Path:
    path = os.environ.get("ISOBUILD_REAL_ISO")
    if not path:
        pytest.skip("ISOBUILD_REAL_ISO is not set (the real Ubuntu ISO is not available here)")
    return Path(path)


@pytest.fixture(scope="module")
def real_build(
    real_iso: Path,
    standin_artifacts_dir: StandinArtifacts,
    isobuild_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> ApplianceBuild:
    sha256 = os.environ.get("ISOBUILD_REAL_SHA256")
    return build_appliance(
        real_iso, tmp_path_factory.mktemp("real-out"), standin_artifacts_dir, isobuild_cache,
        check=BaseIsoCheck(sha256=sha256),
    )  # fmt: skip


def test_real_base_and_output_pass_the_same_checks(
    real_iso: Path, real_build: ApplianceBuild
) -> None:
    for iso in (real_iso, real_build.iso):
        facts = iso_checks.reopen(iso)
        assert "24.04" in facts.disk_info
        records, images = iso_checks.boot_records(iso)
        assert records.missing() == []
        assert {i.platform for i in images} == {"BIOS", "UEFI"}
        assert iso_checks.md5_mismatches(iso) == []
    assert iso_checks.esp_bytes(real_build.iso) == iso_checks.esp_bytes(real_iso)


def test_real_output_has_autoinstall_on_every_installer_entry(real_build: ApplianceBuild) -> None:
    with SourceIso(real_build.iso) as iso:
        assert iso.exists(ROOT_FILE)
        assert iso.read_text(USER_DATA).startswith("#cloud-config\n")
        menus = [iso.read_text("/boot/grub/grub.cfg"), iso.read_text("/boot/grub/loopback.cfg")]
    for cfg in menus:
        entries = installer_entries(cfg)
        assert len(entries) >= 2  # the generic and the HWE kernel
        for entry in entries:
            assert all(arg in (entry.args or "").split() for arg in AUTOINSTALL_ARGS)
