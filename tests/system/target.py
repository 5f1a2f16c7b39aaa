"""Which installed system the suite runs against, and what the tests may know about it."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from isobuild.boot.qemu import Accel
from isobuild.config import BuildConfig
from tests.system.machine import Machine


class TargetKind(enum.StrEnum):
    STANDIN = "standin"  # debootstrapped Debian + our ISO's late-commands, here and in CI
    REAL = "real"  # the real Ubuntu ISO installed unattended under KVM


@dataclass(frozen=True, kw_only=True)
class TargetSettings:
    """From command-line options, else the environment (``make test-real`` sets these)."""

    kind: TargetKind
    base_iso: Path | None
    artifacts: str | None  # a mirror directory or URL with the real pinned files
    config: Path | None
    memory_mb: int
    cpus: int
    boot_timeout: float
    install_timeout: float
    evidence_dir: Path

    @classmethod
    def from_pytest(cls, config: pytest.Config, project_root: Path) -> TargetSettings:
        def option(name: str, env: str, default: str | None = None) -> str | None:
            value = config.getoption(name, default=None)
            return str(value) if value else os.environ.get(env) or default

        kind = TargetKind(option("--system-target", "ISOBUILD_SYSTEM_TARGET") or "standin")
        base_iso = option("--base-iso", "ISOBUILD_BASE_ISO")
        build_config = option("--appliance-config", "ISOBUILD_APPLIANCE_CONFIG")
        return cls(
            kind=kind,
            base_iso=Path(base_iso) if base_iso else None,
            artifacts=option("--artifacts", "ISOBUILD_ARTIFACTS"),
            config=Path(build_config) if build_config else None,
            # The host service's preflight wants 4 GiB of RAM and 20 GiB free disk (its
            # appliance thresholds, unchanged here), so the guest gets a little more.
            memory_mb=int(os.environ.get("ISOBUILD_SYSTEM_MEMORY_MB", "4608")),
            cpus=int(
                os.environ.get("ISOBUILD_SYSTEM_CPUS", "1" if kind is TargetKind.STANDIN else "2")
            ),
            boot_timeout=float(os.environ.get("ISOBUILD_SYSTEM_BOOT_TIMEOUT", "300")),
            install_timeout=float(os.environ.get("ISOBUILD_SYSTEM_INSTALL_TIMEOUT", "3600")),
            evidence_dir=_evidence_dir(config, project_root),
        )


def _evidence_dir(config: pytest.Config, project_root: Path) -> Path:
    """Next to the test report: beside --junitxml when given, else test-artifacts/system."""
    explicit = os.environ.get("ISOBUILD_TEST_ARTIFACTS")
    if explicit:
        return Path(explicit) / "system"
    junit = config.getoption("xmlpath", default=None)
    if junit:
        return Path(str(junit)).resolve().parent / "system-artifacts"
    return project_root / "test-artifacts" / "system"


@dataclass(frozen=True, kw_only=True)
class BootedTarget:
    """An installed appliance, booted and reachable; what the tests compare it against."""

    kind: TargetKind
    machine: Machine
    config: BuildConfig  # the build config its ISO was built with
    iso: Path
    standin_artifacts: bool  # the ISO carries stand-in k3s/Flux (the k3s step must block)
    accel: Accel
    registry_host: str  # what the appliance's preflight dials
    app_url: str  # what the tests submit in setup
    # The CA of the registry the suite serves (stand-in without a site config): built into
    # the ISO as appliance.registry.ca_bundle and nowhere else on the guest.
    suite_ca: Path | None = None

    @property
    def paths(self) -> dict[str, str]:
        p = self.config.appliance.paths
        return {"opt": p.opt, "etc": p.etc, "state": p.state}
