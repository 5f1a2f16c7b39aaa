"""isobuild.iso.gpgv and verify.check_signature: gpgv's verdict read, files checked first."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from isobuild.errors import ConfigError, ExitCode, VerificationError
from isobuild.iso.gpgv import SignatureCheck, read_status, refusal_reason
from isobuild.iso.verify import KEYRING_HINT, check_keyring, check_signature

# gpgv 2.2's stderr for a tampered file and for an unknown key (recorded on Debian 12).
BAD = """gpgv: Signature made Thu Dec  3 10:00:00 2026 UTC
gpgv:                using RSA key 0123456789ABCDEF0123456789ABCDEF01234567
gpgv: BAD signature from "Signer <t@example.invalid>" [unknown]
"""
NO_KEY = """gpgv: Signature made Thu Dec  3 10:00:00 2026 UTC
gpgv:                using RSA key 0123456789ABCDEF0123456789ABCDEF01234567
gpgv: Can't check signature: No public key
"""


# The first bytes of `gpg --export`: an old-format public-key packet (tag 6).
KEY_PACKET = b"\x98\x33\x04"


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
        path.write_bytes(KEY_PACKET)
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
    with pytest.raises(ConfigError, match=f"{files[missing]}: .*file not found"):
        check_signature(gpgv, *files)
    assert gpgv.calls == []


# `gpgv --status-fd 1` on Debian 12 (gpgv 2.2.40), for the same signature each time.
FPR = "43D4D5C7C93D3888BCD71E6B2ED9095F8A17F653"
GOOD_STATUS = f"""[GNUPG:] NEWSIG rel@example.invalid
[GNUPG:] KEY_CONSIDERED {FPR} 0
[GNUPG:] SIG_ID zzNpAl4kwqqugBibCjYSXQRBip8 2026-12-08 1796691283
[GNUPG:] KEY_CONSIDERED {FPR} 0
[GNUPG:] GOODSIG 2ED9095F8A17F653 rel@example.invalid
[GNUPG:] VALIDSIG {FPR} 2026-12-08 1796691283 0 4 0 22 8 00 {FPR}
"""
BAD_STATUS = f"""[GNUPG:] NEWSIG rel@example.invalid
[GNUPG:] KEY_CONSIDERED {FPR} 0
[GNUPG:] KEY_CONSIDERED {FPR} 0
[GNUPG:] BADSIG 2ED9095F8A17F653 rel@example.invalid
"""
NO_KEY_STATUS = f"""[GNUPG:] NEWSIG rel@example.invalid
[GNUPG:] ERRSIG 2ED9095F8A17F653 22 8 00 1796691283 9 {FPR}
[GNUPG:] NO_PUBKEY 2ED9095F8A17F653
"""


def test_the_verdict_comes_from_the_status_lines() -> None:
    assert read_status(GOOD_STATUS, "", 0) == SignatureCheck(good=True, reason="")
    bad = read_status(BAD_STATUS, BAD, 1)
    assert bad == SignatureCheck(
        good=False, reason='BAD signature from "Signer <t@example.invalid>" [unknown]'
    )
    # Translated human text (LANG=de_DE) changes nothing: the status lines decide.
    german = "gpgv: Signatur kann nicht geprüft werden: Kein öffentlicher Schlüssel\n"
    assert read_status(NO_KEY_STATUS, german, 2).missing_key == FPR
    # gpg before 2.2.7 writes no fingerprint in ERRSIG: the key ID then.
    old = NO_KEY_STATUS.replace(f" {FPR}\n", "\n")
    assert read_status(old, NO_KEY, 2).missing_key == "2ED9095F8A17F653"


def test_only_a_good_status_and_exit_0_together_are_good() -> None:
    assert not read_status(GOOD_STATUS, "", 1).good
    assert not read_status("", "", 0).good
    assert not read_status(GOOD_STATUS + BAD_STATUS, "", 0).good
    nodata = read_status("[GNUPG:] NODATA 1\n[GNUPG:] NODATA 2\n", "gpgv: no valid OpenPGP data"
                         " found.\n", 2)  # fmt: skip
    assert nodata == SignatureCheck(good=False, reason="no valid OpenPGP data found.")


def test_a_signature_by_a_key_not_in_the_keyring_is_named_as_such(tmp_path: Path) -> None:
    sums, signature, keyring = _files(tmp_path)
    gpgv = RecordingGpgv(SignatureCheck(good=False, reason="Can't check signature: No public key",
                                        missing_key=FPR))  # fmt: skip
    with pytest.raises(VerificationError) as refused:
        check_signature(gpgv, sums, signature, keyring)
    assert refused.value.message == (
        f"{signature}: signed by key {FPR}, which is not in the keyring {keyring}: the signature "
        "on SHA256SUMS could not be checked"
    )
    assert refused.value.hint == (
        f"if {FPR} is the release key, export it as a binary keyring (gpg --export {FPR} > "
        "release.gpg) and pass --keyring release.gpg; if it is not, these files were not "
        "signed by the key you trust"
    )


@pytest.mark.parametrize(
    ("content", "message", "hint"),
    [
        (None, "keyring file not found", "check the path, or export the release key as a "
         "binary keyring: gpg --export KEYID > keyring.gpg"),
        (b"", "the keyring is empty", KEYRING_HINT),
        (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEaxdV\n", "an ASCII-armored key file; "
         "gpgv reads only binary keyrings", "convert it: gpg --dearmor < {k} > {d}/K-binary.gpg, "
         "then pass --keyring {d}/K-binary.gpg"),
        (b"hello\n", "not an OpenPGP keyring (no key packets)", KEYRING_HINT),
        # 'k' is 0x6b: an odd first byte is no packet tag either, only the top bit counts.
        (b"keys of the release team\n", "not an OpenPGP keyring (no key packets)",
         KEYRING_HINT),
    ],
)  # fmt: skip
def test_a_keyring_gpgv_cannot_use_is_a_usage_error_before_gpgv_runs(
    tmp_path: Path, content: bytes | None, message: str, hint: str
) -> None:
    sums, signature, _ = _files(tmp_path)
    keyring = tmp_path / "K.gpg"
    if content is not None:
        keyring.write_bytes(content)
    gpgv = RecordingGpgv(SignatureCheck(good=True, reason=""))
    with pytest.raises(ConfigError) as refused:
        check_signature(gpgv, sums, signature, keyring)
    assert refused.value.exit_code == ExitCode.USAGE
    assert refused.value.message == f"--keyring {keyring}: {message}"
    assert refused.value.hint == hint.format(k=keyring, d=tmp_path)
    assert gpgv.calls == []


def test_the_dearmor_command_is_quoted_for_the_shell(tmp_path: Path) -> None:
    keyring = tmp_path / "release key.asc"
    keyring.write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")
    with pytest.raises(ConfigError) as refused:
        check_keyring(keyring)
    assert refused.value.hint == (
        f"convert it: gpg --dearmor < '{keyring}' > '{tmp_path}/release key.gpg', then pass "
        f"--keyring '{tmp_path}/release key.gpg'"
    )


def test_a_keybox_and_a_binary_export_are_keyrings(tmp_path: Path) -> None:
    keybox = tmp_path / "pubring.kbx"
    keybox.write_bytes(b"\x00\x00\x00\x20\x01\x01\x00\x02KBXf" + bytes(20))
    check_keyring(keybox)
    export = tmp_path / "release.gpg"
    export.write_bytes(b"\xc6\x33\x04")  # new-format packet header
    check_keyring(export)


def test_a_directory_or_a_fifo_is_not_a_keyring(tmp_path: Path) -> None:
    fifo = tmp_path / "keyring.gpg"
    os.mkfifo(fifo)  # never opened: a reader would wait for a writer
    for path, kind in ((tmp_path, "a directory"), (fifo, "not a regular file")):
        with pytest.raises(ConfigError) as refused:
            check_keyring(path, "--trusted-keyring")
        assert refused.value.message == (
            f"--trusted-keyring {path}: is {kind}, expected a keyring file"
        )
        assert refused.value.hint == KEYRING_HINT


def test_a_keyring_that_cannot_be_read_says_why_and_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "keys").write_bytes(KEY_PACKET)
    keyring = tmp_path / "keys" / "release.gpg"  # under a file: ENOTDIR, not "not found"
    with pytest.raises(ConfigError) as refused:
        check_keyring(keyring)
    assert refused.value.exit_code == ExitCode.USAGE
    assert refused.value.message == f"--keyring {keyring}: cannot read the keyring: Not a directory"
    assert refused.value.hint == (
        "make it readable for this user (see ls -l) or pass another --keyring"
    )


def test_only_the_head_of_a_binary_keyring_tells_an_armored_file(tmp_path: Path) -> None:
    # A user ID or notation may quote an armor header; an armored file starts with one.
    marker = b"-----BEGIN PGP "
    keyring = tmp_path / "release.gpg"
    keyring.write_bytes(KEY_PACKET + bytes(4096 - len(KEY_PACKET) - len(marker) + 1) + marker)
    check_keyring(keyring)  # the marker ends one byte past the 4 KiB read
    keyring.write_bytes(KEY_PACKET + bytes(4096 - len(KEY_PACKET) - len(marker)) + marker)
    with pytest.raises(ConfigError, match="an ASCII-armored key file"):
        check_keyring(keyring)
