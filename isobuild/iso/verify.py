"""Checks on the base ISO before anything is written: pinned sha256, signed SHA256SUMS."""

from __future__ import annotations

import re
from pathlib import Path

from isobuild.errors import ConfigError, VerificationError
from isobuild.iso.gpgv import Gpgv

SHA256 = re.compile(r"[0-9a-f]{64}")


def normalize_sha256(text: str, what: str) -> str:
    value = text.strip().lower()
    if not SHA256.fullmatch(value):
        raise ConfigError(f"{what}: expected 64 hex digits, got {text!r}")
    return value


def check_digest(actual: str, expected: str, path: Path, source: str) -> None:
    if actual != expected:
        raise VerificationError(
            f"{path}: sha256 mismatch: expected {expected} ({source}), got {actual}",
            hint="the file is corrupt or not the release you meant: download it again",
        )


def expected_from_sums(sums_text: str, sums_path: Path, iso_name: str) -> str:
    """The digest SHA256SUMS lists for ``iso_name`` (``<hex> *name`` or ``<hex>  name``)."""
    listed = []
    for line in sums_text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2 and SHA256.fullmatch(parts[0]):
            if parts[1].lstrip("*") == iso_name:
                return parts[0]
            listed.append(parts[1].lstrip("*"))
    hint = "pass the SHA256SUMS of the release the ISO belongs to (names must match)"
    if len(listed) == 1:
        # A checksum file beside an ISO that was renamed since (a download that got "(1)").
        hint = f"it lists only {listed[0]}: if that is this ISO renamed, give it that name again"
    shown = ", ".join(listed[:3]) + (f" and {len(listed) - 3} more" if len(listed) > 3 else "")
    raise VerificationError(
        f"{sums_path}: no entry for {iso_name}" + (f" (it lists {shown})" if listed else ""),
        hint=hint,
    )


def check_signature(gpgv: Gpgv, sums: Path, signature: Path, keyring: Path) -> None:
    """gpgv must accept ``signature`` over ``sums`` with a key from ``keyring``."""
    for path, what in ((sums, "SHA256SUMS"), (signature, "signature"), (keyring, "keyring")):
        if not path.is_file():
            raise ConfigError(f"{path}: {what} file not found")
    check = gpgv.verify(signature, sums, keyring)
    if not check.good:
        raise VerificationError(
            f"{signature}: bad signature on {sums} (gpgv: {check.reason})",
            hint="get SHA256SUMS and SHA256SUMS.gpg again and name the keyring that signed them",
        )
