"""Comparing two inventories of the UEFI chain, what is said of an unsigned one, and the
reader that does not parse a binary it has already read."""

from __future__ import annotations

from isobuild.iso.efi_binary import EfiBinary, Signature, read_efi_binary
from isobuild.iso.efi_inventory import (
    EfiEntry,
    EfiInventory,
    binary_reader,
    chain_warning,
    changed_binaries,
)
from tests.conftest import TESTS_DIR

EFI = TESTS_DIR / "data" / "efi"

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


def test_the_reader_answers_known_bytes_from_what_was_read_and_parses_the_rest() -> None:
    data = (EFI / "signed.efi").read_bytes()
    parsed = read_efi_binary(data)
    # A stand-in with the same digest but a different word on its signer: the reader
    # must answer from it, without parsing the bytes again.
    known = EfiBinary(sha256=parsed.sha256, size=len(data), pe=True, signatures=(SIGNED,))
    read = binary_reader([known])
    assert read(data) is known
    other = (EFI / "unsigned.efi").read_bytes()
    assert read(other) == read_efi_binary(other)  # not known: parsed
    assert read(other) is read(other)  # and kept
    # Same digest, different size: not the same bytes (a recorded binary is never trusted
    # for a size it does not have).
    wrong_size = EfiBinary(sha256=parsed.sha256, size=len(data) + 1, pe=True)
    assert binary_reader([wrong_size])(data) == parsed


def test_the_reader_hands_the_digest_it_computed_to_the_parse() -> None:
    data = (EFI / "tampered.efi").read_bytes()
    assert binary_reader()(data) == read_efi_binary(data)
    assert read_efi_binary(data, sha256="given").sha256 == "given"
