"""Every EFI binary of an ISO's boot chain, where UEFI firmware and GRUB find it.

Three places, as on Ubuntu's ISO: the FAT image the El Torito UEFI entry points at, the
ESP partition of the GPT (the appended partition a USB stick boots from) and the ISO 9660
tree (``/EFI/...``, and the kernels GRUB loads from ``/casper``). Each is listed by
``location:path`` with its sha256, Authenticode signers and SBAT (see efi_binary).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from isobuild.iso import partition_table
from isobuild.iso.efi_binary import EfiBinary, read_efi_binary
from isobuild.iso.fat import FatError, FatImage
from isobuild.iso.source import ANY_ISO, SourceIso

ESP = "esp"
ELTORITO = "eltorito"
ISO9660 = "iso9660"
EFI_TREE = "/EFI"
# Kernels are PE images too and the signed GRUB refuses an unsigned one under Secure Boot.
KERNELS = ("/casper/vmlinuz", "/casper/hwe-vmlinuz")
MAX_ESP = 256 << 20  # an ESP image is read into memory; Ubuntu's is 5 MB


@dataclass(frozen=True, kw_only=True)
class EfiEntry:
    location: str  # esp | eltorito | iso9660
    path: str
    binary: EfiBinary

    @property
    def key(self) -> str:
        return f"{self.location}:{self.path}"

    def as_json(self) -> dict[str, object]:
        return {"location": self.location, "path": self.path, **self.binary.as_json()}


@dataclass(frozen=True, kw_only=True)
class EfiInventory:
    entries: tuple[EfiEntry, ...]
    problems: tuple[str, ...] = ()  # places that could not be read (no FAT, bad chain)

    def by_key(self) -> dict[str, EfiEntry]:
        return {e.key: e for e in self.entries}

    @property
    def boot_loaders(self) -> tuple[EfiEntry, ...]:
        """The removable-media loaders the firmware starts (``/EFI/boot/bootx64.efi``)."""
        return tuple(e for e in self.entries if e.path.lower() == "/efi/boot/bootx64.efi")

    def unsigned(self) -> list[EfiEntry]:
        """The PE binaries of the chain with no signature that holds."""
        return [e for e in self.entries if e.binary.pe and not e.binary.signed]

    def as_json(self) -> list[dict[str, object]]:
        return [e.as_json() for e in self.entries]


Reader = Callable[[bytes], EfiBinary]


def binary_reader(known: Iterable[EfiBinary] = ()) -> Reader:
    """:func:`read_efi_binary`, answering from ``known`` for bytes it has already read.

    What a binary says is a function of its bytes, so one whose sha256 is known is not
    parsed again: the output of a build carries the base's binaries byte for byte.
    """
    seen = {b.sha256: b for b in known}

    def read(data: bytes) -> EfiBinary:
        sha256 = hashlib.sha256(data).hexdigest()
        binary = seen.get(sha256)
        if binary is None or binary.size != len(data):
            binary = seen[sha256] = read_efi_binary(data, sha256=sha256)
        return binary

    return read


def _fat_entries(location: str, image: bytes, read: Reader) -> list[EfiEntry]:
    fat = FatImage(image)
    return [
        EfiEntry(location=location, path=f.path, binary=read(fat.read(f)))
        for f in fat.files()
        if f.path.lower().endswith(".efi")
    ]


def _read_range(iso: Path, offset: int, size: int) -> bytes:
    with iso.open("rb") as handle:
        handle.seek(offset)
        return handle.read(min(size, MAX_ESP))


def _iso_files(source: SourceIso, directory: str) -> Iterable[str]:
    for child in source.list_dir(directory):
        if child.is_dir:
            yield from _iso_files(source, child.path)
        elif not child.is_symlink:
            yield child.path


def read_inventory(
    iso: Path, *, source: SourceIso | None = None, known: Iterable[EfiBinary] = ()
) -> EfiInventory:
    """The EFI binaries of ``iso`` in all three places (reads only those bytes).

    ``source``: ``iso`` already opened, used and left open (pycdlib's open walks the whole
    tree); ``known``: binaries read before, not parsed again (see :func:`binary_reader`).
    """
    if source is None:
        with SourceIso(iso, role=ANY_ISO) as opened:
            return read_inventory(iso, source=opened, known=known)
    read = binary_reader(known)
    entries: list[EfiEntry] = []
    problems: list[str] = []
    extents = [(o, s) for platform, o, s in source.eltorito_extents() if platform == "UEFI"]
    paths = sorted(_iso_files(source, EFI_TREE)) if source.is_dir(EFI_TREE) else []
    paths = [p for p in paths if p.lower().endswith(".efi")]
    paths += [k for k in KERNELS if source.exists(k)]
    entries += [
        EfiEntry(location=ISO9660, path=p, binary=read(source.read_bytes(p))) for p in paths
    ]
    esp = partition_table.read(iso).esp
    places = [(ELTORITO, offset, size) for offset, size in extents[:1]]
    if esp is not None:
        places.append((ESP, esp.first * partition_table.SECTOR, esp.size * partition_table.SECTOR))
    for location, offset, size in places:
        try:
            entries += _fat_entries(location, _read_range(iso, offset, size), read)
        except (FatError, IndexError) as exc:
            problems.append(f"{location}: not a readable FAT image ({exc})")
    return EfiInventory(entries=tuple(entries), problems=tuple(problems))


def changed_binaries(
    before: Mapping[str, EfiEntry], after: Mapping[str, EfiEntry]
) -> list[tuple[str, str | None, str | None]]:
    """(key, sha256 before, sha256 after) of every binary not byte-identical (pure)."""
    changes = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        old_sha = old.binary.sha256 if old else None
        new_sha = new.binary.sha256 if new else None
        if old_sha != new_sha:
            changes.append((key, old_sha, new_sha))
    return changes


def describe(entries: Sequence[EfiEntry]) -> list[str]:
    """One line per binary: ``location:path  signer(s) | unsigned  [sbat]`` (pure)."""
    lines = []
    for e in entries:
        who = ", ".join(e.binary.signers) if e.binary.signed else "UNSIGNED"
        bad = [s.problem for s in e.binary.signatures if not s.valid and s.problem]
        sbat = ",".join(f"{n}.{g}" for n, g in e.binary.sbat if n != "sbat")
        line = f"{e.key}  {e.binary.sha256[:16]}  {who}"
        if sbat:
            line += f"  sbat {sbat}"
        if bad and not e.binary.signed:
            line += f"  ({bad[0]})"
        lines.append(line)
    return lines


def chain_warning(inventory: EfiInventory) -> str | None:
    """What to tell the user when the base's chain would not boot under Secure Boot (pure)."""
    unsigned = [e.key for e in inventory.unsigned()]
    if not inventory.boot_loaders:
        return "the base ISO has no /EFI/boot/bootx64.efi: it cannot boot from UEFI"
    if unsigned:
        return (
            f"the base ISO's UEFI boot chain is not signed ({', '.join(unsigned)}): the ISO "
            "will not boot on machines with Secure Boot enforced"
        )
    return None
