"""isobuild.iso.gpgv and verify.check_signature: gpgv's refusal named, files checked first."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from isobuild.errors import ConfigError, VerificationError
from isobuild.iso.gpgv import SignatureCheck, refusal_reason
from isobuild.iso.verify import check_signature

# gpgv 2.2's stderr for a tampered file and for an unknown key (recorded on Debian 12).
BAD = """gpgv: Signature made Thu Dec  3 10:00:00 2026 UTC
gpgv:                using RSA key 0123456789ABCDEF0123456789ABCDEF01234567
gpgv: BAD signature from "Signer <t@example.invalid>" [unknown]
"""
NO_KEY = """gpgv: Signature made Thu Dec  3 10:00:00 2026 UTC
gpgv:                using RSA key 0123456789ABCDEF0123456789ABCDEF01234567
gpgv: Can't check signature: No public key
"""


@dataclass
class RecordingGpgv:
    answer: SignatureCheck
    calls: list[tuple[Path, Path, Path]] = field(default_factory=list)

    def verify(self, signature: Path, data: Path, keyring: Path) -> SignatureCheck:
        self.calls.append((signature, data, keyring))
        return self.answer


def test_refusal_reason_is_the_line_that_says_why() -> None:
    assert refusal_reason(BAD) == 'BAD signature from "Signer <t@example.invalid>" [unknown]'
    assert refusal_reason(NO_KEY) == "Can't check signature: No public key"
    assert refusal_reason("gpgv: something else\n") == "something else"
    assert refusal_reason("") == "rejected"


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    paths = tuple(tmp_path / name for name in ("SHA256SUMS", "SHA256SUMS.gpg", "keyring.gpg"))
    for path in paths:
        path.write_bytes(b"x")
    return paths  # type: ignore[return-value]


def test_a_refused_signature_is_a_verification_error_naming_both_files(tmp_path: Path) -> None:
    sums, signature, keyring = _files(tmp_path)
    gpgv = RecordingGpgv(SignatureCheck(good=False, reason="Can't check signature: No public key"))
    with pytest.raises(VerificationError) as refused:
        check_signature(gpgv, sums, signature, keyring)
    assert str(refused.value) == (
        f"{signature}: bad signature on {sums} (gpgv: Can't check signature: No public key)"
    )
    assert gpgv.calls == [(signature, sums, keyring)]


def test_a_good_signature_passes(tmp_path: Path) -> None:
    sums, signature, keyring = _files(tmp_path)
    gpgv = RecordingGpgv(SignatureCheck(good=True, reason=""))
    check_signature(gpgv, sums, signature, keyring)
    assert gpgv.calls == [(signature, sums, keyring)]


@pytest.mark.parametrize("missing", [0, 1, 2])
def test_a_missing_file_is_named_before_gpgv_runs(tmp_path: Path, missing: int) -> None:
    files = _files(tmp_path)
    files[missing].unlink()
    gpgv = RecordingGpgv(SignatureCheck(good=True, reason=""))
    with pytest.raises(ConfigError, match=f"{files[missing]}: .* file not found"):
        check_signature(gpgv, *files)
    assert gpgv.calls == []
