"""The rendered late-commands, run against a target root with the curtin stand-in."""

from __future__ import annotations

import grp
import hashlib
import json
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from host_service.settings import settings_from_document
from isobuild.config import BuildConfig, load_config
from isobuild.installer import autoinstall
from isobuild.installer.overlay import APPLIANCE_TARGET
from isobuild.installer.payload import MANIFEST, PayloadPlan, fetch_payload, plan_payload
from isobuild.resources import DEFAULT_CONFIG, OVERLAYS_DIR
from tests.conftest import require_root, require_tool
from tests.fixtures.curtin import InTarget, LateCommandFailed, LateCommands
from tests.fixtures.registry import RegistryPki
from tests.fixtures.standin_artifacts import StandinArtifacts

BUILD_ID = "0123456789abcdef"


def new_target(root: Path) -> Path:
    """An empty installed system as curtin leaves it before late-commands: base accounts."""
    for directory in ("etc", "boot", "usr/lib", "var/lib"):
        (root / directory).mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "etc/shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc/gshadow").write_text("root:*::\n")
    return root


def materialize(plan: PayloadPlan, dest: Path) -> Path:
    """The planned payload directory written to ``dest``, as the ISO's /appliance holds it."""
    for item in plan.files:
        target = dest / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item.source, target)
        target.chmod(item.mode)
    assert plan.manifest_file is not None
    shutil.copyfile(plan.manifest_file, dest / MANIFEST)
    return dest


def payload(
    config: BuildConfig,
    standins: StandinArtifacts,
    tmp_path: Path,
    overlays_dir: Path = OVERLAYS_DIR,
) -> tuple[PayloadPlan, Path]:
    fetched = fetch_payload(
        standins.lock, cache_dir=tmp_path / "cache", mirror=str(standins.directory)
    )
    plan = plan_payload(
        config, fetched, tmp_path / "work", build=BUILD_ID, overlays_dir=overlays_dir
    )
    cdrom = tmp_path / "cdrom"
    materialize(plan, cdrom / "appliance")
    return plan, cdrom


def rendered_late_commands(config: BuildConfig) -> list[list[str]]:
    body = autoinstall.render_autoinstall(config).body
    commands: list[list[str]] = body["late-commands"]
    return commands


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def owner(path: Path) -> tuple[int, int]:
    info = path.lstat()
    return info.st_uid, info.st_gid


def group_id(target: Path, name: str) -> int:
    for line in (target / "etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2])
    raise AssertionError(f"group {name} not in {target}/etc/group")


def is_enabled(target: Path, unit: str) -> str:
    out = subprocess.run(
        ["systemctl", f"--root={target}", "is-enabled", unit],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()


@pytest.fixture
def config() -> BuildConfig:
    return load_config(None)


@pytest.fixture(autouse=True)
def _tools() -> None:
    for tool in ("systemctl", "systemd-sysusers", "systemd-tmpfiles"):
        require_tool(tool, "systemd")
    require_root("installing a target root with owners (the installer is root)")


def test_late_commands_install_the_payload_into_the_target(
    config: BuildConfig,
    standin_artifacts_dir: StandinArtifacts,
    late_commands: Callable[..., LateCommands],
    tmp_path: Path,
) -> None:
    plan, cdrom = payload(config, standin_artifacts_dir, tmp_path)
    target = new_target(tmp_path / "target")
    commands = rendered_late_commands(config)

    results = late_commands(target, cdrom).run_all(commands)

    assert len(results) == len(commands)
    assert any("files verified" in r.stdout for r in results)
    assert "STAND-IN" in results[-1].stdout
    paths = config.appliance.paths
    opt, etc, state = (target / p.lstrip("/") for p in (paths.opt, paths.etc, paths.state))

    # Every installed file is the payload's, with its mode, owned by root.
    installed = [f for f in plan.files if f.install is not None]
    assert len(installed) > 20
    for item in installed:
        assert item.install is not None
        path = target / item.install.lstrip("/")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == item.sha256, item.install
        assert mode(path) == item.mode, item.install
        assert owner(path)[0] == 0, item.install
    # The fixed places of k3s and the layout docs/payload.md promises.
    k3s = target / "usr/local/bin/k3s"
    assert (mode(k3s), owner(k3s)) == (0o755, (0, 0))
    assert (
        k3s.read_bytes() == (standin_artifacts_dir.directory / "k3s/v1.36.3+k3s1/k3s").read_bytes()
    )
    images = target / "var/lib/rancher/k3s/agent/images"
    assert sorted(p.name for p in images.iterdir()) == [
        "flux-controller-images-amd64.tar",
        "k3s-airgap-images-amd64.tar.zst",
    ]
    assert mode(opt / "bin/flux") == 0o755
    assert (opt / "host_service/__init__.py").is_file()
    assert (opt / "flux/base/kustomization.yaml").is_file()
    assert (opt / "flux-install/install.yaml").is_file()
    kept = json.loads((opt / "payload-manifest.json").read_text())
    assert kept == plan.manifest
    # Nothing under <opt> is writable by anyone but root.
    for path in [opt, *opt.rglob("*")]:
        assert owner(path)[0] == 0
        assert not mode(path) & 0o022, path

    # sysusers made the group; tmpfiles set owners and modes of etc and state.
    gid = group_id(target, config.name)
    assert gid < 1000  # a system group
    assert (mode(etc), owner(etc)) == (0o750, (0, gid))
    info_file = etc / "build-info.json"
    assert (mode(info_file), owner(info_file)) == (0o640, (0, gid))
    assert (mode(state), owner(state)) == (0o700, (0, 0))
    info = json.loads(info_file.read_text())
    assert (info["name"], info["build_id"], info["standin"]) == (config.name, BUILD_ID, True)
    assert info["payload"]["k3s"]["binary"] == "/usr/local/bin/k3s"
    assert info["appliance"]["host_service"]["port"] == 8080
    # The host service's view of the same file.
    assert grp.getgrgid(0).gr_name == "root"

    # Every overlay unit with an [Install] section is enabled, via appliance.target.
    target_unit = (target / "usr/lib/systemd/system" / APPLIANCE_TARGET).read_text()
    also = next((line for line in target_unit.splitlines() if line.startswith("Also=")), "")
    units = [APPLIANCE_TARGET, *also.removeprefix("Also=").split()]
    for unit in units:
        assert is_enabled(target, unit) == "enabled", unit
    wants = target / "etc/systemd/system/multi-user.target.wants" / APPLIANCE_TARGET
    assert wants.is_symlink()
    assert str(wants.readlink()) == f"/usr/lib/systemd/system/{APPLIANCE_TARGET}"
    if (OVERLAYS_DIR / "etc/systemd/system/appliance-setup.service.j2").exists() or (
        OVERLAYS_DIR / "etc/systemd/system/appliance-setup.service"
    ).exists():
        assert "appliance-setup.service" in units

    # The marker GRUB looks for, written last.
    marker = target / "boot" / f"{config.name}-installed"
    assert f"build_id={BUILD_ID}" in marker.read_text()
    assert mode(marker) == 0o644


def test_units_with_an_install_section_are_enabled_and_others_not(
    config: BuildConfig,
    standin_artifacts_dir: StandinArtifacts,
    late_commands: Callable[..., LateCommands],
    tmp_path: Path,
) -> None:
    overlays = tmp_path / "overlays"
    shutil.copytree(OVERLAYS_DIR, overlays)
    units = overlays / "etc/systemd/system"
    units.mkdir(parents=True, exist_ok=True)
    (units / "demo.service.j2").write_text(
        "[Unit]\nDescription=demo for {{ name }}\n[Service]\nExecStart=/bin/true\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    (units / "demo-watch.path").write_text(
        "[Path]\nPathChanged=/etc/issue\n[Install]\nWantedBy=paths.target\n"
    )
    (units / "demo-helper.service").write_text("[Service]\nExecStart=/bin/true\n")
    _, cdrom = payload(config, standin_artifacts_dir, tmp_path, overlays)
    target = new_target(tmp_path / "target")

    late_commands(target, cdrom).run_all(rendered_late_commands(config))

    system = target / "etc/systemd/system"
    assert (
        (system / "demo.service")
        .read_text()
        .startswith(f"[Unit]\nDescription=demo for {config.name}")
    )
    assert is_enabled(target, "demo.service") == "enabled"
    assert is_enabled(target, "demo-watch.path") == "enabled"
    assert (system / "paths.target.wants/demo-watch.path").is_symlink()
    assert is_enabled(target, "demo-helper.service") == "static"


def test_a_damaged_medium_stops_the_install_before_anything_is_written(
    config: BuildConfig,
    standin_artifacts_dir: StandinArtifacts,
    late_commands: Callable[..., LateCommands],
    tmp_path: Path,
) -> None:
    _, cdrom = payload(config, standin_artifacts_dir, tmp_path)
    binary = cdrom / "appliance/k3s/k3s"
    data = bytearray(binary.read_bytes())
    data[100] ^= 0x20
    binary.chmod(0o644)
    binary.write_bytes(bytes(data))
    target = new_target(tmp_path / "target")

    with pytest.raises(LateCommandFailed) as caught:
        late_commands(target, cdrom).run_all(rendered_late_commands(config))

    assert caught.value.index == 0
    assert "k3s/k3s: sha256" in caught.value.result.stderr
    assert not (target / "usr/local/bin/k3s").exists()
    assert not (target / "boot" / f"{config.name}-installed").exists()


def test_install_refuses_bytes_that_change_under_it(
    config: BuildConfig,
    standin_artifacts_dir: StandinArtifacts,
    late_commands: Callable[..., LateCommands],
    tmp_path: Path,
) -> None:
    """Skip the verify command: the copy itself checks every byte (a flaky medium)."""
    _, cdrom = payload(config, standin_artifacts_dir, tmp_path)
    install_yaml = cdrom / "appliance/opt/flux-install/install.yaml"
    install_yaml.chmod(0o644)
    install_yaml.write_text(install_yaml.read_text() + "# changed\n")
    target = new_target(tmp_path / "target")
    commands = rendered_late_commands(config)
    install = next(c for c in commands if "install" in c and "--target" in c)

    with pytest.raises(LateCommandFailed) as caught:
        late_commands(target, cdrom).run_all([install])

    assert "install.yaml: sha256" in caught.value.result.stderr
    leftovers = [p for p in (target / "opt").rglob("*") if p.name.startswith(".install.yaml")]
    assert leftovers == []
    assert not (target / "opt/alga-appliance/flux-install/install.yaml").exists()


def test_in_target_chroots_into_a_root_that_has_the_program(tmp_path: Path) -> None:
    busybox = require_tool("busybox", "busybox-static")
    target = tmp_path / "rootfs"
    (target / "bin").mkdir(parents=True)
    shutil.copy(busybox, target / "bin/busybox")
    (target / "bin/sh").symlink_to("busybox")
    runner = InTarget(target)

    assert runner.chosen_mode(["sh"]) == "chroot"
    result = runner.run(["sh", "-c", "echo inside > /where; /bin/busybox ls /"])

    assert result.returncode == 0, result.stderr
    assert (target / "where").read_text() == "inside\n"
    assert "where" in result.stdout.split()


def test_in_target_prefixes_what_it_cannot_chroot(tmp_path: Path) -> None:
    runner = InTarget(tmp_path)
    assert runner.argv(["systemctl", "enable", "x.service"]) == [
        "systemctl",
        f"--root={tmp_path}",
        "enable",
        "x.service",
    ]
    with pytest.raises(ValueError, match="apt-get cannot act on"):
        runner.argv(["apt-get", "install", "x"])


def test_the_site_registry_ca_is_installed_and_named_in_build_info(
    standin_artifacts_dir: StandinArtifacts,
    late_commands: Callable[..., LateCommands],
    registry_pki: RegistryPki,
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(registry_pki.ca_path, site / "site-ca.pem")
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["appliance"]["registry"]["ca_bundle"] = "site-ca.pem"
    (site / "appliance.yaml").write_text(yaml.safe_dump(data))
    config = load_config(site / "appliance.yaml")
    plan, cdrom = payload(config, standin_artifacts_dir, tmp_path)
    target = new_target(tmp_path / "target")

    late_commands(target, cdrom).run_all(rendered_late_commands(config))

    etc = target / config.appliance.paths.etc.lstrip("/")
    installed = etc / "registry-ca.pem"
    assert installed.read_bytes() == registry_pki.ca_path.read_bytes()
    assert (mode(installed), owner(installed)) == (0o644, (0, 0))
    (entry,) = [f for f in plan.files if f.path == "registry-ca.pem"]
    assert entry.install == f"{config.appliance.paths.etc}/registry-ca.pem"
    assert entry.sha256 == hashlib.sha256(registry_pki.ca_path.read_bytes()).hexdigest()
    info = json.loads((etc / "build-info.json").read_text())
    assert info["appliance"]["registry"]["ca_bundle"] == entry.install
    # The host service reads that path (under --root) as its CA bundle.
    settings = settings_from_document(info, root=target, source="build-info.json")
    assert settings.registry.ca_bundle == installed

    # tmpfiles.d puts a loosened mode back at every boot, as for build-info.json.
    installed.chmod(0o600)
    again = InTarget(target).run(["systemd-tmpfiles", "--create", "appliance.conf"])
    assert again.returncode == 0, again.stderr
    assert mode(installed) == 0o644
