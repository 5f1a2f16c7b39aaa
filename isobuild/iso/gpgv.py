"""gpgv behind a small Protocol, like xorriso: detached signatures checked against a keyring."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from isobuild.run import run


@dataclass(frozen=True, kw_only=True)
class SignatureCheck:
    good: bool
    reason: str  # gpgv's own words for a refusal ("BAD signature ...", "Can't check ...")
    # The signer's fingerprint (else key ID) when the keyring lacks its key: gpgv could not
    # check the signature at all, which is not the same as a bad one.
    missing_key: str | None = None


class Gpgv(Protocol):
    """What checking a detached signature needs (a fake implements this in tests)."""

    def verify(self, signature: Path, data: Path, keyring: Path) -> SignatureCheck: ...


class RealGpgv:
    """The gpgv program: only the keys in ``keyring`` are trusted, never the user's own."""

    def verify(self, signature: Path, data: Path, keyring: Path) -> SignatureCheck:
        # The verdict comes from the status lines (stable, never translated); stderr only
        # supplies the words shown to the user.
        result = run(
            ["gpgv", "--status-fd", "1", "--keyring", keyring.resolve(), signature, data],
            capture=True,
            check=False,
        )
        return read_status(result.stdout, result.stderr, result.returncode)


def read_status(status: str, stderr: str, returncode: int) -> SignatureCheck:
    """gpgv's verdict from its ``--status-fd`` lines (pure; doc/DETAILS in GnuPG).

    Good only with a GOODSIG or VALIDSIG, no BADSIG or ERRSIG, and exit status 0. An ERRSIG
    followed by NO_PUBKEY means the keyring lacks the signer's key.
    """
    words: dict[str, list[str]] = {}
    for line in status.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "[GNUPG:]":
            words.setdefault(fields[1], fields[2:])
    if (
        returncode == 0
        and ("GOODSIG" in words or "VALIDSIG" in words)
        and not {"BADSIG", "ERRSIG"} & words.keys()
    ):
        return SignatureCheck(good=True, reason="")
    missing = None
    if "NO_PUBKEY" in words:
        errsig = words.get("ERRSIG", [])
        # ERRSIG <keyid> <pkalgo> <hashalgo> <sig_class> <time> <rc> <fpr> (gpg >= 2.2.7)
        missing = errsig[6] if len(errsig) > 6 and errsig[6] != "-" else None
        missing = missing or (words["NO_PUBKEY"] or ["?"])[0]
    return SignatureCheck(good=False, reason=refusal_reason(stderr), missing_key=missing)


def refusal_reason(stderr: str) -> str:
    """The line of gpgv's stderr that says why it refused (else its last line)."""
    lines = stderr.strip().splitlines()
    reason = next(
        (line for line in lines if "BAD" in line or "Can't" in line),
        lines[-1] if lines else "rejected",
    )
    return reason.removeprefix("gpgv: ")
