"""A read-only FAT12/16/32 reader for EFI System Partition images (pure, in memory).

Enough to list and read the files of an ESP (long names included) without mtools, a loop
mount or root: the builder reads the base's and the output's ESPs to compare their EFI
binaries byte for byte.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

ATTR_LFN = 0x0F
ATTR_VOLUME = 0x08
ATTR_DIRECTORY = 0x10
ENTRY = 32


class FatError(ValueError):
    """Not a FAT file system, or a damaged one."""


@dataclass(frozen=True, kw_only=True)
class FatFile:
    path: str  # "/EFI/boot/bootx64.efi", as the names are stored
    size: int
    first_cluster: int


class FatImage:
    """A FAT file system held in ``data`` (a whole partition image)."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 512 or data[510:512] != b"\x55\xaa":
            raise FatError("no boot sector signature (0x55AA)")
        bps, self._spc, reserved, fats, root_entries, total16 = struct.unpack_from(
            "<HBHBHH", data, 11
        )
        fat16_size = struct.unpack_from("<H", data, 22)[0]
        total32 = struct.unpack_from("<I", data, 32)[0]
        fat32_size = root_cluster = 0
        if fat16_size == 0:  # FAT32: the FAT size and root directory cluster follow
            fat32_size = struct.unpack_from("<I", data, 36)[0]
            root_cluster = struct.unpack_from("<I", data, 44)[0]
        if bps not in (512, 1024, 2048, 4096) or self._spc == 0 or fats == 0:
            raise FatError(f"implausible BPB (bytes/sector {bps}, sectors/cluster {self._spc})")
        self._data = data
        self._bps = bps
        fat_sectors = fat16_size or fat32_size
        total = total16 or total32
        root_sectors = (root_entries * ENTRY + bps - 1) // bps
        self._fat_offset = reserved * bps
        self._root_offset = (reserved + fats * fat_sectors) * bps
        self._root_bytes = root_sectors * bps
        self._data_offset = self._root_offset + self._root_bytes
        clusters = (total - reserved - fats * fat_sectors - root_sectors) // self._spc
        self.kind = 12 if clusters < 4085 else 16 if clusters < 65525 else 32
        self._root_cluster = root_cluster if self.kind == 32 else 0
        self._eoc = {12: 0xFF8, 16: 0xFFF8, 32: 0x0FFFFFF8}[self.kind]
        self._clusters = clusters

    def _next(self, cluster: int) -> int:
        if self.kind == 12:
            offset = self._fat_offset + cluster + cluster // 2
            value = struct.unpack_from("<H", self._data, offset)[0]
            return int(value >> 4 if cluster & 1 else value & 0xFFF)
        if self.kind == 16:
            return int(struct.unpack_from("<H", self._data, self._fat_offset + 2 * cluster)[0])
        value = struct.unpack_from("<I", self._data, self._fat_offset + 4 * cluster)[0]
        return int(value) & 0x0FFFFFFF

    def _chain(self, first: int) -> Iterator[bytes]:
        size = self._spc * self._bps
        cluster, seen = first, 0
        while 2 <= cluster < self._eoc:
            if cluster >= self._clusters + 2 or seen > self._clusters:
                raise FatError(f"cluster chain from {first} leaves the file system")
            start = self._data_offset + (cluster - 2) * size
            yield self._data[start : start + size]
            cluster = self._next(cluster)
            seen += 1

    def _directory(self, cluster: int) -> bytes:
        if cluster == 0 and self.kind != 32:
            return self._data[self._root_offset : self._root_offset + self._root_bytes]
        return b"".join(self._chain(cluster or self._root_cluster))

    def files(self) -> list[FatFile]:
        """Every regular file, depth first, in directory order."""
        found: list[FatFile] = []
        self._walk(0, "", found, depth=0)
        return found

    def _walk(self, cluster: int, prefix: str, found: list[FatFile], depth: int) -> None:
        if depth > 16:
            raise FatError(f"{prefix}: directories nested too deep (a loop?)")
        for name, attr, first, size in _entries(self._directory(cluster)):
            if name in (".", ".."):
                continue
            path = f"{prefix}/{name}"
            if attr & ATTR_DIRECTORY:
                self._walk(first, path, found, depth + 1)
            else:
                found.append(FatFile(path=path, size=size, first_cluster=first))

    def read(self, file: FatFile) -> bytes:
        data = b"".join(self._chain(file.first_cluster)) if file.size else b""
        if len(data) < file.size:
            raise FatError(f"{file.path}: cluster chain shorter than the file size")
        return data[: file.size]


def _short_name(entry: bytes) -> str:
    base, ext = entry[:8].decode("latin-1").rstrip(), entry[8:11].decode("latin-1").rstrip()
    flags = entry[12]  # Windows NT: 0x08 base and 0x10 extension stored lower case
    if flags & 0x08:
        base = base.lower()
    if flags & 0x10:
        ext = ext.lower()
    if base.startswith("\x05"):
        base = "\xe5" + base[1:]
    return f"{base}.{ext}" if ext else base


def _entries(directory: bytes) -> Iterator[tuple[str, int, int, int]]:
    """(name, attributes, first cluster, size) of each live entry; long names preferred."""
    long_parts: list[str] = []
    for offset in range(0, len(directory) - ENTRY + 1, ENTRY):
        entry = directory[offset : offset + ENTRY]
        if entry[0] == 0x00:
            return
        if entry[0] == 0xE5:
            long_parts = []
            continue
        attr = entry[11]
        if attr == ATTR_LFN:
            chars = entry[1:11] + entry[14:26] + entry[28:32]
            part = chars.decode("utf-16-le", "replace").split("\0", 1)[0].rstrip("\uffff")
            if entry[0] & 0x40:
                long_parts = []
            long_parts.insert(0, part)
            continue
        if attr & ATTR_VOLUME:
            long_parts = []
            continue
        name = "".join(long_parts) or _short_name(entry)
        long_parts = []
        high, low = struct.unpack_from("<H", entry, 20)[0], struct.unpack_from("<H", entry, 26)[0]
        size = struct.unpack_from("<I", entry, 28)[0]
        yield name, attr, (high << 16) | low, size
