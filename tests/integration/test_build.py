"""Real builds from the stand-in base ISO: the same checks pass on input and output."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from isobuild.errors import ExitCode
from isobuild.installer.autoinstall import META_DATA, ROOT_FILE, USER_DATA, render_autoinstall
from isobuild.iso.grub import AUTOINSTALL_ARGS, installer_entries
from isobuild.iso.source import SourceIso
from tests.fixtures.appliance_iso import ApplianceBuild, build_appliance
from tests.integration import iso_checks

if TYPE_CHECKING:
    from tests.fixtures.standin_artifacts import StandinArtifacts

ISOBUILD = [sys.executable, "-m", "isobuild.cli"]


@pytest.fixture(params=["base", "output"])
def either_iso(
    request: pytest.FixtureRequest, standin_base_iso: Path, appliance_iso: ApplianceBuild
) -> Path:
    return standin_base_iso if request.param == "base" else appliance_iso.iso


def test_pycdlib_reopens_it_as_a_24_04_live_server_image(either_iso: Path) -> None:
    facts = iso_checks.reopen(either_iso)
    assert "Ubuntu-Server 24.04.3 LTS" in facts.disk_info
    assert facts.has_joliet


def test_boot_records_are_complete(either_iso: Path) -> None:
    records, images = iso_checks.boot_records(either_iso)
    assert records.missing() == []
    assert [(i.platform, i.bootable) for i in images] == [("BIOS", True), ("UEFI", True)]
    assert images[0].path == "/boot/grub/i386-pc/eltorito.img"


def test_md5sum_txt_matches_every_file_it_lists_and_lists_every_file(either_iso: Path) -> None:
    assert iso_checks.md5_mismatches(either_iso) == []
    assert iso_checks.unlisted_files(either_iso) == []


def test_esp_and_boot_layout_survive_byte_for_byte(
    standin_base_iso: Path, appliance_iso: ApplianceBuild
) -> None:
    assert iso_checks.esp_bytes(appliance_iso.iso) == iso_checks.esp_bytes(standin_base_iso)
    base, _ = iso_checks.boot_records(standin_base_iso)
    out, _ = iso_checks.boot_records(appliance_iso.iso)
    assert base.esp is not None
    assert out.esp is not None
    assert out.esp.size == base.esp.size
    assert out.partition_offset == base.partition_offset == 16
    # The MBR boot code (first 432 bytes) is GRUB's, unchanged.
    assert appliance_iso.iso.read_bytes()[:432] == standin_base_iso.read_bytes()[:432]


def test_output_carries_the_rendered_autoinstall_and_edited_menus(
    appliance_iso: ApplianceBuild,
) -> None:
    rendered = render_autoinstall(appliance_iso.config)
    with SourceIso(appliance_iso.iso) as iso:
        for path in (ROOT_FILE, USER_DATA, META_DATA):
            assert iso.read_text(path) == rendered.files[path]
        assert yaml.safe_load(iso.read_text(USER_DATA))["autoinstall"]["version"] == 1
        grub_cfg = iso.read_text("/boot/grub/grub.cfg")
        loopback = iso.read_text("/boot/grub/loopback.cfg")
        disk_info = iso.read_text("/.disk/info")
        assert iso.volume_id == appliance_iso.config.volume_id
    for cfg in (grub_cfg, loopback):
        entries = installer_entries(cfg)
        assert len(entries) == 2
        for entry in entries:
            assert all(arg in (entry.args or "").split() for arg in AUTOINSTALL_ARGS)
    assert "set timeout=5" in grub_cfg.splitlines()
    assert disk_info.startswith("alga-appliance 0.1.0 (from Ubuntu-Server 24.04.3 LTS")


def test_manifest_and_checksum_describe_the_output(appliance_iso: ApplianceBuild) -> None:
    result = appliance_iso.result
    data = result.iso.read_bytes()
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    check = subprocess.run(
        ["sha256sum", "-c", result.sha256_file.name], cwd=result.iso.parent,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    manifest = json.loads(result.manifest.read_text())
    assert result.standin_artifacts is manifest["extra"]["standin_artifacts"] is True
    base = appliance_iso.base_iso
    assert manifest["output"] == {
        "file": result.iso.name, "size": len(data), "sha256": result.sha256,
        "volume_id": "alga-appliance 0.1.0",
    }  # fmt: skip
    assert manifest["base_iso"]["sha256"] == hashlib.sha256(base.read_bytes()).hexdigest()
    assert manifest["base_iso"]["volume_id"] == "Ubuntu-Server 24.04.3 LTS amd64"
    assert manifest["config"]["sha256"] == appliance_iso.config.sha256
    assert manifest["tools"]["xorriso"].startswith("1.")
    paths = {f["path"]: f for f in manifest["files"]}
    with SourceIso(result.iso) as iso:
        for path, record in paths.items():
            assert hashlib.sha256(iso.read_bytes(path)).hexdigest() == record["sha256"], path
    assert {ROOT_FILE, USER_DATA, META_DATA, "/boot/grub/grub.cfg", "/md5sum.txt"} <= set(paths)
    assert paths[ROOT_FILE]["action"] == "added"
    assert paths["/boot/grub/grub.cfg"]["action"] == "changed"
    assert str(appliance_iso.output_dir) not in result.manifest.read_text()
    assert sorted(p.name for p in appliance_iso.output_dir.iterdir()) == sorted(
        [result.iso.name, result.sha256_file.name, "build-manifest.json", "sbom.cdx.json",
         "SHA256SUMS"]
    )  # fmt: skip


def test_building_twice_gives_identical_bytes(
    appliance_iso: ApplianceBuild,
    standin_artifacts_dir: StandinArtifacts,
    isobuild_cache: Path,
    tmp_path: Path,
) -> None:
    again = build_appliance(
        appliance_iso.base_iso, tmp_path / "again", standin_artifacts_dir, isobuild_cache
    )
    assert again.result.sha256 == appliance_iso.result.sha256
    assert again.iso.read_bytes() == appliance_iso.iso.read_bytes()
    assert again.result.manifest.read_bytes() == appliance_iso.result.manifest.read_bytes()


def test_another_epoch_changes_the_dates_only(
    appliance_iso: ApplianceBuild,
    standin_artifacts_dir: StandinArtifacts,
    isobuild_cache: Path,
    tmp_path: Path,
) -> None:
    other = build_appliance(
        appliance_iso.base_iso, tmp_path / "other", standin_artifacts_dir, isobuild_cache,
        source_date_epoch=1767225600,
    )  # fmt: skip
    assert other.result.sha256 != appliance_iso.result.sha256
    assert other.result.size == appliance_iso.result.size
    assert json.loads(other.result.manifest.read_text())["source_date_epoch"] == 1767225600


def test_cli_build_and_inspect(
    standin_base_iso: Path, standin_artifacts_dir: StandinArtifacts, isobuild_cache: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    out = tmp_path / "out"
    argv = [
        *ISOBUILD, "--quiet", "build", "--base-iso", str(standin_base_iso),
        "--output-dir", str(out), "--cache-dir", str(isobuild_cache),
        "--lock", str(standin_artifacts_dir.lock_path),
        "--mirror", str(standin_artifacts_dir.directory),
    ]  # fmt: skip
    built = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stderr
    iso = out / "alga-appliance-0.1.0.iso"
    assert "\r" not in built.stderr  # no progress bar without a terminal
    shown = subprocess.run(
        [*ISOBUILD, "inspect", "--json", str(iso)], capture_output=True, text=True, check=True
    )
    report = json.loads(shown.stdout)
    assert report["volume_id"] == "alga-appliance 0.1.0"
    assert [e["platform"] for e in report["el_torito"]] == ["BIOS", "UEFI"]
    assert report["partitions"]["esp"] is not None
    assert report["missing_boot_records"] == []
    assert len(report["autoinstall"]["entries"]) == 4
    assert report["autoinstall"]["installed_system_check"] is True
    assert all(report["autoinstall"]["files"].values())
    base = subprocess.run(
        [*ISOBUILD, "inspect", str(standin_base_iso)], capture_output=True, text=True, check=True
    ).stdout
    assert "entries with autoinstall: 0" in base
    assert "Try or Install Ubuntu Server" in base


def test_cli_cold_build_checks_the_digest_it_started_before_loading_the_build(
    standin_base_iso: Path, standin_artifacts_dir: StandinArtifacts, tmp_path: Path
) -> None:
    # An empty cache: the CLI hashes the base on a thread from its start (isobuild.commands.
    # build); that digest is the one --sha256 is checked against, recorded and cached.
    cache, out = tmp_path / "cache", tmp_path / "out"
    real = hashlib.sha256(standin_base_iso.read_bytes()).hexdigest()
    argv = [
        *ISOBUILD, "--quiet", "build", "--base-iso", str(standin_base_iso),
        "--output-dir", str(out), "--cache-dir", str(cache),
        "--lock", str(standin_artifacts_dir.lock_path),
        "--mirror", str(standin_artifacts_dir.directory),
    ]  # fmt: skip
    wrong = subprocess.run([*argv, "--sha256", "0" * 64], capture_output=True, text=True)
    assert wrong.returncode == ExitCode.INPUT, wrong.stderr  # a bad input, not a failure
    assert real in wrong.stderr, wrong.stderr  # both digests are named
    assert "0" * 64 in wrong.stderr, wrong.stderr
    assert not out.exists() or list(out.iterdir()) == []
    built = subprocess.run([*argv, "--sha256", real], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    manifest = json.loads((out / "build-manifest.json").read_text())
    assert manifest["base_iso"]["sha256"] == real
    assert real in (cache / "base-iso-digests.json").read_text()


def _run_on_terminal(argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` with stderr on a pseudo-terminal; return its exit code and that output."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=secondary)  # fmt: skip
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    return proc.wait(timeout=120), b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize("quiet", [False, True], ids=["terminal", "quiet"])
def test_progress_shows_on_a_terminal_unless_quiet(
    standin_base_iso: Path, standin_artifacts_dir: StandinArtifacts, isobuild_cache: Path,
    tmp_path: Path, quiet: bool,
) -> None:  # fmt: skip
    argv = [
        *ISOBUILD, *(["--quiet"] if quiet else []), "build",
        "--base-iso", str(standin_base_iso), "--output-dir", str(tmp_path / "out"),
        "--cache-dir", str(isobuild_cache), "--lock", str(standin_artifacts_dir.lock_path),
        "--mirror", str(standin_artifacts_dir.directory),
    ]  # fmt: skip
    code, shown = _run_on_terminal(argv)
    assert code == 0, shown
    bar = "writing alga-appliance-0.1.0.iso ["
    if quiet:
        assert bar not in shown
    else:
        assert bar in shown
        assert "100.0%" in shown
