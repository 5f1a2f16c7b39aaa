"""What an EFI binary is: sha256, Authenticode signatures and SBAT, read in Python (pure).

An Authenticode signature (PE attribute certificate table, PKCS#7 SignedData) holds a digest
of the file with its checksum, its certificate-table entry and the table itself left out.
A signature is *valid* here when that digest is this file's, the signed attributes carry the
digest of the signed content, and the signer certificate's key verifies the signature. It
says nothing of trust: whether the firmware accepts the signer is its db's business (the
Secure Boot boot cells prove that part).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import pefile
from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

SPC_INDIRECT_DATA = "1.3.6.1.4.1.311.2.1.4"
WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002
SECURITY_DIRECTORY = 4  # IMAGE_DIRECTORY_ENTRY_SECURITY
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Signature:
    """One Authenticode signature: who signed, and whether it holds for these bytes."""

    signer: str  # the signing certificate's subject common name (or whole subject)
    issuer: str  # that certificate's issuer common name
    digest_algorithm: str
    valid: bool
    problem: str | None = None  # why it is not valid

    def as_json(self) -> dict[str, object]:
        return {
            "signer": self.signer,
            "issuer": self.issuer,
            "digest_algorithm": self.digest_algorithm,
            "valid": self.valid,
            "problem": self.problem,
        }


@dataclass(frozen=True, kw_only=True)
class EfiBinary:
    sha256: str
    size: int
    pe: bool  # a PE/COFF image at all
    signatures: tuple[Signature, ...] = ()
    # The .sbat section's CSV records as (component, generation), e.g. ("shim", "4").
    sbat: tuple[tuple[str, str], ...] = ()

    @property
    def signed(self) -> bool:
        """At least one signature that holds for these bytes."""
        return any(s.valid for s in self.signatures)

    @property
    def signers(self) -> tuple[str, ...]:
        return tuple(s.signer for s in self.signatures if s.valid)

    def as_json(self) -> dict[str, object]:
        return {
            "sha256": self.sha256,
            "size": self.size,
            "pe": self.pe,
            "signed": self.signed,
            "signatures": [s.as_json() for s in self.signatures],
            "sbat": [f"{name},{generation}" for name, generation in self.sbat],
        }


class _Digest(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    _fields = [("algorithm", algos.DigestAlgorithm), ("digest", core.OctetString)]  # noqa: RUF012


class _SpcIndirectData(core.Sequence):  # type: ignore[misc]
    _fields = [("data", core.Any), ("message_digest", _Digest)]  # noqa: RUF012


def read_efi_binary(data: bytes, *, sha256: str | None = None) -> EfiBinary:
    """Everything :class:`EfiBinary` says about ``data`` (pure); ``sha256``: its digest if known."""
    sha = sha256 or hashlib.sha256(data).hexdigest()
    try:
        pe = pefile.PE(data=data, fast_load=True)
    except pefile.PEFormatError:
        return EfiBinary(sha256=sha, size=len(data), pe=False)
    # No pe.close(): over bytes it has nothing to release and runs a full gc.collect(),
    # 0.1 s a binary once a build's modules are loaded (2 s over a 24.04 ISO's 22).
    return EfiBinary(
        sha256=sha, size=len(data), pe=True,
        signatures=tuple(_signatures(pe, data)), sbat=_sbat(pe, data),
    )  # fmt: skip


def _sbat(pe: pefile.PE, data: bytes) -> tuple[tuple[str, str], ...]:
    for section in pe.sections:
        if section.Name.rstrip(b"\0") == b".sbat":
            start = section.PointerToRawData
            size = min(section.SizeOfRawData, section.Misc_VirtualSize or section.SizeOfRawData)
            text = data[start : start + size].split(b"\0", 1)[0].decode("utf-8", "replace")
            records = []
            for line in text.splitlines():
                fields = line.split(",")
                if len(fields) >= 2 and fields[0].strip():
                    records.append((fields[0].strip(), fields[1].strip()))
            return tuple(records)
    return ()


def _certificate_table(pe: pefile.PE) -> tuple[int, int, int] | None:
    """(file offset of the table, its size, offset of its directory entry), or None."""
    directories = pe.OPTIONAL_HEADER.DATA_DIRECTORY
    if len(directories) <= SECURITY_DIRECTORY:
        return None
    entry = directories[SECURITY_DIRECTORY]
    if entry.VirtualAddress == 0 or entry.Size == 0:
        return None
    return entry.VirtualAddress, entry.Size, entry.get_file_offset()


def authenticode_digest(data: bytes, algorithm: str = "sha256") -> bytes:
    """The Authenticode digest of a PE file's bytes (pure)."""
    pe = pefile.PE(data=data, fast_load=True)
    try:
        return _authenticode_digest(pe, data, algorithm)
    finally:
        pe.close()


def _authenticode_digest(pe: pefile.PE, data: bytes, algorithm: str) -> bytes:
    checksum = pe.OPTIONAL_HEADER.get_field_absolute_offset("CheckSum")
    table = _certificate_table(pe)
    digest = hashlib.new(algorithm)
    digest.update(data[:checksum])
    if table is None:
        directories = pe.OPTIONAL_HEADER.DATA_DIRECTORY
        if len(directories) <= SECURITY_DIRECTORY:
            digest.update(data[checksum + 4 :])
            return digest.digest()
        entry = directories[SECURITY_DIRECTORY].get_file_offset()
        digest.update(data[checksum + 4 : entry])
        digest.update(data[entry + 8 :])
        return digest.digest()
    start, size, entry = table
    digest.update(data[checksum + 4 : entry])
    digest.update(data[entry + 8 : start])
    digest.update(data[start + size :])
    return digest.digest()


def _signatures(pe: pefile.PE, data: bytes) -> list[Signature]:
    table = _certificate_table(pe)
    if table is None:
        return []
    start, size, _ = table
    found = []
    offset = start
    while offset + 8 <= min(start + size, len(data)):
        length, _revision, kind = struct.unpack_from("<IHH", data, offset)
        if length < 8:
            break
        if kind == WIN_CERT_TYPE_PKCS_SIGNED_DATA:
            found.append(_signature(pe, data, data[offset + 8 : offset + length]))
        offset += (length + 7) & ~7
    return found


def _name(name: asn1_x509.Name) -> str:
    native = name.native
    return str(native.get("common_name") or name.human_friendly)


def _signature(pe: pefile.PE, data: bytes, blob: bytes) -> Signature:
    try:
        signed_data = cms.ContentInfo.load(blob)["content"]
        signer_info = signed_data["signer_infos"][0]
        sid = signer_info["sid"].chosen
        certificate = next(
            c.chosen
            for c in signed_data["certificates"]
            if isinstance(c.chosen, asn1_x509.Certificate)
            and c.chosen.issuer == sid["issuer"]
            and c.chosen.serial_number == sid["serial_number"].native
        )
    except (ValueError, KeyError, IndexError, StopIteration, TypeError) as exc:
        return Signature(signer="?", issuer="?", digest_algorithm="?", valid=False,
                         problem=f"unreadable signature: {exc}")  # fmt: skip
    signer, issuer = _name(certificate.subject), _name(certificate.issuer)
    algorithm = signer_info["digest_algorithm"]["algorithm"].native

    def invalid(problem: str) -> Signature:
        return Signature(signer=signer, issuer=issuer, digest_algorithm=algorithm, valid=False,
                         problem=problem)  # fmt: skip

    encap = signed_data["encap_content_info"]
    if encap["content_type"].dotted != SPC_INDIRECT_DATA:
        return invalid(f"signed content is {encap['content_type'].dotted}, not Authenticode")
    # PKCS#7 v1.5 (Authenticode) puts the SEQUENCE itself under [0], not an OCTET STRING.
    indirect = _SpcIndirectData.load(encap["content"].parsed.untag().dump())
    file_algorithm = indirect["message_digest"]["algorithm"]["algorithm"].native
    if file_algorithm not in _HASHES:
        return invalid(f"unsupported file digest {file_algorithm}")
    if indirect["message_digest"]["digest"].native != _authenticode_digest(
        pe, data, file_algorithm
    ):
        return invalid("the file's bytes do not match the signed digest (tampered)")
    if algorithm not in _HASHES:
        return invalid(f"unsupported digest {algorithm}")
    signed_attrs = signer_info["signed_attrs"]
    content_digest = hashlib.new(algorithm, indirect.contents).digest()
    message_digest = next(
        (a["values"][0].native for a in signed_attrs if a["type"].native == "message_digest"),
        None,
    )
    if message_digest != content_digest:
        return invalid("the signed attributes do not match the signed content")
    # The signature covers the signed attributes DER-encoded as a SET (tag 0x31), not [0].
    to_verify = b"\x31" + signed_attrs.dump()[1:]
    try:
        _verify(certificate.dump(), signer_info["signature"].native, to_verify, algorithm)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError) as exc:
        return invalid(f"the signature does not verify with the signer's key ({exc or 'bad'})")
    return Signature(signer=signer, issuer=issuer, digest_algorithm=algorithm, valid=True)


def _verify(certificate_der: bytes, signature: bytes, message: bytes, algorithm: str) -> None:
    key = x509.load_der_x509_certificate(certificate_der).public_key()
    hash_algorithm = _HASHES[algorithm]()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, message, padding.PKCS1v15(), hash_algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, message, ec.ECDSA(hash_algorithm))
    else:
        raise UnsupportedAlgorithm(f"{type(key).__name__} keys")
