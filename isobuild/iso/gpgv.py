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


class Gpgv(Protocol):
    """What checking a detached signature needs (a fake implements this in tests)."""

    def verify(self, signature: Path, data: Path, keyring: Path) -> SignatureCheck: ...


class RealGpgv:
    """The gpgv program: only the keys in ``keyring`` are trusted, never the user's own."""

    def verify(self, signature: Path, data: Path, keyring: Path) -> SignatureCheck:
        result = run(
            ["gpgv", "--keyring", keyring.resolve(), signature, data], capture=True, check=False
        )
        if result.returncode == 0:
            return SignatureCheck(good=True, reason="")
        return SignatureCheck(good=False, reason=refusal_reason(result.stderr))


def refusal_reason(stderr: str) -> str:
    """The line of gpgv's stderr that says why it refused (else its last line)."""
    lines = stderr.strip().splitlines()
    reason = next(
        (line for line in lines if "BAD" in line or "Can't" in line),
        lines[-1] if lines else "rejected",
    )
    return reason.removeprefix("gpgv: ")
