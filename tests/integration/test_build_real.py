"""The same checks on a build from the real Ubuntu ISO, where one is available.

They take the real target's inputs: ``make test-real BASE_ISO=ubuntu-24.04.x-live-server-
amd64.iso`` (or ``--base-iso`` / ``ISOBUILD_BASE_ISO``; the ISO is verified first when
``ISOBUILD_BASE_ISO_SHA256`` or the signed SHA256SUMS variables are set). Without the ISO
they skip; when the real target is asked for (``--system-target real`` /
``ISOBUILD_SYSTEM_TARGET=real``) a missing ISO skips here and fails in CI (``CI=true``), like
every real-target check. These machines cannot download it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from isobuild.iso.grub import AUTOINSTALL_ARGS, installer_entries
from isobuild.iso.seed import ROOT_FILE, USER_DATA
from isobuild.iso.source import SourceIso
from tests.conftest import PROJECT_ROOT, unavailable
from tests.fixtures.appliance_iso import ApplianceBuild, build_appliance
from tests.integration import iso_checks
from tests.system.real_target import base_iso_check
from tests.system.target import TargetKind, TargetSettings

if TYPE_CHECKING:
    from tests.fixtures.standin_artifacts import StandinArtifacts

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def real_iso(request: pytest.FixtureRequest) -> Path:
    settings = TargetSettings.from_pytest(request.config, PROJECT_ROOT)
    if settings.base_iso is None:
        message = (
            "the real Ubuntu ISO is not given (make test-real BASE_ISO=ubuntu-24.04.x-live-"
            "server-amd64.iso, or --base-iso); it cannot be downloaded on these machines"
        )
        if settings.kind is TargetKind.REAL:
            unavailable(message)  # asked for the real target: a missing ISO fails in CI
        pytest.skip(message)
    if not settings.base_iso.is_file():
        unavailable(f"{settings.base_iso}: the real Ubuntu ISO given is not a file")
    return settings.base_iso


@pytest.fixture(scope="module")
def real_build(
    real_iso: Path,
    standin_artifacts_dir: StandinArtifacts,
    isobuild_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> ApplianceBuild:
    return build_appliance(
        real_iso, tmp_path_factory.mktemp("real-out"), standin_artifacts_dir, isobuild_cache,
        check=base_iso_check(),
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
