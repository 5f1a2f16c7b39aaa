"""`verify_iso`: is this ISO the one we built, whole, as its signed files describe it?

Checks, with the files ``isobuild build`` writes beside the ISO:
- ``<iso>.sha256`` and ``SHA256SUMS``: the ISO (and manifest, SBOM) have those digests;
- ``SHA256SUMS.gpg``: a good signature by a key in ``keyring`` (required when one is given);
- ``build-manifest.json``: every file it lists is on the ISO with that sha256;
- ``sbom.cdx.json``: every component it places on the ISO is there with that digest;
- the UEFI boot chain: each EFI binary the manifest lists is on the ISO, same sha256, same
  signers, and there is no other.
Every failure is named with the file, what was expected and what was found.
"""

from __future__ import annotations

import enum
import json
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isobuild.digest import sha256_file
from isobuild.errors import ConfigError, IsobuildError, SourceIsoError
from isobuild.iso.efi_inventory import read_inventory
from isobuild.iso.gpgv import Gpgv, RealGpgv
from isobuild.iso.source import BUILT, SourceIso
from isobuild.iso.verify import Sums, check_keyring, check_signature, read_sums
from isobuild.release import sbom, signing

MANIFEST = "build-manifest.json"
BUILT_HINT = BUILT.not_found_hint  # "pass the .iso file `build` wrote"


class Status(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # nothing to check it against (e.g. no --keyring)


@dataclass(frozen=True, kw_only=True)
class Check:
    check: str  # checksum | sha256sums | signature | manifest | sbom | efi
    subject: str  # the file or component checked
    status: Status
    expected: str | None = None
    found: str | None = None
    detail: str = ""
    hint: str | None = None  # what to do about a failure, when it is not "get the ISO again"

    def line(self) -> str:
        text = f"{self.status.value.upper():7} {self.check:10} {self.subject}"
        if self.status is Status.FAILED and (self.expected or self.found):
            text += f": expected {self.expected or '-'}, found {self.found or '-'}"
        if self.detail:
            text += f" ({self.detail})"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "check": self.check, "subject": self.subject, "status": self.status.value,
            "expected": self.expected, "found": self.found, "detail": self.detail,
            "hint": self.hint,
        }  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    iso: Path
    sha256: str
    checks: tuple[Check, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status is Status.FAILED]

    def as_json(self) -> dict[str, Any]:
        return {
            "iso": str(self.iso),
            "sha256": self.sha256,
            "ok": self.ok,
            "checks": [c.as_json() for c in self.checks],
            "failures": [c.as_json() for c in self.failures],
        }


def _compare(check: str, subject: str, expected: str, found: str | None, detail: str = "") -> Check:
    ok = found == expected
    return Check(check=check, subject=subject, status=Status.OK if ok else Status.FAILED,
                 expected=expected, found=found or "(absent)", detail=detail)  # fmt: skip


def _failed(check: str, subject: str, detail: str, **kw: str | None) -> Check:
    return Check(check=check, subject=subject, status=Status.FAILED, detail=detail, **kw)


def _malformed(check: str, sums: Sums, subject: str) -> list[Check]:
    """One failure for a checksum file's malformed lines (a binary file has thousands)."""
    if not sums.malformed:
        return []
    first, more = sums.malformed[0], len(sums.malformed) - 1
    detail = f"line {first.number} is malformed: {first.problem}"
    if more:
        detail += f"; {more} more malformed line{'s' if more > 1 else ''}"
    return [_failed(check, subject, detail)]


def _read_json(path: Path) -> tuple[dict[str, Any] | None, str]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, "not found beside the ISO"
    except (OSError, ValueError) as exc:
        return None, f"unreadable: {exc}"
    if not isinstance(document, dict):
        return None, "not a JSON object"
    return document, ""


def parse_sums(text: str) -> dict[str, str]:
    """``name → digest`` of a sha256sum-format file (pure; ``*`` binary marks allowed)."""
    return read_sums(text).entries


def _digest_checks(iso: Path, iso_sha: str, keyring: Path | None, gpgv: Gpgv) -> list[Check]:
    here = iso.parent
    checks: list[Check] = []
    own = iso.with_name(iso.name + ".sha256")
    if own.is_file():
        own_sums = read_sums(own.read_bytes().decode(errors="replace"))
        checks += _malformed("checksum", own_sums, own.name)
        listed = own_sums.entries.get(iso.name)
        if listed is not None or own_sums.problem_for(iso.name) is None:
            checks.append(_compare("checksum", own.name, listed or "(no entry)", iso_sha))
    else:
        checks.append(_failed("checksum", own.name, "not found beside the ISO"))
    sums = here / signing.SUMS
    if sums.is_file():
        read = read_sums(sums.read_bytes().decode(errors="replace"))
        checks += _malformed("sha256sums", read, sums.name)
        listed_sums = read.entries
        if iso.name not in listed_sums and read.problem_for(iso.name) is None:
            checks.append(_failed("sha256sums", iso.name, f"no entry in {sums.name}"))
        for name, digest in sorted(listed_sums.items()):
            path = here / name
            found = iso_sha if name == iso.name else sha256_file(path) if path.is_file() else None
            checks.append(_compare("sha256sums", name, digest, found, f"listed in {sums.name}"))
    else:
        checks.append(_failed("sha256sums", sums.name, "not found beside the ISO"))
    signature = here / signing.SIGNATURE
    if keyring is None:
        detail = "no --keyring given" if signature.is_file() else "unsigned build, no --keyring"
        checks.append(Check(check="signature", subject=signature.name, status=Status.SKIPPED,
                            detail=detail))  # fmt: skip
    elif not signature.is_file() or not sums.is_file():
        checks.append(_failed("signature", signature.name, "not found beside the ISO"))
    else:
        try:
            check_signature(gpgv, sums, signature, keyring)
            good = f"good signature on {sums.name} by a key in {keyring.name}"
            checks.append(
                Check(check="signature", subject=signature.name, status=Status.OK, detail=good)
            )
        except IsobuildError as exc:  # a bad signature, or one by a key not in the keyring
            checks.append(_failed("signature", signature.name, exc.message, hint=exc.hint))
    return checks


def _iso_digest(source: SourceIso, path: str) -> str | None:
    return source.sha256(path) if source.exists(path) else None


def _manifest_checks(
    source: SourceIso, manifest: dict[str, Any], iso_sha: str
) -> tuple[list[Check], dict[str, str]]:
    checks = []
    output = manifest.get("output") or {}
    checks.append(_compare("manifest", "output.sha256", str(output.get("sha256")), iso_sha,
                           "the ISO the manifest describes"))  # fmt: skip
    seen: dict[str, str] = {}
    for entry in manifest.get("files") or []:
        path, expected = str(entry.get("path")), str(entry.get("sha256"))
        seen[path] = _iso_digest(source, path) or ""
        checks.append(_compare("manifest", path, expected, seen[path] or None))
    return checks, seen


def _sbom_checks(
    source: SourceIso, document: dict[str, Any], iso_sha: str, known: dict[str, str]
) -> list[Check]:
    checks = []
    root = (document.get("metadata") or {}).get("component") or {}
    checks.append(_compare("sbom", "metadata.component", _hash(root) or "(none)", iso_sha,
                           "the ISO the SBOM describes"))  # fmt: skip
    for component in document.get("components") or []:
        where = _property(component, sbom.ISO_PATH)
        if where is None:
            continue
        found = known[where] if where in known else _iso_digest(source, where)
        ref = str(component.get("bom-ref") or where)
        checks.append(_compare("sbom", ref, _hash(component) or "(none)", found or None))
    return checks


def _hash(component: dict[str, Any]) -> str | None:
    return next(
        (h.get("content") for h in component.get("hashes") or [] if h.get("alg") == "SHA-256"),
        None,
    )


def _property(component: dict[str, Any], name: str) -> str | None:
    return next(
        (p.get("value") for p in component.get("properties") or [] if p.get("name") == name),
        None,
    )


def _efi_checks(iso: Path, recorded: Iterable[dict[str, Any]]) -> list[Check]:
    inventory = read_inventory(iso)
    found = inventory.by_key()
    checks = []
    listed: set[str] = set()
    for entry in recorded:
        key = f"{entry.get('location')}:{entry.get('path')}"
        listed.add(key)
        now = found.get(key)
        checks.append(
            _compare("efi", key, str(entry.get("sha256")), now.binary.sha256 if now else None)
        )
        if now is not None:
            signers = [s["signer"] for s in entry.get("signatures") or [] if s.get("valid")]
            checks.append(_compare("efi", f"{key} signers", ", ".join(signers) or "(unsigned)",
                                   ", ".join(now.binary.signers) or "(unsigned)"))  # fmt: skip
    for key in sorted(set(found) - listed):
        checks.append(_failed("efi", key, "an EFI binary the manifest does not list",
                              expected="(absent)", found=found[key].binary.sha256))  # fmt: skip
    checks += [_failed("efi", "inventory", problem) for problem in inventory.problems]
    return checks


def _check_iso_path(iso: Path) -> None:
    try:
        mode = iso.stat().st_mode
    except FileNotFoundError:
        raise SourceIsoError(f"{iso}: ISO not found", hint=BUILT_HINT) from None
    except OSError as exc:
        raise SourceIsoError(
            f"{iso}: cannot read the ISO: {exc.strerror}", hint=BUILT_HINT
        ) from exc
    if stat.S_ISDIR(mode):
        inside = sorted(iso.glob("*.iso"))
        raise ConfigError(
            f"{iso}: is a directory, expected an ISO file",
            hint=f"pass the ISO in it: {inside[0]}" if len(inside) == 1 else BUILT_HINT,
        )
    if not stat.S_ISREG(mode):
        raise SourceIsoError(f"{iso}: is not a regular file, expected an ISO image",
                             hint=BUILT_HINT)  # fmt: skip


def verify_iso(iso: Path, *, keyring: Path | None = None, gpgv: Gpgv | None = None) -> VerifyReport:
    """Every check above on ``iso`` and the files beside it (see the module docstring).

    ``keyring``: the OpenPGP keyring the signature must verify against; with it a missing
    or bad ``SHA256SUMS.gpg`` fails, without it the signature is reported as not checked.
    The caller decides what to do with the report (``report.ok``, ``report.failures``).
    ``gpgv``: the signature checker (default: the gpgv program).
    A keyring gpgv cannot use, or a directory given as ``iso``, is a :class:`ConfigError`,
    raised before anything is read.
    """
    _check_iso_path(iso)
    if keyring is not None:
        check_keyring(keyring)
    iso_sha = sha256_file(iso)
    checks = _digest_checks(iso, iso_sha, keyring, gpgv or RealGpgv())
    manifest, problem = _read_json(iso.parent / MANIFEST)
    document, sbom_problem = _read_json(iso.parent / sbom.FILE_NAME)
    with SourceIso(iso, role=BUILT) as source:
        known: dict[str, str] = {}
        if manifest is None:
            checks.append(_failed("manifest", MANIFEST, problem))
        else:
            manifest_checks, known = _manifest_checks(source, manifest, iso_sha)
            checks += manifest_checks
        if document is None:
            checks.append(_failed("sbom", sbom.FILE_NAME, sbom_problem))
        else:
            checks += _sbom_checks(source, document, iso_sha, known)
    if manifest is not None:
        checks += _efi_checks(iso, manifest.get("efi_binaries") or [])
    return VerifyReport(iso=iso, sha256=iso_sha, checks=tuple(checks))
