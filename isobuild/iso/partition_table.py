"""MBR and GPT of a hybrid ISO image, read from its first sectors (pure parsing + a reader)."""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from pathlib import Path

SECTOR = 512
ESP_TYPE = uuid.UUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
GPT_SIGNATURE = b"EFI PART"
# The whole ISO system area (16 x 2048 bytes): MBR, GPT header and entries live there.
HEAD_BYTES = 16 * 2048


@dataclass(frozen=True, kw_only=True)
class MbrPartition:
    number: int
    bootable: bool
    type_id: int
    start: int  # 512-byte sectors
    size: int


@dataclass(frozen=True, kw_only=True)
class GptPartition:
    number: int
    type_guid: uuid.UUID
    first: int  # 512-byte LBAs, inclusive
    last: int
    name: str

    @property
    def is_esp(self) -> bool:
        return self.type_guid == ESP_TYPE

    @property
    def size(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True, kw_only=True)
class PartitionTable:
    mbr_signature: bool
    mbr: tuple[MbrPartition, ...]
    gpt: tuple[GptPartition, ...] | None  # None: no valid GPT header at LBA 1

    @property
    def esp(self) -> GptPartition | None:
        return next((p for p in self.gpt or () if p.is_esp), None)

    @property
    def protective_mbr(self) -> bool:
        return any(p.type_id == 0xEE for p in self.mbr)

    def describe(self) -> list[str]:
        lines = [f"MBR {p.number}: type 0x{p.type_id:02x}{' boot' if p.bootable else ''} "
                 f"start {p.start} size {p.size}" for p in self.mbr]  # fmt: skip
        if self.gpt is None:
            lines.append("GPT: none")
        for g in self.gpt or ():
            kind = "EFI System" if g.is_esp else str(g.type_guid)
            lines.append(f"GPT {g.number}: {g.name or '-'} ({kind}) LBA {g.first}-{g.last}")
        return lines


def parse(head: bytes) -> PartitionTable:
    """Parse the MBR at byte 0 and the GPT at LBA 1 of ``head`` (at least HEAD_BYTES)."""
    mbr_signature = head[510:512] == b"\x55\xaa"
    mbr: list[MbrPartition] = []
    if mbr_signature:
        for n in range(4):
            entry = head[446 + 16 * n : 446 + 16 * (n + 1)]
            status, type_id = entry[0], entry[4]
            start, size = struct.unpack_from("<II", entry, 8)
            if type_id:
                mbr.append(MbrPartition(number=n + 1, bootable=status == 0x80,
                                        type_id=type_id, start=start, size=size))  # fmt: skip
    return PartitionTable(mbr_signature=mbr_signature, mbr=tuple(mbr), gpt=_parse_gpt(head))


def _parse_gpt(head: bytes) -> tuple[GptPartition, ...] | None:
    header = head[SECTOR : 2 * SECTOR]
    if header[:8] != GPT_SIGNATURE:
        return None
    entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    if entry_size < 128 or entries_lba * SECTOR + count * entry_size > len(head):
        return None
    found = []
    for n in range(count):
        offset = entries_lba * SECTOR + n * entry_size
        entry = head[offset : offset + entry_size]
        type_guid = uuid.UUID(bytes_le=entry[:16])
        if type_guid.int == 0:
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        name = entry[56:128].decode("utf-16-le", "replace").rstrip("\0")
        found.append(GptPartition(number=n + 1, type_guid=type_guid, first=first, last=last,
                                  name=name))  # fmt: skip
    return tuple(found)


def read(image: Path) -> PartitionTable:
    with image.open("rb") as handle:
        return parse(handle.read(HEAD_BYTES))
