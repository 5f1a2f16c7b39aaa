"""ISO images: the base ISO, boot records, partitions, GRUB, md5sums, the xorriso writer,
the UEFI boot chain (EFI binaries, their signatures, the ESP)."""

from isobuild.iso.efi_inventory import EfiInventory, read_inventory
from isobuild.iso.report import IsoReport, inspect_iso
from isobuild.iso.source import BaseIsoFacts, SourceIso, check_live_server
from isobuild.iso.xorriso import IsoEdit, RealXorriso, Remaster, WriteResult, Xorriso

__all__ = [
    "BaseIsoFacts",
    "EfiInventory",
    "IsoEdit",
    "IsoReport",
    "RealXorriso",
    "Remaster",
    "SourceIso",
    "WriteResult",
    "Xorriso",
    "check_live_server",
    "inspect_iso",
    "read_inventory",
]
