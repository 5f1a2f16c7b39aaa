"""An ISO built with the payload (stand-in base and artifacts, a site CA), read via pycdlib."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from isobuild.cli import main
from isobuild.installer.install_payload import MANIFEST
from isobuild.installer.payload import ISO_DIR, MEDIUM
from isobuild.iso.source import SourceIso
from isobuild.resources import DEFAULT_CONFIG
from tests.fixtures.registry import RegistryPki
from tests.fixtures.standin_artifacts import StandinArtifacts


@dataclass(frozen=True)
class BuiltIso:
    iso: Path
    cache: Path
    base: Path
    lock: Path
    config: Path  # the default config plus a site registry CA (relative path)
    site_ca: Path
    output: str
    build_manifest: dict[str, Any]
    extracted: Path  # the /appliance tree, copied out of the ISO


def extract_tree(iso: SourceIso, iso_dir: str, dest: Path) -> list[str]:
    """Copy every file under ``iso_dir`` to ``dest``; returns their ISO paths."""
    copied = []
    for entry in iso.list_dir(iso_dir):
        target = dest / entry.path.removeprefix(iso_dir).lstrip("/")
        if entry.is_dir:
            target.mkdir(parents=True, exist_ok=True)
            copied += extract_tree(iso, entry.path, target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(iso.read_bytes(entry.path))
            copied.append(entry.path)
    return copied


def site_config(directory: Path, ca: Path) -> Path:
    """The default config with ``appliance.registry.ca_bundle``, relative to the config."""
    (directory / "pki").mkdir(parents=True)
    shutil.copy(ca, directory / "pki" / "site-ca.pem")
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["appliance"]["registry"]["ca_bundle"] = "pki/site-ca.pem"
    config = directory / "appliance.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


@pytest.fixture(scope="module")
def built(
    standin_base_iso: Path,
    standin_artifacts_dir: StandinArtifacts,
    registry_pki: RegistryPki,
    tmp_path_factory: pytest.TempPathFactory,
) -> BuiltIso:
    work = tmp_path_factory.mktemp("payload-iso")
    config = site_config(work / "site", registry_pki.ca_path)
    result = CliRunner().invoke(
        main,
        [
            "build",
            "--base-iso", str(standin_base_iso),
            "--config", str(config),
            "--lock", str(standin_artifacts_dir.lock_path),
            "--mirror", str(standin_artifacts_dir.directory),
            "--output-dir", str(work / "out"),
            "--cache-dir", str(work / "cache"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    iso = work / "out" / "alga-appliance-0.1.0.iso"
    manifest = json.loads((work / "out" / "build-manifest.json").read_text())
    extracted = work / "appliance"
    with SourceIso(iso) as source:
        extract_tree(source, ISO_DIR, extracted)
    return BuiltIso(
        iso=iso,
        cache=work / "cache",
        base=standin_base_iso,
        lock=standin_artifacts_dir.lock_path,
        config=config,
        site_ca=config.parent / "pki" / "site-ca.pem",
        output=result.output,
        build_manifest=manifest,
        extracted=extracted,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_payload_file_on_the_iso_matches_the_payload_manifest(built: BuiltIso) -> None:
    document = json.loads((built.extracted / MANIFEST).read_text())
    listed = {entry["path"]: entry for entry in document["files"]}
    on_iso = {
        p.relative_to(built.extracted).as_posix() for p in built.extracted.rglob("*") if p.is_file()
    }

    assert on_iso == set(listed) | {MANIFEST}
    for rel, entry in listed.items():
        path = built.extracted / rel
        assert path.stat().st_size == entry["size"], rel
        assert sha256(path) == entry["sha256"], rel
    installs = {entry["install"] for entry in listed.values()}
    assert "/usr/local/bin/k3s" in installs
    assert "/etc/alga-appliance/build-info.json" in installs
    assert "/var/lib/rancher/k3s/agent/images/flux-controller-images-amd64.tar" in installs
    assert "/opt/alga-appliance/host_service/__init__.py" in installs
    assert "/usr/lib/systemd/system/appliance.target" in installs


def test_the_site_registry_ca_is_on_the_iso_in_the_manifest_and_in_build_info(
    built: BuiltIso,
) -> None:
    ca = built.site_ca.read_bytes()
    assert (built.extracted / "registry-ca.pem").read_bytes() == ca
    document = json.loads((built.extracted / MANIFEST).read_text())
    (entry,) = [e for e in document["files"] if e["path"] == "registry-ca.pem"]
    assert entry == {
        "path": "registry-ca.pem",
        "sha256": hashlib.sha256(ca).hexdigest(),
        "size": len(ca),
        "mode": "0644",
        "install": "/etc/alga-appliance/registry-ca.pem",
    }
    info_text = (built.extracted / "build-info.json").read_text()
    assert json.loads(info_text)["appliance"]["registry"]["ca_bundle"] == entry["install"]
    # Nothing of the builder's file system reaches the ISO's documents.
    assert str(built.site_ca.parent) not in info_text
    assert str(built.site_ca.parent) not in (built.extracted / MANIFEST).read_text()
    with SourceIso(built.iso) as source:
        md5sums = source.read_text("/md5sum.txt")
    assert f"{hashlib.md5(ca).hexdigest()}  ./appliance/registry-ca.pem" in md5sums.splitlines()


def test_the_payload_is_folded_into_the_build_manifest(built: BuiltIso) -> None:
    extra = built.build_manifest["extra"]
    document = json.loads((built.extracted / MANIFEST).read_text())

    assert extra["payload"]["manifest"] == document
    assert extra["payload"]["standin"] is True
    assert extra["standin_artifacts"] is True
    recorded = {f["path"]: f["sha256"] for f in built.build_manifest["files"]}
    for entry in document["files"]:
        assert recorded[f"{ISO_DIR}/{entry['path']}"] == entry["sha256"]
    assert recorded[f"{ISO_DIR}/{MANIFEST}"] == sha256(built.extracted / MANIFEST)


def test_a_standin_build_says_so(built: BuiltIso) -> None:
    assert "note: built with STAND-IN k3s/Flux artifacts: k3s cannot run on this ISO" in (
        built.output.splitlines()
    )
    info = json.loads((built.extracted / "build-info.json").read_text())
    assert info["standin"] is True
    assert info["build_id"] == built.build_manifest["extra"]["payload"]["build_id"]
    assert "STAND-IN" in (built.extracted / "README.txt").read_text()


def test_the_medium_checks_out_with_the_shipped_installer(built: BuiltIso) -> None:
    result = subprocess.run(
        [sys.executable, str(built.extracted / "install-payload"), "verify",
         "--medium", str(built.extracted)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "files verified" in result.stdout


def test_casper_md5_check_and_late_commands_cover_the_payload(built: BuiltIso) -> None:
    with SourceIso(built.iso) as source:
        md5sums = source.read_text("/md5sum.txt")
        autoinstall = yaml.safe_load(source.read_text("/autoinstall.yaml"))
    k3s_md5 = hashlib.md5((built.extracted / "k3s/k3s").read_bytes()).hexdigest()
    assert f"{k3s_md5}  ./appliance/k3s/k3s" in md5sums.splitlines()
    late = autoinstall["autoinstall"]["late-commands"]
    scripts = {arg for command in late for arg in command if arg.endswith("/install-payload")}
    assert scripts == {f"{MEDIUM}/install-payload"}
    assert MEDIUM.removeprefix("/cdrom") == ISO_DIR


def test_an_offline_rebuild_from_the_cache_is_byte_identical(
    built: BuiltIso, tmp_path: Path
) -> None:
    # The same config and CA from another directory: where they lie is not an input.
    site = shutil.copytree(built.config.parent, tmp_path / "elsewhere")
    result = CliRunner().invoke(
        main,
        [
            "build",
            "--base-iso", str(built.base),
            "--config", str(site / built.config.name),
            "--lock", str(built.lock),
            "--offline",
            "--output-dir", str(tmp_path / "out"),
            "--cache-dir", str(built.cache),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sha256(tmp_path / "out" / built.iso.name) == sha256(built.iso)
