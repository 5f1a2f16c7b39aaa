"""A stand-in for the Ubuntu 24.04.x live-server ISO, built from Debian packages.

Same layout and boot records as the real image (GRUB hybrid MBR, protective MBR + GPT,
appended ESP, BIOS eltorito.img, UEFI entry into the ESP), the same Secure Boot chain
(Microsoft-signed shim → distribution-signed GRUB → signed kernel, here Debian's), the real
grub.cfg/loopback.cfg menus, placeholder casper layers, and an initrd that reports instead
of installing (initrds are not verified by Secure Boot, so the chain is unchanged by it).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from isobuild import no_room, output_file
from isobuild.errors import EnvironmentProblem, ToolError
from isobuild.iso import md5sums
from isobuild.iso.boot_records import ESP_TYPE_GUID
from isobuild.run import run
from isobuild.standin import debs as standin_debs
from isobuild.standin.initrd import STANDIN_DIR, build_initrd, fetch_kernel

log = logging.getLogger(__name__)

GRUB_LIB = Path("/usr/lib/grub")
GRUB_FONT = Path("/usr/share/grub/unicode.pf2")
ISO_MBR_TYPE_GUID = "a2a0d0ebe5b9334487c068b6b72699c7"
WRITING = "writing the stand-in ISO"
# What a tool says when it finds no room: strerror, or xorriso measuring before it writes.
_NO_ROOM = (os.strerror(errno.ENOSPC), "exceeds free space on media")
# Real 24.04.3 layer names; the filler is spread over them in these shares.
LAYERS = (
    ("ubuntu-server-minimal", 0.20),
    ("ubuntu-server-minimal.ubuntu-server", 0.25),
    ("ubuntu-server-minimal.ubuntu-server.installer", 0.15),
    ("ubuntu-server-minimal.ubuntu-server.installer.generic", 0.25),
    ("ubuntu-server-minimal.ubuntu-server.installer.generic-hwe", 0.15),
)
BIOS_MODULES = ("biosdisk", "iso9660", "part_msdos", "part_gpt", "normal", "search")
# The signed Ubuntu GRUB is monolithic; so is ours, with what grub.cfg and the
# installed-system check need (ext2/lvm for /boot on the local disk).
EFI_MODULES = (
    "part_gpt", "part_msdos", "fat", "iso9660", "ext2", "lvm", "search", "search_fs_file",
    "search_label", "configfile", "normal", "linux", "echo", "test", "serial", "terminal",
    "all_video", "efi_gop", "gzio", "sleep", "halt", "reboot", "ls", "cat", "font",
    "gfxterm", "efifwsetup", "regexp", "loopback", "chain", "true",
)  # fmt: skip
EFI_EARLY_CFG = """search --no-floppy --set=root --file /.disk/info
set prefix=($root)/boot/grub
configfile $prefix/grub.cfg
"""
FILLER_BLOCK = 1 << 20
# Where the pinned Debian packages keep the signed binaries (see standin/debian-pins.yaml).
SHIM = ("shim", "usr/lib/shim/shimx64.efi.signed")
MOKMANAGER = ("shim-helpers", "usr/lib/shim/mmx64.efi.signed")
# gcdx64 is Debian's GRUB for CDs: its built-in config finds the medium by /.disk/info and
# reads /boot/grub/grub.cfg, as Ubuntu's signed GRUB does.
SIGNED_GRUB = ("grub", "usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed")
EFI_DIR = "/EFI/boot"


class BootChain(enum.StrEnum):
    """The UEFI boot chain the stand-in carries."""

    SIGNED = "signed"  # shim → signed GRUB → signed kernel, as on Ubuntu's ISO
    UNSIGNED_GRUB = "unsigned-grub"  # shim → an unsigned GRUB: refused under Secure Boot
    UNSIGNED = "unsigned"  # an unsigned GRUB as bootx64.efi (no shim), a hand-made ISO


@dataclass(frozen=True, kw_only=True)
class Release:
    """What the stand-in claims to be."""

    version: str = "24.04.3"
    date: str = "20250805"
    # Mastering time of the real 24.04.3 (its --modification-date), as a Unix time.
    epoch: int = 1754438047

    @property
    def volume_id(self) -> str:
        return f"Ubuntu-Server {self.version} LTS amd64"

    @property
    def disk_info(self) -> str:
        return f'Ubuntu-Server {self.version} LTS "Noble Numbat" - Release amd64 ({self.date})'


@dataclass(frozen=True, kw_only=True)
class StandinOptions:
    out: Path
    cache: Path
    release: Release = Release()
    filler_size: int = 0  # bytes spread over the casper layers
    boot_chain: BootChain = BootChain.SIGNED


def _write(root: Path, iso_path: str, data: bytes | str) -> None:
    path = root / iso_path.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _filler(path: Path, size: int, seed: str) -> None:
    """``size`` pseudo-random bytes (not zeros: nothing downstream may shortcut them)."""
    block = random.Random(seed).randbytes(FILLER_BLOCK)
    with path.open("wb") as handle:
        remaining = size
        while remaining > 0:
            n = min(remaining, FILLER_BLOCK)
            handle.write(block[:n])
            remaining -= n


def _grub_images(work: Path) -> tuple[Path, Path]:
    for platform in ("i386-pc", "x86_64-efi"):
        if not (GRUB_LIB / platform).is_dir():
            package = "grub-pc-bin" if platform == "i386-pc" else "grub-efi-amd64-bin"
            raise EnvironmentProblem(
                f"{GRUB_LIB / platform}: GRUB modules not found",
                hint=f"install them: sudo apt-get install {package}",
            )
    eltorito = work / "eltorito.img"
    run(["grub-mkimage", "-O", "i386-pc-eltorito", "-p", "/boot/grub", "-o", eltorito,
         *BIOS_MODULES])  # fmt: skip
    early = work / "early.cfg"
    early.write_text(EFI_EARLY_CFG)
    efi = work / "bootx64.efi"
    run(["grub-mkimage", "-O", "x86_64-efi", "-p", "/boot/grub", "-c", early, "-o", efi,
         *EFI_MODULES])  # fmt: skip
    return eltorito, efi


def efi_files(chain: BootChain, cache: Path, unsigned_grub: Path) -> dict[str, Path]:
    """``name → file`` for /EFI/boot in the ESP and on the ISO 9660 side."""
    if chain is BootChain.UNSIGNED:
        return {"bootx64.efi": unsigned_grub, "grubx64.efi": unsigned_grub}
    pins = standin_debs.load_pins()

    def signed(where: tuple[str, str]) -> Path:
        role, path = where
        return standin_debs.unpack(cache, pins[role]) / path

    grub = signed(SIGNED_GRUB) if chain is BootChain.SIGNED else unsigned_grub
    return {"bootx64.efi": signed(SHIM), "grubx64.efi": grub, "mmx64.efi": signed(MOKMANAGER)}


def _esp_image(work: Path, files: dict[str, Path]) -> Path:
    """A FAT ESP holding EFI/boot/<files>, sized to fit."""
    esp = work / "esp.img"
    size_kib = sum(f.stat().st_size for f in files.values()) // 1024 + 1024
    size_kib += (-size_kib) % 64
    run(["mkfs.vfat", "-C", "-n", "ESP", "-i", "2404EF15", esp, str(size_kib)], capture=True)
    run(["mmd", "-i", esp, "::/EFI", "::/EFI/boot"])
    for name, path in sorted(files.items()):
        run(["mcopy", "-i", esp, "-m", path, f"::{EFI_DIR}/{name}"])
    return esp


def _tree(options: StandinOptions, work: Path, eltorito: Path, efi: dict[str, Path]) -> Path:
    release = options.release
    root = work / "tree"
    _write(root, "/.disk/info", release.disk_info)
    _write(root, "/.disk/base_installable", "")
    _write(root, "/.disk/cd_type", "full_cd/single\n")
    _write(root, "/.disk/release_notes_url", "https://wiki.ubuntu.com/NobleNumbat/ReleaseNotes\n")
    _write(root, "/boot/grub/grub.cfg", (STANDIN_DIR / "grub.cfg").read_text())
    _write(root, "/boot/grub/loopback.cfg", (STANDIN_DIR / "loopback.cfg").read_text())
    for platform in ("i386-pc", "x86_64-efi"):
        for module in sorted((GRUB_LIB / platform).iterdir()):
            if module.suffix in (".mod", ".lst"):
                _write(root, f"/boot/grub/{platform}/{module.name}", module.read_bytes())
    shutil.copyfile(eltorito, root / "boot/grub/i386-pc/eltorito.img")
    if GRUB_FONT.is_file():
        _write(root, "/boot/grub/fonts/unicode.pf2", GRUB_FONT.read_bytes())
    _write(root, "/boot/memtest86+x64.bin", "stand-in: no memtest86+ on this image\n")
    for name, path in sorted(efi.items()):
        _write(root, f"{EFI_DIR}/{name}", path.read_bytes())

    kernel = fetch_kernel(options.cache)
    initrd = work / "initrd"
    build_initrd(kernel, work, initrd)
    (root / "casper").mkdir(parents=True, exist_ok=True)
    for prefix in ("", "hwe-"):
        shutil.copyfile(kernel.vmlinuz, root / f"casper/{prefix}vmlinuz")
        shutil.copyfile(initrd, root / f"casper/{prefix}initrd")
    for index, (layer, share) in enumerate(LAYERS):
        size = int(options.filler_size * share)
        squashfs = root / f"casper/{layer}.squashfs"
        _filler(squashfs, size or 4096 * (index + 1), f"{release.version}:{layer}")
        _write(root, f"/casper/{layer}.size", f"{size or 4096 * (index + 1)}\n")
        _write(root, f"/casper/{layer}.manifest", "stand-in\t0\n")
    _write(root, "/casper/install-sources.yaml", _install_sources())
    _write(root, "/dists/noble/Release", "Origin: Ubuntu\nSuite: noble\nStand-in: yes\n")
    _write(root, "/pool/main/README", "stand-in: the offline apt pool is empty\n")
    (root / "ubuntu").symlink_to(".")

    entries = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        iso_path = "/" + path.relative_to(root).as_posix()
        if iso_path not in md5sums.EXCLUDED:
            entries[iso_path] = md5sums.md5_file(path)
    _write(root, "/md5sum.txt", md5sums.render(entries))
    return root


def _install_sources() -> str:
    return (
        "- default: true\n"
        "  description:\n"
        "    en: The default install contains a curated set of packages.\n"
        "  id: ubuntu-server\n"
        "  name:\n"
        "    en: Ubuntu Server\n"
        "  path: ubuntu-server-minimal.ubuntu-server.squashfs\n"
        "  size: 0\n"
        "  type: fsimage-layered\n"
        "  variant: server\n"
    )


def mkisofs_args(release: Release, esp: Path, tree: Path, out: Path) -> list[str]:
    """The real 24.04.3 boot options (`-report_el_torito as_mkisofs`), ESP from a file."""
    date = time.strftime("%Y%m%d%H%M%S00", time.gmtime(release.epoch))
    return [
        "xorriso", "-as", "mkisofs", "-r", "-J", "-joliet-long", "-iso-level", "3",
        "-V", release.volume_id,
        f"--modification-date={date}",
        "--grub2-mbr", str(GRUB_LIB / "i386-pc" / "boot_hybrid.img"),
        "--protective-msdos-label",
        "-partition_cyl_align", "off",
        "-partition_offset", "16",
        "--mbr-force-bootable",
        "-append_partition", "2", ESP_TYPE_GUID, str(esp),
        "-appended_part_as_gpt",
        "-iso_mbr_part_type", ISO_MBR_TYPE_GUID,
        "-c", "/boot.catalog",
        "-b", "/boot/grub/i386-pc/eltorito.img",
        "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", "--grub2-boot-info",
        "-eltorito-alt-boot",
        "-e", "--interval:appended_partition_2:all::",
        "-no-emul-boot",
        "-o", str(out),
        str(tree),
    ]  # fmt: skip


@contextlib.contextmanager
def _work_directory(out: Path) -> Iterator[Path]:
    """A scratch directory beside ``out`` (the final rename stays on one filesystem),
    removed at the end; one that cannot be made names OUT's directory, not its own name."""
    try:
        tmp = tempfile.TemporaryDirectory(prefix="isobuild-standin-", dir=out.parent)
    except OSError as exc:
        raise no_room.problem(exc, out.parent, WRITING, "choose another OUT") from None
    with tmp as name:
        yield Path(name)


def build_standin(options: StandinOptions) -> Path:
    """Build the stand-in ISO at ``options.out`` (atomically: temp name, then rename)."""
    out = options.out
    with output_file.directory_for(out), _work_directory(out) as work:
        try:
            eltorito, unsigned_grub = _grub_images(work)
            efi = efi_files(options.boot_chain, options.cache, unsigned_grub)
            esp = _esp_image(work, efi)
            tree = _tree(options, work, eltorito, efi)
            partial = work / out.name
            env = {"SOURCE_DATE_EPOCH": str(options.release.epoch)}
            run(mkisofs_args(options.release, esp, tree, partial), env=env, capture=True)
            # The filler copies in the tree are no longer needed: free the space first.
            shutil.rmtree(tree)
            partial.replace(out)
        except OSError as exc:
            # The cache's writes are the tools' (apt-get, dpkg-deb) or name the cache; a
            # write that names no file was into the work directory, beside OUT.
            if not no_room.within(exc, out.parent):
                raise
            # Here, before the work directory is removed: the hint reads df -i.
            raise no_room.problem(exc, out.parent, WRITING, "choose another OUT") from exc
        except ToolError as exc:
            # A tool that wrote into the work directory (depmod, mkfs.vfat, xorriso, ...)
            # and found no room there.
            if str(work) not in exc.message or not any(s in exc.message for s in _NO_ROOM):
                raise
            full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise no_room.problem(full, out.parent, WRITING, "choose another OUT") from None
    log.info(
        "stand-in base ISO: %s (%d MiB, %s boot chain)",
        out, out.stat().st_size >> 20, options.boot_chain,
    )  # fmt: skip
    return out
