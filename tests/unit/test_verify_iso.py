"""isobuild.release.verify_iso before the ISO is opened: its path, the keyring, the sums."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from isobuild.errors import ConfigError, ExitCode, SourceIsoError
from isobuild.iso.gpgv import SignatureCheck
from isobuild.release.verify_iso import Status, _digest_checks, verify_iso

ISO = "alga-appliance-0.1.0.iso"


@dataclass
class FakeGpgv:
    check: SignatureCheck
    asked: list[Path] = field(default_factory=list)

    def verify(self, signature: Path, data: Path, keyring: Path) -> SignatureCheck:
        self.asked.append(keyring)
        return self.check


def _outputs(tmp_path: Path, own: bytes | None = None) -> tuple[Path, str]:
    """An "ISO" and the checksum files `build` writes beside it."""
    iso = tmp_path / ISO
    iso.write_bytes(b"not really an ISO")
    digest = hashlib.sha256(iso.read_bytes()).hexdigest()
    iso.with_name(f"{ISO}.sha256").write_bytes(own or f"{digest}  {ISO}\n".encode())
    (tmp_path / "SHA256SUMS").write_text(f"{digest}  {ISO}\n")
    return iso, digest


def _failures(iso: Path, digest: str, keyring: Path | None = None,
              gpgv: FakeGpgv | None = None) -> list[str]:  # fmt: skip
    gpgv = gpgv or FakeGpgv(SignatureCheck(good=True, reason=""))
    checks = _digest_checks(iso, digest, keyring, gpgv)
    return [c.line() for c in checks if c.status is Status.FAILED]


def test_an_upper_case_sha256_file_is_read(tmp_path: Path) -> None:
    iso, digest = _outputs(tmp_path)
    iso.with_name(f"{ISO}.sha256").write_text(f"{digest.upper()}  {ISO}\r\n")
    assert _failures(iso, digest) == []


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (f"{'a' * 63}  {ISO}\n".encode(), "line 1 is malformed: the digest has 63 hex digits, "
         "expected 64"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\n\xff\xfe\n", "line 1 is malformed: binary data, "
         "not a checksum line; 3 more malformed lines"),
    ],
)  # fmt: skip
def test_a_malformed_sha256_file_is_said_to_be_malformed(
    tmp_path: Path, content: bytes, detail: str
) -> None:
    iso, digest = _outputs(tmp_path, own=content)
    assert _failures(iso, digest) == [f"FAILED  checksum   {ISO}.sha256 ({detail})"]


def test_a_malformed_line_in_sha256sums_fails_once(tmp_path: Path) -> None:
    iso, digest = _outputs(tmp_path)
    (tmp_path / "SHA256SUMS").write_text(f"{digest}  {ISO}\n{'b' * 64}\n")
    assert _failures(iso, digest) == [
        "FAILED  sha256sums SHA256SUMS (line 2 is malformed: no file name after the digest)"
    ]


def test_a_signature_failure_carries_its_own_hint(tmp_path: Path) -> None:
    iso, digest = _outputs(tmp_path)
    (tmp_path / "SHA256SUMS.gpg").write_text("signature")
    keyring = tmp_path / "k.gpg"
    keyring.write_bytes(b"\x99\x00")
    gpgv = FakeGpgv(SignatureCheck(good=False, reason="", missing_key="ABCD" * 10))
    checks = _digest_checks(iso, digest, keyring, gpgv)
    (signature,) = [c for c in checks if c.check == "signature"]
    assert signature.status is Status.FAILED
    assert "which is not in the keyring" in signature.detail
    assert signature.hint is not None
    assert signature.hint.startswith(f"if {'ABCD' * 10} is the release key")
    assert signature.as_json()["hint"] == signature.hint


@pytest.mark.parametrize("keyring", ["missing.gpg", "armored.asc"])
def test_a_bad_keyring_is_a_usage_error_before_the_iso_is_read(
    tmp_path: Path, keyring: str
) -> None:
    (tmp_path / "armored.asc").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    iso, _ = _outputs(tmp_path)
    with pytest.raises(ConfigError) as caught:  # not a FAILED check on a good ISO: exit 2
        verify_iso(iso, keyring=tmp_path / keyring)
    assert caught.value.message.startswith(f"--keyring {tmp_path / keyring}: ")
    assert caught.value.exit_code == ExitCode.USAGE


def test_a_fifo_is_not_an_iso(tmp_path: Path) -> None:
    fifo = tmp_path / ISO
    os.mkfifo(fifo)
    with pytest.raises(SourceIsoError) as caught:
        verify_iso(fifo)
    assert caught.value.message == f"{fifo}: is not a regular file, expected an ISO image"


def test_a_directory_is_a_usage_error_pointing_at_the_iso_in_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        verify_iso(tmp_path)
    assert caught.value.message == f"{tmp_path}: is a directory, expected an ISO file"
    assert caught.value.hint == "pass the .iso file `build` wrote"
    (tmp_path / ISO).write_bytes(b"")
    with pytest.raises(ConfigError) as caught:
        verify_iso(tmp_path)
    assert caught.value.hint == f"pass the ISO in it: {tmp_path / ISO}"
