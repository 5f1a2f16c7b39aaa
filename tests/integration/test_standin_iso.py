"""The stand-in base ISO has the 24.04 layout, menus and boot records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from isobuild.iso import md5sums
from isobuild.iso.boot_records import parse_as_mkisofs
from isobuild.iso.efi_inventory import ELTORITO, ESP, ISO9660, read_inventory
from isobuild.iso.source import SourceIso
from isobuild.standin import debs as standin_debs
from isobuild.standin.iso import LAYERS, Release
from tests.conftest import TESTS_DIR, require_tool
from tests.integration import iso_checks

DATA = TESTS_DIR / "data" / "ubuntu-24.04"


def test_menus_are_the_recorded_24_04_menus(standin_base_iso: Path) -> None:
    with SourceIso(standin_base_iso) as iso:
        assert iso.read_text("/boot/grub/grub.cfg") == (DATA / "grub.cfg").read_text()
        assert iso.read_text("/boot/grub/loopback.cfg") == (DATA / "loopback.cfg").read_text()


def test_volume_date_is_the_release_mastering_time(standin_base_iso: Path) -> None:
    # A build's default SOURCE_DATE_EPOCH: the base's volume modification date, in UTC.
    with SourceIso(standin_base_iso) as iso:
        assert iso.modification_epoch() == Release().epoch


def test_boot_records_match_the_real_report_option_for_option(standin_base_iso: Path) -> None:
    real = parse_as_mkisofs((DATA / "report-el-torito-as-mkisofs.txt").read_text())
    ours, images = iso_checks.boot_records(standin_base_iso)

    # xorriso states the MBR's CHS geometry only when it is not its default (255/63), which
    # depends on the image size: the 35 MB stand-in gets 64/32, the 3 GB original not.
    geometry = {"-partition_hd_cyl", "-partition_sec_hd"}

    def shape(options: tuple[str, ...]) -> list[str]:
        # Offsets, sizes and file names differ by nature; the options must not.
        return [
            o for o in options
            if o.startswith("-") and not o.startswith("--interval") and o not in geometry
        ]  # fmt: skip

    assert shape(ours.options) == shape(real.options)
    assert ours.volume_id == real.volume_id
    assert ours.esp is not None
    assert ours.efi_partition == ours.esp.number == 2
    assert [i.platform for i in images] == ["BIOS", "UEFI"]


def test_top_level_layout(standin_base_iso: Path) -> None:
    with SourceIso(standin_base_iso) as iso:
        top = {f.path for f in iso.list_dir("/")}
        casper = {f.path for f in iso.list_dir("/casper")}
        efi = {f.path for f in iso.list_dir("/EFI/boot")}
        disk_info = iso.read_text("/.disk/info")
        listed = md5sums.parse(iso.read_text("/md5sum.txt"))
    assert {"/.disk", "/boot", "/boot.catalog", "/casper", "/dists", "/pool", "/EFI",
            "/md5sum.txt", "/ubuntu"} <= top  # fmt: skip
    for name in ("vmlinuz", "initrd", "hwe-vmlinuz", "hwe-initrd", "install-sources.yaml"):
        assert f"/casper/{name}" in casper
    for layer, _ in LAYERS:
        assert {f"/casper/{layer}.squashfs", f"/casper/{layer}.size"} <= casper
    assert efi == {"/EFI/boot/bootx64.efi", "/EFI/boot/grubx64.efi", "/EFI/boot/mmx64.efi"}
    assert disk_info == 'Ubuntu-Server 24.04.3 LTS "Noble Numbat" - Release amd64 (20250805)'
    assert "/boot.catalog" not in listed
    assert "/boot/grub/i386-pc/eltorito.img" not in listed


def test_cli_refuses_to_overwrite_and_reports_bad_sizes(tmp_path: Path) -> None:
    out = tmp_path / "x.iso"
    out.write_bytes(b"x")
    isobuild = [sys.executable, "-m", "isobuild.cli", "standin-iso"]
    exists = subprocess.run([*isobuild, str(out)], capture_output=True, text=True, check=False)
    assert exists.returncode == 4
    assert "already exists" in exists.stderr
    for bad in ("lots", "nan", "inf", "1e400"):
        size = subprocess.run([*isobuild, str(tmp_path / "y.iso"), "--filler-size", bad],
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert size.returncode == 2, size.stderr
        assert size.stderr.splitlines()[0] == (
            f"error: --filler-size: expected a size like 2.5G or 700M, got {bad!r}"
        )
        assert "Traceback" not in size.stderr
    assert out.read_bytes() == b"x"


def test_cli_builds_a_bootable_layout(tmp_path: Path, fixture_cache: Path) -> None:
    out = tmp_path / "standin.iso"
    built = subprocess.run(
        [sys.executable, "-m", "isobuild.cli", "standin-iso", str(out), "--release", "24.04.2",
         "--filler-size", "3M", "--cache-dir", str(fixture_cache)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    facts = iso_checks.reopen(out)
    assert "24.04.2" in facts.disk_info
    records, _ = iso_checks.boot_records(out)
    assert records.missing() == []
    with SourceIso(out) as iso:
        sizes = {f.path: f.size for f in iso.list_dir("/casper")}
    assert sum(sizes[f"/casper/{layer}.squashfs"] for layer, _ in LAYERS) >= 3 * (1 << 20) - 8
    assert list(tmp_path.iterdir()) == [out]


def test_the_uefi_chain_is_debians_signed_one_in_all_three_places(standin_base_iso: Path) -> None:
    """shim (Microsoft) → GRUB (Debian) → kernel (Debian), where Ubuntu's ISO has them."""
    entries = read_inventory(standin_base_iso).by_key()
    signers = {
        "/EFI/boot/bootx64.efi": "Microsoft Windows UEFI Driver Publisher",
        "/EFI/boot/grubx64.efi": "Debian Secure Boot Signer 2022 - grub2",
        "/EFI/boot/mmx64.efi": "Debian Secure Boot Signer 2022 - shim",
    }
    for path, signer in signers.items():
        digests = set()
        for location in (ISO9660, ELTORITO, ESP):
            entry = entries[f"{location}:{path}"]
            assert entry.binary.signed, entry.key
            assert signer in entry.binary.signers, entry.key
            digests.add(entry.binary.sha256)
        assert len(digests) == 1, f"{path} differs between the ESP, El Torito and ISO 9660"
    assert entries["iso9660:/EFI/boot/bootx64.efi"].binary.sbat[1][0] == "shim"
    kernel = entries["iso9660:/casper/vmlinuz"].binary
    assert kernel.signers == ("Debian Secure Boot Signer 2022 - linux",)


def test_an_unsigned_grub_variant_keeps_shim_and_swaps_grub(
    tmp_path: Path, fixture_cache: Path
) -> None:
    out = tmp_path / "unsigned-grub.iso"
    built = subprocess.run(
        [sys.executable, "-m", "isobuild.cli", "standin-iso", str(out), "--boot-chain",
         "unsigned-grub", "--cache-dir", str(fixture_cache)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    inventory = read_inventory(out)
    assert [e.key for e in inventory.unsigned() if e.path.endswith("grubx64.efi")] == [
        "iso9660:/EFI/boot/grubx64.efi", "eltorito:/EFI/boot/grubx64.efi",
        "esp:/EFI/boot/grubx64.efi",
    ]  # fmt: skip
    assert all(e.binary.signed for e in inventory.boot_loaders)


def test_update_pins_rewrites_a_pins_file_from_apt_cache(tmp_path: Path) -> None:
    require_tool("apt-cache", "apt")
    pins = tmp_path / "debian-pins.yaml"
    pins.write_text(standin_debs.PINS_FILE.read_text())
    updated = standin_debs.update_pins(pins)
    assert sorted(updated) == sorted(standin_debs.ROLES)
    assert standin_debs.load_pins(pins) == updated
    assert pins.read_text().startswith("# Debian 12 packages")  # the comment block is kept
    assert updated["kernel"].package.startswith("linux-image-")
