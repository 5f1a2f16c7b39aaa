"""The real target: the real Ubuntu ISO, remastered by us, installed unattended under KVM.

``make test-real BASE_ISO=ubuntu-24.04.x-live-server-amd64.iso ARTIFACTS=DIR|URL`` builds the
appliance ISO with the real pinned k3s/Flux files, boots it under QEMU/KVM (UEFI, OVMF) with a
blank qcow2 disk, waits for the installer to power off (``shutdown: poweroff``), then boots
the installed disk and hands it to the same suite as the stand-in. It needs the real ISO,
the real artifacts (or internet to fetch them) and a working KVM: without them it skips here
and fails in CI (``CI=true``), like a missing tool.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path

import pytest

from isobuild.boot.qemu import (
    Accel,
    Firmware,
    Guest,
    GuestSpec,
    MediaKind,
    Medium,
    detect_accel,
    ovmf_copy,
)
from isobuild.build import BaseIsoCheck, BuildOptions, BuildResult, Tools, build
from isobuild.cache_dir import default_cache_dir
from isobuild.config import BuildConfig, load_config
from isobuild.iso.gpgv import RealGpgv
from isobuild.iso.xorriso import RealXorriso
from isobuild.run import run
from tests.conftest import require_tool, unavailable
from tests.system import installer
from tests.system.machine import Machine
from tests.system.ssh_keys import KeyPair
from tests.system.target import BootedTarget, TargetKind, TargetSettings

DISK_SIZE = "64G"
DEFAULT_APP_URL = "https://alga.example.test"


def test_config(base: BuildConfig, login_key: KeyPair, password_hash: str) -> BuildConfig:
    """``base`` plus the runner's SSH key and a per-run password for the first user.

    The installed system has no root login; the suite logs in as that user and uses the
    password once, with sudo, to put its key into root's authorized_keys.
    """
    ai = base.autoinstall
    ssh = dataclasses.replace(ai.ssh, authorized_keys=(*ai.ssh.authorized_keys, login_key.public))
    identity = dataclasses.replace(ai.identity, password_hash=password_hash)
    return dataclasses.replace(
        base, autoinstall=dataclasses.replace(ai, ssh=ssh, identity=identity)
    )


def build_with_artifacts(
    config: BuildConfig,
    base_iso: Path,
    out: Path,
    artifacts: str | None,
    *,
    check: BaseIsoCheck | None = None,
) -> BuildResult:
    """Build with the real pinned artifacts: from ``artifacts`` (a mirror, with its own
    ``payload.lock.yaml`` if it has one) or, when None, from the publishers."""
    lock = None
    if artifacts and Path(artifacts, "payload.lock.yaml").is_file():
        lock = Path(artifacts, "payload.lock.yaml")
    return build(
        config,
        Tools(xorriso=RealXorriso(), gpgv=RealGpgv()),
        BuildOptions(
            base_iso=base_iso,
            output_dir=out,
            cache_dir=Path(os.environ.get("ISOBUILD_CACHE_DIR", default_cache_dir())),
            quiet=True,
            lock=lock,
            mirror=artifacts,
            check=check or BaseIsoCheck(),
        ),
    )


def base_iso_check() -> BaseIsoCheck:
    """The real ISO is verified before use when the runner says how (see the workflow)."""

    def path(name: str) -> Path | None:
        value = os.environ.get(name)
        return Path(value) if value else None

    return BaseIsoCheck(
        sha256=os.environ.get("ISOBUILD_BASE_ISO_SHA256") or None,
        sha256sums=path("ISOBUILD_BASE_ISO_SHA256SUMS"),
        signature=path("ISOBUILD_BASE_ISO_SHA256SUMS_GPG"),
        keyring=path("ISOBUILD_BASE_ISO_KEYRING"),
    )


def prepare(
    request: pytest.FixtureRequest, settings: TargetSettings, workdir: Path, key: KeyPair
) -> BootedTarget:
    """Build, install and return the (not yet booted) installed appliance."""
    if settings.base_iso is None:
        unavailable(
            "real target: no real Ubuntu ISO given (make test-real BASE_ISO=ubuntu-24.04.x-"
            "live-server-amd64.iso ARTIFACTS=DIR|URL); it cannot be downloaded on these machines"
        )
    assert settings.base_iso is not None
    require_tool("qemu-img", "qemu-utils")
    require_tool("qemu-system-x86_64", "qemu-system-x86")
    cache: Path = request.getfixturevalue("fixture_cache")
    accel = detect_accel(cache)
    if accel is not Accel.KVM:
        unavailable(
            "real target: KVM does not run guests on this machine (the probe boot hung or "
            "/dev/kvm is missing); an unattended Ubuntu install under TCG takes hours"
        )
    password = secrets.token_urlsafe(18)
    hashed = run(
        ["openssl", "passwd", "-6", "-stdin"], input=password.encode(), capture=True
    ).stdout.strip()
    config = test_config(load_config(settings.config), key, hashed)
    built = build_with_artifacts(
        config, settings.base_iso, workdir / "out", settings.artifacts, check=base_iso_check()
    )
    disk = workdir / "installed.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", disk, DISK_SIZE], capture=True)
    ovmf = ovmf_copy(workdir / "ovmf")
    installer_spec = GuestSpec(
        firmware=Firmware.UEFI,
        ovmf=ovmf,
        media=(
            Medium(path=built.iso, kind=MediaKind.CDROM),
            Medium(path=disk, kind=MediaKind.DISK, readonly=False, format="qcow2"),
        ),
        serial_log=workdir / "console-0-installer.log",
        memory_mb=max(settings.memory_mb, 4096),
        cpus=settings.cpus,
        accel=accel,
        network=True,
    )
    with Guest(installer_spec) as guest:
        # autoinstall `shutdown: poweroff`; -no-reboot also turns a reboot into an exit.
        guest.wait_exit(timeout=settings.install_timeout)
    installed_spec = dataclasses.replace(
        installer_spec,
        media=(Medium(path=disk, kind=MediaKind.DISK, readonly=False, format="qcow2"),),
    )
    machine = Machine(
        installed_spec,
        workdir=workdir,
        key=key,
        host_key=None,  # made by the installer
        http_port=config.appliance.host_service.port,
        boot_timeout=settings.boot_timeout,
        username=config.autoinstall.identity.username,
        sudo_password=password,
    )
    info = installer.iso_build_info(built.iso)
    return BootedTarget(
        kind=TargetKind.REAL,
        machine=machine,
        config=config,
        iso=built.iso,
        standin_artifacts=bool(info.get("standin")),
        accel=accel,
        registry_host=config.appliance.registry.host,
        app_url=os.environ.get("ISOBUILD_APP_URL", DEFAULT_APP_URL),
    )
