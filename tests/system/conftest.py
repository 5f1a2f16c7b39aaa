"""The installed-system suite's fixtures: one booted appliance per session, testinfra's ``host``.

``appliance_target`` builds and boots the target the options name (stand-in by default),
``host`` is testinfra's host over paramiko, and ``bootstrap_run`` drives the setup flow once
(login, setup, bootstrap to its end or blocker, reboot, look again). Tests that use
``bootstrap_run`` run after the read-only checks. On any failure the consoles, journals and
host-service state are saved (see ``tests/system/evidence.py``) before the VM stops.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import testinfra
import testinfra.host

from isobuild.boot.qemu import Accel
from isobuild.config import load_config
from tests.conftest import PROJECT_ROOT, require_root, require_tool
from tests.fixtures.appliance_iso import build_appliance
from tests.system import evidence, installer, real_target, rootfs, standin_target
from tests.system.bootstrap_flow import BootstrapRun, run_bootstrap
from tests.system.guest_registry import RegistryProcess
from tests.system.machine import BootRecord, Machine
from tests.system.ssh_keys import KeyPair
from tests.system.target import BootedTarget, TargetKind, TargetSettings

log = logging.getLogger(__name__)

SYSTEM_DIR = Path(__file__).resolve().parent
FAILED = pytest.StashKey[list[str]]()
APP_URL = "https://alga.example.test"
# The stand-in stops at k3s within seconds of setup; real k3s, Flux and a release take long.
BOOTSTRAP_TIMEOUT = {TargetKind.STANDIN: 600.0, TargetKind.REAL: 3600.0}


def _in_suite(item: pytest.Item) -> bool:
    return SYSTEM_DIR in Path(str(item.fspath)).resolve().parents


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Read-only checks first; the bootstrap (setup, reboot) changes the machine.
    positions = [i for i, item in enumerate(items) if _in_suite(item)]
    ordered = sorted(
        (items[i] for i in positions),
        key=lambda item: "bootstrap_run" in getattr(item, "fixturenames", ()),
    )
    for position, item in zip(positions, ordered, strict=True):
        items[position] = item


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and _in_suite(item):
        item.session.stash.setdefault(FAILED, []).append(item.nodeid)
    return report


@pytest.fixture(scope="session")
def target_settings(request: pytest.FixtureRequest) -> TargetSettings:
    return TargetSettings.from_pytest(request.config, PROJECT_ROOT)


@pytest.fixture(scope="session")
def system_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("system")


@pytest.fixture(scope="session")
def login_key(system_workdir: Path) -> KeyPair:
    """The runner's SSH key for root on the guest, made for this session only."""
    return KeyPair.generate(system_workdir / "ssh" / "id_ed25519", "isobuild-system-suite")


def _standin(
    request: pytest.FixtureRequest, settings: TargetSettings, workdir: Path, key: KeyPair
) -> BootedTarget:
    # debootstrap, chroot and root-owned files in the disk image need root.
    require_root("the stand-in target is built as root (debootstrap, chroot, file owners)")
    for tool, package in (
        ("debootstrap", "debootstrap"),
        ("mkfs.ext4", "e2fsprogs"),
        ("chroot", "coreutils"),
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("docker-registry", "docker-registry"),
    ):
        require_tool(tool, package)
    cache: Path = request.getfixturevalue("fixture_cache")
    base = rootfs.ensure_base_rootfs(cache, rootfs.RootfsSpec.from_environment())
    suite_ca: Path | None = None
    if settings.config is not None:
        # A site config names its own release registry (e.g. ghcr.io with a real release).
        config = load_config(settings.config)
    else:
        registry_process = RegistryProcess(workdir / "registry")
        registry = registry_process.start()
        request.addfinalizer(registry_process.stop)
        suite_ca = registry.ca_pem
        config = standin_target.suite_config(
            workdir, registry_host=registry.guest_host, site_ca=suite_ca
        )
    started = time.monotonic()
    base_iso: Path = request.getfixturevalue("standin_base_iso")
    if settings.artifacts:
        # Real k3s/Flux on the stand-in system: the bootstrap runs on past the k3s step.
        iso = real_target.build_with_artifacts(
            config, base_iso, workdir / "out", settings.artifacts
        ).iso
    else:
        iso = build_appliance(
            base_iso,
            workdir / "out",
            request.getfixturevalue("standin_artifacts_dir"),
            request.getfixturevalue("isobuild_cache"),
            config=config,
        ).iso
    iso_seconds = time.monotonic() - started
    installed = standin_target.install(iso=iso, base=base, workdir=workdir, login_key=key)
    accel: Accel = request.getfixturevalue("qemu_accel")
    machine = standin_target.machine(
        installed,
        workdir=workdir,
        login_key=key,
        http_port=config.appliance.host_service.port,
        accel=accel,
        memory_mb=settings.memory_mb,
        cpus=settings.cpus,
        boot_timeout=settings.boot_timeout,
    )
    timings = {
        "rootfs_build": base.build_seconds or 0.0,
        "build_iso": iso_seconds,
        **installed.timings,
    }
    request.config.stash[TIMINGS] = timings
    return BootedTarget(
        kind=TargetKind.STANDIN,
        machine=machine,
        config=config,
        iso=iso,
        standin_artifacts=bool(installer.iso_build_info(iso).get("standin")),
        accel=accel,
        registry_host=config.appliance.registry.host,
        app_url=APP_URL,
        suite_ca=suite_ca,
    )


TIMINGS = pytest.StashKey[dict[str, float]]()


@pytest.fixture(scope="session")
def appliance_target(
    request: pytest.FixtureRequest,
    target_settings: TargetSettings,
    system_workdir: Path,
    login_key: KeyPair,
) -> Iterator[BootedTarget]:
    """The installed appliance, booted, SSH up and systemd done starting (session)."""
    if target_settings.kind is TargetKind.REAL:
        target = real_target.prepare(request, target_settings, system_workdir, login_key)
    else:
        target = _standin(request, target_settings, system_workdir, login_key)
    machine = target.machine
    try:
        machine.boot("installed")
    except BaseException as exc:
        _save_evidence(request, target_settings, machine, target, why=f"boot failed: {exc}")
        machine.stop()
        raise
    request.config.stash[BOOTS] = machine.boots
    yield target
    failed = request.session.stash.get(FAILED, [])
    if failed:
        _save_evidence(request, target_settings, machine, target, why="\n".join(failed))
    machine.stop()
    # The evidence is saved; the disk (GBs once written to) is not worth keeping in /tmp.
    for medium in machine.spec.media:
        if not medium.readonly:
            medium.path.unlink(missing_ok=True)


BOOTS = pytest.StashKey[list[BootRecord]]()


def _save_evidence(
    request: pytest.FixtureRequest,
    settings: TargetSettings,
    machine: Machine,
    target: BootedTarget,
    *,
    why: str,
) -> None:
    known: list[str] = request.config.stash.get(SECRETS, [])
    secrets = tuple(known)
    saved = evidence.collect(
        machine, settings.evidence_dir, state_dir=target.paths["state"], secrets=secrets, why=why
    )
    request.config.stash[EVIDENCE] = saved


SECRETS = pytest.StashKey[list[str]]()
EVIDENCE = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def host(appliance_target: BootedTarget) -> testinfra.host.Host:
    """testinfra's host (paramiko) for root on the booted appliance; overrides the plugin's."""
    machine = appliance_target.machine
    # Machine.boot() already pinned the host key on this port (stand-in) before we get here.
    ssh_config = machine.workdir / "ssh_config"
    ssh_config.write_text("Host 127.0.0.1\n    StrictHostKeyChecking no\n")
    return testinfra.get_host(
        f"paramiko://root@127.0.0.1:{machine.ssh_port}",
        ssh_identity_file=str(machine.key.private_file),
        ssh_config=str(ssh_config),
        timeout=30,
    )


def reconnect(host: testinfra.host.Host) -> None:
    """Drop testinfra's cached SSH client (after a reboot the old connection is dead)."""
    with contextlib.suppress(AttributeError):
        del host.backend.client


@pytest.fixture(scope="session")
def build_info(host: testinfra.host.Host, appliance_target: BootedTarget) -> dict[str, Any]:
    """``build-info.json`` as installed on the appliance."""
    path = f"{appliance_target.paths['etc']}/build-info.json"
    document: dict[str, Any] = json.loads(host.file(path).content_string)
    return document


@pytest.fixture(scope="session")
def setup_token(
    request: pytest.FixtureRequest, host: testinfra.host.Host, appliance_target: BootedTarget
) -> str:
    """The setup token, read over SSH as a technician reads it off the console."""
    token = str(host.file(f"{appliance_target.paths['state']}/setup-token").content_string).strip()
    request.config.stash.setdefault(SECRETS, []).append(token)
    return token


@pytest.fixture(scope="session")
def bootstrap_run(
    appliance_target: BootedTarget, host: testinfra.host.Host, setup_token: str
) -> BootstrapRun:
    """Log in with the token, submit setup, follow the bootstrap to its end, reboot, look again."""
    run = run_bootstrap(
        appliance_target.machine,
        token=setup_token,
        app_url=appliance_target.app_url,
        timeout=BOOTSTRAP_TIMEOUT[appliance_target.kind],
        after_reboot=lambda: reconnect(host),
    )
    run.issue_after_reboot = host.file("/etc/issue").content_string
    return run


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    boots = config.stash.get(BOOTS, [])
    timings = config.stash.get(TIMINGS, {})
    saved = config.stash.get(EVIDENCE, None)
    if not boots and not saved:
        return
    write = terminalreporter.write_line
    terminalreporter.section("installed-system suite")
    if timings:
        write("install: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    for boot in boots:
        write(
            f"boot {boot.label}: SSH after {boot.seconds_to_ssh:.1f} s, systemd "
            f"{boot.system_state} after {boot.seconds_to_ready:.1f} s"
        )
    if saved:
        write(f"failure evidence (console, journal, service state): {saved}")
