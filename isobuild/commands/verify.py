"""`isobuild verify`: check an ISO against its checksum, signature, manifest and SBOM."""

from __future__ import annotations

import json
from pathlib import Path

import click

from isobuild.errors import VerificationError
from isobuild.release.verify_iso import Status, verify_iso


@click.command("verify")
@click.argument("iso", type=click.Path(path_type=Path))
@click.option(
    "--keyring",
    type=click.Path(path_type=Path),
    default=None,
    help="OpenPGP keyring (gpg --export) SHA256SUMS.gpg must verify against; with it a "
    "missing or bad signature fails.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--verbose", "-v", is_flag=True, help="List every check, not only failures.")
def verify(iso: Path, keyring: Path | None, as_json: bool, verbose: bool) -> None:
    """Check ISO with the files `isobuild build` wrote beside it: ISO.sha256, SHA256SUMS
    (+ SHA256SUMS.gpg with --keyring), build-manifest.json (every file on the ISO with its
    digest), sbom.cdx.json and the UEFI boot chain (same binaries, same signers).

    Exit 0 only when everything holds; 3 with each failure named otherwise; 2 for a
    --keyring gpgv cannot use (missing, armored, not a keyring) or a directory as ISO."""
    report = verify_iso(iso, keyring=keyring)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        for check in report.checks:
            if verbose or check.status is not Status.OK:
                click.echo(check.line())
        passed = sum(c.status is Status.OK for c in report.checks)
        click.echo(f"{iso.name}: {passed} checks passed, {len(report.failures)} failed")
    if not report.ok:
        first = report.failures[0]
        raise VerificationError(
            f"{iso}: {len(report.failures)} check(s) failed, first: {first.line().strip()}",
            hint=first.hint
            or "do not flash this ISO; get the ISO and the files beside it again from the release",
        )
