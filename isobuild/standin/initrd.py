"""The stand-in installer's kernel and initrd: a Debian kernel, busybox and a few modules."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from isobuild.errors import EnvironmentProblem
from isobuild.run import run
from isobuild.standin import debs as standin_debs

log = logging.getLogger(__name__)

STANDIN_DIR = Path(__file__).resolve().parent / "files"
BUSYBOX = Path("/bin/busybox")
# What the init needs to find an ISO on an IDE/AHCI CD, a USB stick or a virtio disk, and
# efivarfs to read the SecureBoot variable.
MODULES = (
    "isofs", "sr_mod", "cdrom", "ata_piix", "ata_generic", "ahci", "sd_mod", "xhci_pci",
    "usb_storage", "virtio_pci", "virtio_blk", "efivarfs",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Kernel:
    """An unpacked Debian kernel package: its vmlinuz and module tree."""

    version: str
    vmlinuz: Path
    modules: Path  # .../lib/modules/<version>


def module_closure(modules_dep: str, wanted: Iterable[str]) -> list[str]:
    """Relative .ko paths for ``wanted`` module names and all they depend on (pure).

    ``modules_dep`` is the text of depmod's modules.dep; names match with ``-``/``_``
    folded as the kernel does.
    """
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in modules_dep.splitlines():
        path, _, rest = line.partition(":")
        if not path:
            continue
        deps[path] = rest.split()
        by_name[Path(path).name.split(".ko")[0].replace("-", "_")] = path
    result: list[str] = []
    pending = [by_name[n.replace("-", "_")] for n in wanted if n.replace("-", "_") in by_name]
    while pending:
        path = pending.pop()
        if path in result:
            continue
        result.append(path)
        pending.extend(deps.get(path, []))
    return sorted(result)


def fetch_kernel(cache: Path) -> Kernel:
    """The pinned, signed Debian kernel (see standin_debs), unpacked, with its modules.dep."""
    pin = standin_debs.load_pins()["kernel"]
    unpacked = standin_debs.unpack(cache, pin)
    version = pin.package.removeprefix("linux-image-")
    modules = unpacked / "lib" / "modules" / version
    if not (modules / "modules.dep").is_file():
        run(["depmod", "-b", unpacked, version])
    return Kernel(
        version=version, vmlinuz=unpacked / "boot" / f"vmlinuz-{version}", modules=modules
    )


def _newc_entry(name: str, mode: int, data: bytes, ino: int) -> bytes:
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0)
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    pad_name = (-(len(header) + len(name) + 1)) % 4
    pad_data = (-len(data)) % 4
    return header + name.encode() + b"\0" * (1 + pad_name) + data + b"\0" * pad_data


def newc_archive(entries: Mapping[str, tuple[int, bytes]]) -> bytes:
    """A cpio "newc" archive of ``path → (mode, bytes)``; every time is 0 (pure, reproducible).

    Symlinks are mode ``0o120777`` with the target as data; directories have no data.
    """
    parts = [
        _newc_entry(name, mode, data, ino)
        for ino, (name, (mode, data)) in enumerate(sorted(entries.items()), 1)
    ]
    parts.append(_newc_entry("TRAILER!!!", 0, b"", 0))
    return b"".join(parts)


def build_initrd(kernel: Kernel, workdir: Path, out: Path) -> None:
    """Write the stand-in installer initrd (gzip'd newc cpio) to ``out``."""
    if not BUSYBOX.is_file():
        raise EnvironmentProblem(
            f"{BUSYBOX}: not found", hint="install it: sudo apt-get install busybox-static"
        )
    closure = module_closure((kernel.modules / "modules.dep").read_text(), MODULES)
    # depmod over exactly the copied modules gives the initrd its own modules.dep.
    tree = workdir / "initrd-modules"
    shutil.rmtree(tree, ignore_errors=True)
    target = tree / "lib" / "modules" / kernel.version
    for rel in closure:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kernel.modules / rel, target / rel)
    run(["depmod", "-b", tree, kernel.version])
    init = (STANDIN_DIR / "init").read_text().replace("@MODULES@", " ".join(MODULES))
    entries: dict[str, tuple[int, bytes]] = {
        "init": (0o100755, init.encode()),
        "bin": (0o40755, b""),
        "bin/busybox": (0o100755, BUSYBOX.read_bytes()),
        "bin/sh": (0o120777, b"busybox"),
    }
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree).as_posix()
        if path.is_dir():
            entries[rel] = (0o40755, b"")
        elif path.suffix == ".ko" or path.name.startswith("modules."):
            entries[rel] = (0o100644, path.read_bytes())
    for parent in ("lib", "lib/modules"):
        entries.setdefault(parent, (0o40755, b""))
    out.write_bytes(gzip.compress(newc_archive(entries), compresslevel=6, mtime=0))
    os.utime(out, (0, 0))
