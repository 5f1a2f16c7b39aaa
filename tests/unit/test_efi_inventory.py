"""Comparing two inventories of the UEFI chain and what is said of an unsigned one."""

from __future__ import annotations

from isobuild.iso.efi_binary import EfiBinary, Signature
from isobuild.iso.efi_inventory import EfiEntry, EfiInventory, chain_warning, changed_binaries

SIGNED = Signature(signer="S", issuer="CA", digest_algorithm="sha256", valid=True)


def _entry(location: str, path: str, sha: str, *, signed: bool = True) -> EfiEntry:
    binary = EfiBinary(sha256=sha, size=1, pe=True, signatures=(SIGNED,) if signed else ())
    return EfiEntry(location=location, path=path, binary=binary)


def test_changed_missing_and_extra_binaries_are_each_named() -> None:
    before = {e.key: e for e in (_entry("esp", "/EFI/boot/bootx64.efi", "a"),
                                 _entry("esp", "/EFI/boot/grubx64.efi", "b"),
                                 _entry("iso9660", "/casper/vmlinuz", "c"))}  # fmt: skip
    after = {e.key: e for e in (_entry("esp", "/EFI/boot/bootx64.efi", "a"),
                                _entry("esp", "/EFI/boot/grubx64.efi", "B"),
                                _entry("iso9660", "/EFI/boot/new.efi", "d"))}  # fmt: skip
    assert changed_binaries(before, after) == [
        ("esp:/EFI/boot/grubx64.efi", "b", "B"),
        ("iso9660:/EFI/boot/new.efi", None, "d"),
        ("iso9660:/casper/vmlinuz", "c", None),
    ]
    assert changed_binaries(before, before) == []


def test_a_signed_chain_has_no_warning_an_unsigned_one_names_its_binaries() -> None:
    signed = EfiInventory(entries=(_entry("esp", "/EFI/boot/bootx64.efi", "a"),))
    assert chain_warning(signed) is None
    unsigned = EfiInventory(
        entries=(
            _entry("esp", "/EFI/boot/bootx64.efi", "a"),
            _entry("esp", "/EFI/boot/grubx64.efi", "b", signed=False),
        )
    )
    warning = chain_warning(unsigned)
    assert warning is not None
    assert "esp:/EFI/boot/grubx64.efi" in warning
    assert "Secure Boot" in warning
    assert "cannot boot from UEFI" in (chain_warning(EfiInventory(entries=())) or "")
