"""Checks on the base ISO before anything is written: pinned sha256, signed SHA256SUMS."""

from __future__ import annotations

import re
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

from isobuild.errors import ConfigError, VerificationError
from isobuild.iso.gpgv import Gpgv

SHA256 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_BSD = re.compile(r"SHA256 \((.+)\) ?= ?(\S*)")
# Control characters other than tab, and what a decoder put in place of invalid bytes.
_BINARY = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]")
SUMS_FORMAT = "each line must be '<sha256 in hex>  <file name>', as sha256sum writes it"


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


@dataclass(frozen=True, kw_only=True)
class Malformed:
    """A line of a checksum file that is not ``<hex digest> [*]<name>``."""

    number: int  # 1-based
    name: str | None  # the file name it seems to be for, if it has one
    problem: str


@dataclass(frozen=True, kw_only=True)
class Sums:
    """A sha256sum-format file, read (pure): its entries and the lines that are not."""

    entries: dict[str, str]  # file name → lowercase digest; the first line for a name wins
    malformed: tuple[Malformed, ...]

    def problem_for(self, name: str) -> Malformed | None:
        """The malformed line to report when ``name`` has no entry, if one explains it:
        a line for ``name`` itself, else the first one of a file without any entry."""
        for line in self.malformed:
            if line.name == name:
                return line
        return self.malformed[0] if self.malformed and not self.entries else None


def read_sums(text: str) -> Sums:
    """Entries and malformed lines of ``sha256sum`` output (``<hex> *name``, ``<hex>  name``,
    ``SHA256 (name) = <hex>``).

    Digests are accepted in either case (Windows' Get-FileHash writes upper case) and
    returned lower case; blank lines, ``#`` comments and a byte order mark are skipped.
    """
    entries: dict[str, str] = {}
    malformed: list[Malformed] = []
    # Numbered by "\n" as editors and sha256sum count them (splitlines also breaks at
    # \r, \x1c and more).
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        bsd = _BSD.fullmatch(line)  # `sha256sum --tag`: SHA256 (name) = hex
        parts = [bsd[2], bsd[1]] if bsd else line.split(maxsplit=1)
        name = parts[1].lstrip("*") if len(parts) == 2 else None
        digest = parts[0]
        if name and SHA256.fullmatch(digest.lower()):
            entries.setdefault(name, digest.lower())
            continue
        if _BINARY.search(line):
            problem = "binary data, not a checksum line"
        elif not _HEX.fullmatch(digest):
            problem = f"{_clip(digest)} is not a hex sha256 digest"
        elif len(digest) != 64:
            problem = f"the digest has {len(digest)} hex digits, expected 64"
        else:
            problem = "no file name after the digest"
        malformed.append(Malformed(number=number, name=name, problem=problem))
    return Sums(entries=entries, malformed=tuple(malformed))


def _clip(text: str) -> str:
    return repr(text if len(text) <= 24 else text[:24] + "...")


def malformed_error(sums_path: Path, line: Malformed) -> VerificationError:
    return VerificationError(
        f"{sums_path}: line {line.number} is malformed: {line.problem}",
        hint=f"{SUMS_FORMAT}; fix the file or get it again",
    )


def expected_from_sums(sums_text: str, sums_path: Path, iso_name: str) -> str:
    """The digest SHA256SUMS lists for ``iso_name`` (``<hex> *name`` or ``<hex>  name``)."""
    sums = read_sums(sums_text)
    if iso_name in sums.entries:
        return sums.entries[iso_name]
    bad_line = sums.problem_for(iso_name)
    if bad_line is not None:
        raise malformed_error(sums_path, bad_line)
    listed = list(sums.entries)
    hint = "pass the SHA256SUMS of the release the ISO belongs to (names must match)"
    if len(listed) == 1:
        # A checksum file beside an ISO that was renamed since (a download that got "(1)").
        hint = f"it lists only {listed[0]}: if that is this ISO renamed, give it that name again"
    shown = ", ".join(listed[:3]) + (f" and {len(listed) - 3} more" if len(listed) > 3 else "")
    raise VerificationError(
        f"{sums_path}: no entry for {iso_name}" + (f" (it lists {shown})" if listed else ""),
        hint=hint,
    )


KEYRING_HINT = "export the release key as a binary keyring: gpg --export KEYID > keyring.gpg"


def check_keyring(keyring: Path, option: str = "--keyring") -> None:
    """Refuse a keyring gpgv cannot use, as a usage error, before any verifying starts.

    Missing, unreadable, empty, ASCII-armored (gpgv reads only binary keyrings: it would
    say "No public key") or no OpenPGP data at all.
    """
    try:
        mode = keyring.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise ConfigError(
                f"{option} {keyring}: is {kind}, expected a keyring file", hint=KEYRING_HINT
            )
        with keyring.open("rb") as handle:
            head = handle.read(4096)
    except FileNotFoundError:
        raise ConfigError(
            f"{option} {keyring}: keyring file not found", hint=f"check the path, or {KEYRING_HINT}"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{option} {keyring}: cannot read the keyring: {exc.strerror}",
            hint=f"make it readable for this user (see ls -l) or pass another {option}",
        ) from exc
    if not head:
        raise ConfigError(f"{option} {keyring}: the keyring is empty", hint=KEYRING_HINT)
    if b"-----BEGIN PGP " in head:
        binary = keyring.with_suffix(".gpg")
        if binary.name == keyring.name:
            binary = keyring.with_name(f"{keyring.stem}-binary.gpg")
        raise ConfigError(
            f"{option} {keyring}: an ASCII-armored key file; gpgv reads only binary keyrings",
            hint=f"convert it: gpg --dearmor < {shlex.quote(str(keyring))} > "
            f"{shlex.quote(str(binary))}, then pass {option} {shlex.quote(str(binary))}",
        )
    # An OpenPGP packet starts with a tag byte with its top bit set; a keybox
    # (pubring.kbx) with its 32-byte header blob, "KBXf" at byte 8.
    if not head[0] & 0x80 and head[8:12] != b"KBXf":
        raise ConfigError(
            f"{option} {keyring}: not an OpenPGP keyring (no key packets)", hint=KEYRING_HINT
        )


def check_signature(gpgv: Gpgv, sums: Path, signature: Path, keyring: Path) -> None:
    """gpgv must accept ``signature`` over ``sums`` with a key from ``keyring``.

    Unusable files are usage errors (:class:`ConfigError`); a refused signature, or one by
    a key the keyring does not hold, is a :class:`VerificationError`.
    """
    for path, what in ((sums, "SHA256SUMS"), (signature, "signature")):
        if not path.is_file():
            raise ConfigError(f"{path}: {what} file not found")
    check_keyring(keyring)
    check = gpgv.verify(signature, sums, keyring)
    if check.good:
        return
    if check.missing_key is not None:
        # Either the wrong keyring or a signature by a stranger: gpgv cannot tell which.
        raise VerificationError(
            f"{signature}: signed by key {check.missing_key}, which is not in the keyring "
            f"{keyring}: the signature on {sums.name} could not be checked",
            hint=f"if {check.missing_key} is the release key, export it as a binary keyring "
            f"(gpg --export {check.missing_key} > release.gpg) and pass --keyring release.gpg; "
            "if it is not, these files were not signed by the key you trust",
        )
    raise VerificationError(
        f"{signature}: bad signature on {sums} (gpgv: {check.reason})",
        hint="get SHA256SUMS and SHA256SUMS.gpg again and name the keyring that signed them",
    )
