"""Authenticode signers and SBAT read in Python, on recorded PE files (signed, unsigned,
tampered; see tests/data/efi/make_fixtures.py)."""

from __future__ import annotations

import hashlib

from isobuild.iso.efi_binary import authenticode_digest, read_efi_binary
from tests.conftest import TESTS_DIR

EFI = TESTS_DIR / "data" / "efi"


def test_signed_binary_names_its_signer_and_issuer_and_holds() -> None:
    data = (EFI / "signed.efi").read_bytes()
    binary = read_efi_binary(data)
    assert binary.pe
    assert binary.sha256 == hashlib.sha256(data).hexdigest()
    assert binary.signed
    assert binary.signers == ("isobuild test signer",)
    (signature,) = binary.signatures
    assert signature.issuer == "isobuild test signer"
    assert signature.digest_algorithm == "sha256"
    assert signature.problem is None


def test_unsigned_binary_has_no_signature_but_its_sbat() -> None:
    binary = read_efi_binary((EFI / "unsigned.efi").read_bytes())
    assert binary.pe
    assert not binary.signed
    assert binary.signatures == ()
    assert binary.sbat == (("sbat", "1"), ("isobuild-test", "2"))


def test_tampered_binary_keeps_its_signer_but_the_signature_does_not_hold() -> None:
    binary = read_efi_binary((EFI / "tampered.efi").read_bytes())
    assert not binary.signed
    (signature,) = binary.signatures
    assert signature.signer == "isobuild test signer"
    assert not signature.valid
    assert signature.problem is not None
    assert "tampered" in signature.problem


def test_a_changed_signature_byte_is_caught_by_the_key_not_the_digest() -> None:
    data = bytearray((EFI / "signed.efi").read_bytes())
    # The RSA signature is the last 256 bytes of the PKCS#7 blob, at the end of the file.
    data[-20] ^= 0x01
    binary = read_efi_binary(bytes(data))
    assert not binary.signed
    assert binary.signatures[0].problem is not None


def test_signing_does_not_change_the_authenticode_digest() -> None:
    # sbsign pads to 8 bytes and appends the table: the digest it signs is the unsigned one's.
    signed = authenticode_digest((EFI / "signed.efi").read_bytes())
    unsigned = authenticode_digest((EFI / "unsigned.efi").read_bytes())
    assert signed == unsigned


def test_not_a_pe_file() -> None:
    binary = read_efi_binary(b"#!/bin/sh\necho not a PE\n")
    assert not binary.pe
    assert not binary.signed
    assert binary.as_json()["signatures"] == []
