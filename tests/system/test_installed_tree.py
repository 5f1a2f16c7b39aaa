"""What the late-commands left on the installed system: paths, modes, owners, payload bytes."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
import testinfra.host

from isobuild.iso.source import SourceIso
from tests.system.target import BootedTarget

K3S_BINARY = "/usr/local/bin/k3s"
K3S_IMAGES = "/var/lib/rancher/k3s/agent/images"


@pytest.fixture(scope="module")
def iso_manifest(appliance_target: BootedTarget) -> tuple[bytes, dict[str, Any]]:
    """``payload-manifest.json`` as it is on the ISO the target was installed from."""
    with SourceIso(appliance_target.iso) as iso:
        raw = iso.read_bytes("/appliance/payload-manifest.json")
    return raw, json.loads(raw)


def _stat(host: testinfra.host.Host, path: str) -> tuple[str, str, str]:
    f = host.file(path)
    assert f.exists, f"{path} is missing"
    return f"{f.mode:04o}", f.user, f.group


def test_appliance_directories(host: testinfra.host.Host, appliance_target: BootedTarget) -> None:
    paths = appliance_target.paths
    name = appliance_target.config.name
    assert host.file(paths["opt"]).is_directory
    assert _stat(host, paths["opt"]) == ("0755", "root", "root")
    assert _stat(host, paths["etc"]) == ("0750", "root", name)
    assert _stat(host, f"{paths['etc']}/build-info.json") == ("0640", "root", name)
    assert _stat(host, paths["state"]) == ("0700", "root", "root")


def test_opt_is_read_only_for_everyone_but_root(
    host: testinfra.host.Host, appliance_target: BootedTarget
) -> None:
    opt = shlex.quote(appliance_target.paths["opt"])
    # Anything under <opt> that is not root's, or that group/others may write, is a defect.
    found = host.check_output(f"find {opt} \\( ! -user root -o -perm /022 \\) -printf '%p\\n'")
    assert found == ""


def test_k3s_binary_and_image_archives(
    host: testinfra.host.Host, iso_manifest: tuple[bytes, dict[str, Any]]
) -> None:
    assert _stat(host, K3S_BINARY) == ("0755", "root", "root")
    assert _stat(host, K3S_IMAGES) == ("0755", "root", "root")
    _, manifest = iso_manifest
    archives = sorted(
        f["install"] for f in manifest["files"] if str(f.get("install", "")).startswith(K3S_IMAGES)
    )
    assert len(archives) >= 2, "expected the k3s airgap images and the Flux controller images"
    assert any("airgap" in a for a in archives)
    assert any("flux" in a for a in archives)
    for archive in archives:
        assert _stat(host, archive) == ("0644", "root", "root")


def test_installed_files_match_the_payload_manifest(
    host: testinfra.host.Host,
    appliance_target: BootedTarget,
    iso_manifest: tuple[bytes, dict[str, Any]],
) -> None:
    raw, manifest = iso_manifest
    # The installed copy of the manifest is the ISO's, byte for byte.
    kept = host.file(manifest["manifest_install"])
    assert kept.content == raw
    installed = [f for f in manifest["files"] if f.get("install")]
    assert installed, "the payload manifest installs nothing"
    paths = " ".join(shlex.quote(f["install"]) for f in installed)
    sums = dict(
        reversed(line.split(None, 1))
        for line in host.check_output(f"sha256sum {paths}").splitlines()
    )
    modes = dict(
        reversed(line.split(" ", 1))
        for line in host.check_output(f"stat -c '%a %n' {paths}").splitlines()
    )
    wrong = []
    for entry in installed:
        path = entry["install"]
        if sums.get(path) != entry["sha256"]:
            wrong.append(f"{path}: sha256 {sums.get(path)} != manifest {entry['sha256']}")
        if int(modes[path], 8) != int(str(entry["mode"]), 8):
            wrong.append(f"{path}: mode {modes[path]} != manifest {entry['mode']}")
    assert wrong == []


def test_build_info_is_the_isos(host: testinfra.host.Host, appliance_target: BootedTarget) -> None:
    with SourceIso(appliance_target.iso) as iso:
        on_iso = iso.read_bytes("/appliance/build-info.json")
    installed = host.file(f"{appliance_target.paths['etc']}/build-info.json").content
    assert installed == on_iso
    info = json.loads(installed)
    assert info["name"] == appliance_target.config.name
    assert info["appliance"]["registry"]["host"] == appliance_target.registry_host
    assert info["standin"] is appliance_target.standin_artifacts


def test_installed_marker_written_last(
    host: testinfra.host.Host, appliance_target: BootedTarget, build_info: dict[str, Any]
) -> None:
    marker = host.file(f"/boot/{appliance_target.config.name}-installed")
    assert marker.exists
    assert marker.user == "root"
    assert build_info["build_id"] in marker.content_string


def test_identity_from_the_autoinstall(
    host: testinfra.host.Host, appliance_target: BootedTarget
) -> None:
    identity = appliance_target.config.autoinstall.identity
    assert host.check_output("hostname") == identity.hostname
    assert host.user(identity.username).exists
