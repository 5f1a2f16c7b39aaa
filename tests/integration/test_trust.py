"""Signed outputs and `isobuild verify`, with real gpg/gpgv and a throwaway keyring.

One signed build (module scope); each refusal test tampers with its own copy of the set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from isobuild.errors import ConfigError, ExitCode, VerificationError
from isobuild.iso.gpgv import RealGpgv
from isobuild.iso.verify import check_signature
from isobuild.release import sbom
from isobuild.release.signing import SIGNATURE, SUMS, check_key, sign_file
from isobuild.release.verify_iso import verify_iso
from tests.conftest import TESTS_DIR, require_tool
from tests.fixtures.appliance_iso import build_appliance

if TYPE_CHECKING:
    from tests.fixtures.standin_artifacts import StandinArtifacts

ISOBUILD = [sys.executable, "-m", "isobuild.cli"]
ISO_NAME = "alga-appliance-0.1.0.iso"


@dataclass(frozen=True)
class Keys:
    home: Path
    good: str  # fingerprint, also in good_file (armored secret key, no passphrase)
    good_file: Path
    good_keyring: Path  # its public key, as gpgv wants it
    wrong_keyring: Path  # another key's public key
    armored_keyring: Path  # the good key's public key, ASCII-armored (gpg --armor --export)
    expired_file: Path
    revoked_file: Path
    protected: str  # fingerprint of a key with a passphrase, also in protected_file
    protected_file: Path


def _gpg(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["gpg", "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", "", *args],
        env={**os.environ, "GNUPGHOME": str(home)}, check=True, capture_output=True, text=True,
    )  # fmt: skip


def _new_key(home: Path, uid: str, *extra: str, expire: str = "never") -> str:
    _gpg(home, *extra, "--quick-gen-key", uid, "ed25519", "sign", expire)
    out = _gpg(home, "--with-colons", "--list-secret-keys", uid).stdout
    return next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    """A throwaway GnuPG home: a good key, another key, an expired one and a revoked one."""
    require_tool("gpg", "gnupg")
    require_tool("gpgv", "gpgv")
    base = tmp_path_factory.mktemp("keys")
    home = base / "gnupg"
    home.mkdir(mode=0o700)
    try:
        good = _new_key(home, "release@example.invalid")
        wrong = _new_key(home, "someone-else@example.invalid")
        # Made in the past with a one-day life: expired now.
        expired = _new_key(home, "expired@example.invalid",
                           "--faked-system-time", "20200101T000000", expire="1d")  # fmt: skip
        revoked = _new_key(home, "revoked@example.invalid")
        protected = _new_key(home, "protected@example.invalid", "--passphrase", "pw")
        certificate = (home / "openpgp-revocs.d" / f"{revoked}.rev").read_text()
        (base / "revoke.asc").write_text(certificate.replace(":-----BEGIN", "-----BEGIN"))
        _gpg(home, "--import", str(base / "revoke.asc"))
        files = {}
        for name, fpr in (("good", good), ("expired", expired), ("revoked", revoked)):
            files[name] = base / f"{name}.asc"
            files[name].write_text(_gpg(home, "--armor", "--export-secret-keys", fpr).stdout)
        files["protected"] = base / "protected.asc"
        files["protected"].write_text(_gpg(home, "--passphrase", "pw", "--armor",
                                           "--export-secret-keys", protected).stdout)  # fmt: skip
        (base / "armored.asc").write_text(_gpg(home, "--armor", "--export", good).stdout)
        keyrings = {}
        for name, fpr in (("good", good), ("wrong", wrong)):
            keyrings[name] = base / f"{name}.gpg"
            exported = subprocess.run(
                ["gpg", "--batch", "--export", fpr], env={**os.environ, "GNUPGHOME": str(home)},
                check=True, capture_output=True,
            )  # fmt: skip
            keyrings[name].write_bytes(exported.stdout)
        yield Keys(home=home, good=good, good_file=files["good"],
                   good_keyring=keyrings["good"], wrong_keyring=keyrings["wrong"],
                   armored_keyring=base / "armored.asc",
                   expired_file=files["expired"], revoked_file=files["revoked"],
                   protected=protected, protected_file=files["protected"])  # fmt: skip
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env={**os.environ, "GNUPGHOME": str(home)},
                       check=False, capture_output=True)  # fmt: skip


def _build_cli(
    base_iso: Path, artifacts: StandinArtifacts, out: Path, cache: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ISOBUILD, "--quiet", "build", "--base-iso", str(base_iso), "--output-dir", str(out),
         "--lock", str(artifacts.lock_path), "--mirror", str(artifacts.directory),
         "--cache-dir", str(cache), *extra],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def signed_build(
    standin_base_iso: Path,
    standin_artifacts_dir: StandinArtifacts,
    isobuild_cache: Path,
    keys: Keys,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``isobuild build --sign-key FILE`` through the CLI: the output directory."""
    out = tmp_path_factory.mktemp("signed") / "out"
    done = _build_cli(standin_base_iso, standin_artifacts_dir, out, isobuild_cache,
                      "--sign-key", str(keys.good_file))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out, done


def _verify(iso: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([*ISOBUILD, "verify", str(iso), "--json", *extra],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return done.returncode, json.loads(done.stdout)


def _failures(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f["check"], f["subject"]): f for f in document["failures"]}


def test_signed_build_verifies_with_gpgv_sha256sum_and_isobuild_verify(
    signed_build: tuple[Path, subprocess.CompletedProcess[str]], keys: Keys
) -> None:
    out, done = signed_build
    assert {p.name for p in out.iterdir()} == {
        ISO_NAME, f"{ISO_NAME}.sha256", "build-manifest.json", sbom.FILE_NAME, SUMS, SIGNATURE,
    }  # fmt: skip
    assert f"signed by {keys.good}" in done.stdout
    # What a customer runs: nothing of isobuild needed.
    gpgv = subprocess.run(["gpgv", "--keyring", str(keys.good_keyring), SIGNATURE, SUMS],
                          cwd=out, capture_output=True, text=True, check=False)  # fmt: skip
    assert gpgv.returncode == 0, gpgv.stderr
    check = subprocess.run(["sha256sum", "-c", SUMS], cwd=out, capture_output=True, text=True,
                           check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout
    assert sorted(check.stdout.split()) == sorted(
        [f"{ISO_NAME}:", "OK", "build-manifest.json:", "OK", f"{sbom.FILE_NAME}:", "OK"]
    )
    code, document = _verify(out / ISO_NAME, "--keyring", str(keys.good_keyring))
    assert code == 0, document["failures"]
    assert document["ok"] is True
    statuses = {c["check"] for c in document["checks"] if c["status"] == "ok"}
    assert statuses == {"checksum", "sha256sums", "signature", "manifest", "sbom", "efi"}


def test_the_key_never_enters_the_outputs_or_the_output(
    signed_build: tuple[Path, subprocess.CompletedProcess[str]], keys: Keys
) -> None:
    out, done = signed_build
    secret = keys.good_file.read_text()
    body = secret.splitlines()[3]  # a line of the armored secret key material
    for path in out.iterdir():
        data = path.read_bytes()
        assert b"PRIVATE KEY BLOCK" not in data, path
        assert body.encode() not in data, path
    assert body not in done.stdout + done.stderr
    manifest = (out / "build-manifest.json").read_text()
    assert str(keys.good_file) not in manifest
    # The throwaway GnuPG home the key file was imported into is gone.
    assert not list(Path(tempfile.gettempdir()).glob("isobuild-gnupg-*"))


def test_a_key_in_gpg_agent_signs_by_fingerprint(
    keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GNUPGHOME", str(keys.home))
    sums = tmp_path / SUMS
    sums.write_text(f"{'0' * 64}  x.iso\n")
    assert sign_file(sums, tmp_path / SIGNATURE, keys.good) == keys.good
    gpgv = subprocess.run(["gpgv", "--keyring", str(keys.good_keyring), str(tmp_path / SIGNATURE),
                           str(sums)], capture_output=True, check=False)  # fmt: skip
    assert gpgv.returncode == 0


def test_a_passphrase_protected_key_file_is_refused_naming_the_fingerprint_route(
    keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as refused:
        check_key(str(keys.protected_file))
    assert refused.value.message == (
        f"{keys.protected_file}: the secret key {keys.protected} is passphrase-protected; a key "
        "file must have no passphrase (it is imported into a throwaway GnuPG home, where "
        "nothing can unlock it)"
    )
    assert refused.value.hint is not None
    assert f"--sign-key {keys.protected} or signing.key: {keys.protected}" in refused.value.hint
    assert not list(Path(tempfile.gettempdir()).glob("isobuild-gnupg-*"))
    # The route the hint names: the key in the user's own gpg, unlocked in gpg-agent.
    monkeypatch.setenv("GNUPGHOME", str(keys.home))
    sums = tmp_path / SUMS
    sums.write_text(f"{'0' * 64}  x.iso\n")
    _gpg(keys.home, "--passphrase", "pw", "--local-user", keys.protected, "--output",
         str(tmp_path / "unlock.sig"), "--detach-sign", str(sums))  # fmt: skip
    assert sign_file(sums, tmp_path / SIGNATURE, keys.protected) == keys.protected


@pytest.mark.parametrize(
    ("which", "message", "hint"),
    [
        ("public", "holds no secret key (a public key?): it cannot sign",
         "export the secret key: `gpg --armor --export-secret-keys FINGERPRINT > "
         "release-key.asc`, or give the fingerprint of a key in gpg-agent (--sign-key or the "
         "build config's signing.key)"),
        ("text", "not an OpenPGP key file (gpg found no OpenPGP data in it)",
         "give a secret key exported with `gpg --armor --export-secret-keys FINGERPRINT > "
         "release-key.asc`, or the fingerprint of a key in gpg-agent (--sign-key or the build "
         "config's signing.key)"),
    ],
)  # fmt: skip
def test_a_key_file_that_cannot_sign_says_what_to_give_instead(
    keys: Keys, which: str, message: str, hint: str
) -> None:
    key = keys.armored_keyring if which == "public" else keys.good_keyring.with_name("notes.txt")
    if which == "text":
        key.write_text("the release key is in the safe\n")
    with pytest.raises(ConfigError) as refused:
        check_key(str(key))
    assert refused.value.message == f"{key}: {message}"
    assert refused.value.hint == hint


def test_gpgv_tells_a_bad_signature_from_a_key_not_in_the_keyring(
    keys: Keys, tmp_path: Path
) -> None:
    sums, signature = tmp_path / SUMS, tmp_path / SIGNATURE
    sums.write_text(f"{'0' * 64}  x.iso\n")
    sign_file(sums, signature, str(keys.good_file))
    check_signature(RealGpgv(), sums, signature, keys.good_keyring)  # good: no error

    with pytest.raises(VerificationError) as wrong:
        check_signature(RealGpgv(), sums, signature, keys.wrong_keyring)
    assert wrong.value.message == (
        f"{signature}: signed by key {keys.good}, which is not in the keyring "
        f"{keys.wrong_keyring}: the signature on SHA256SUMS could not be checked"
    )
    assert f"gpg --export {keys.good} > release.gpg" in (wrong.value.hint or "")

    with pytest.raises(ConfigError) as armored:
        check_signature(RealGpgv(), sums, signature, keys.armored_keyring)
    assert armored.value.message == (
        f"--keyring {keys.armored_keyring}: an ASCII-armored key file; gpgv reads only binary "
        "keyrings"
    )
    assert (armored.value.hint or "").startswith("convert it: gpg --dearmor < ")

    sums.write_text(f"{'1' * 64}  x.iso\n")
    with pytest.raises(VerificationError) as bad:
        check_signature(RealGpgv(), sums, signature, keys.good_keyring)
    assert bad.value.message == (
        f'{signature}: bad signature on {sums} (gpgv: BAD signature from "release@example.invalid")'
    )


@pytest.mark.parametrize(("which", "message"), [("expired", "expired on 2020-01-02"),
                                                ("revoked", "is revoked")])  # fmt: skip
def test_expired_and_revoked_keys_are_refused_before_building(
    standin_base_iso: Path, standin_artifacts_dir: StandinArtifacts, isobuild_cache: Path,
    keys: Keys, tmp_path: Path, which: str, message: str,
) -> None:  # fmt: skip
    key = keys.expired_file if which == "expired" else keys.revoked_file
    out = tmp_path / "out"
    done = _build_cli(standin_base_iso, standin_artifacts_dir, out, isobuild_cache,
                      "--sign-key", str(key))  # fmt: skip
    assert done.returncode == ExitCode.INPUT, done.stderr
    assert message in done.stderr
    assert not out.exists()


@pytest.fixture
def copy(signed_build: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> Path:
    """A private copy of the signed output set to tamper with."""
    out = tmp_path / "copy"
    shutil.copytree(signed_build[0], out)
    return out


def test_verify_refuses_a_flipped_byte_in_the_iso(copy: Path, keys: Keys) -> None:
    iso = copy / ISO_NAME
    with iso.open("r+b") as handle:
        handle.seek(iso.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0x01]))
    code, document = _verify(iso, "--keyring", str(keys.good_keyring))
    assert code == ExitCode.INPUT
    failures = _failures(document)
    listed = failures[("sha256sums", ISO_NAME)]
    assert listed["expected"] != listed["found"]
    assert listed["found"] == document["sha256"]
    assert ("checksum", f"{ISO_NAME}.sha256") in failures


def test_verify_refuses_a_changed_checksum_file(copy: Path, keys: Keys) -> None:
    sums = copy / SUMS
    lines = sums.read_text().splitlines()
    lines[0] = "0" * 64 + lines[0][64:]
    sums.write_text("\n".join(lines) + "\n")
    code, document = _verify(copy / ISO_NAME, "--keyring", str(keys.good_keyring))
    assert code == ExitCode.INPUT
    failures = _failures(document)
    assert "bad signature" in failures[("signature", SIGNATURE)]["detail"]
    name = lines[0].split()[1]
    assert failures[("sha256sums", name)]["expected"] == "0" * 64


def test_verify_refuses_a_bad_signature(copy: Path, keys: Keys) -> None:
    signature = copy / SIGNATURE
    text = signature.read_text().splitlines()
    text[3] = text[3][:10] + ("A" if text[3][10] != "A" else "B") + text[3][11:]
    signature.write_text("\n".join(text) + "\n")
    code, document = _verify(copy / ISO_NAME, "--keyring", str(keys.good_keyring))
    assert code == ExitCode.INPUT
    assert list(_failures(document)) == [("signature", SIGNATURE)]


def test_verify_refuses_the_wrong_key_and_a_missing_signature(copy: Path, keys: Keys) -> None:
    code, document = _verify(copy / ISO_NAME, "--keyring", str(keys.wrong_keyring))
    assert code == ExitCode.INPUT
    assert list(_failures(document)) == [("signature", SIGNATURE)]
    failure = _failures(document)[("signature", SIGNATURE)]
    assert failure["detail"] == (
        f"{copy / SIGNATURE}: signed by key {keys.good}, which is not in the keyring "
        f"{keys.wrong_keyring}: the signature on SHA256SUMS could not be checked"
    )
    assert failure["hint"].startswith(f"if {keys.good} is the release key, export it")
    (copy / SIGNATURE).unlink()
    code, document = _verify(copy / ISO_NAME, "--keyring", str(keys.good_keyring))
    assert code == ExitCode.INPUT
    assert _failures(document)[("signature", SIGNATURE)]["detail"] == "not found beside the ISO"


@pytest.mark.parametrize("which", ["missing", "armored", "directory"])
def test_verify_refuses_an_unusable_keyring_as_a_usage_error(
    copy: Path, keys: Keys, tmp_path: Path, which: str
) -> None:
    keyring = {"missing": tmp_path / "nokeyring.gpg", "armored": keys.armored_keyring,
               "directory": tmp_path}[which]  # fmt: skip
    done = subprocess.run([*ISOBUILD, "verify", str(copy / ISO_NAME), "--keyring", str(keyring)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert done.stdout == ""  # refused before any check ran
    error, hint = done.stderr.splitlines()
    assert error.startswith(f"error: --keyring {keyring}: ")
    assert "do not flash" not in hint


def _remaster(iso: Path, *edits: str) -> None:
    """Change files on ``iso`` after the build, keeping its boot records (real xorriso)."""
    edited = iso.with_name("edited.iso")
    subprocess.run(["xorriso", "-indev", str(iso), "-outdev", str(edited), "-boot_image", "any",
                    "replay", *edits], check=True, capture_output=True)  # fmt: skip
    edited.replace(iso)


def test_verify_refuses_a_missing_component(copy: Path, keys: Keys) -> None:
    require_tool("xorriso")
    _remaster(copy / ISO_NAME, "-rm", "/nocloud/meta-data")
    code, document = _verify(copy / ISO_NAME, "--keyring", str(keys.good_keyring))
    assert code == ExitCode.INPUT
    failures = _failures(document)
    missing = failures[("manifest", "/nocloud/meta-data")]
    assert missing["found"] == "(absent)"
    assert len(missing["expected"]) == 64
    assert failures[("sbom", "file:/nocloud/meta-data")]["found"] == "(absent)"


def test_verify_refuses_an_efi_binary_changed_after_the_build(copy: Path, keys: Keys) -> None:
    require_tool("xorriso")
    unsigned = TESTS_DIR / "data" / "efi" / "unsigned.efi"
    _remaster(copy / ISO_NAME, "-map", str(unsigned), "/EFI/boot/grubx64.efi")
    code, document = _verify(copy / ISO_NAME)
    assert code == ExitCode.INPUT
    failures = _failures(document)
    key = "iso9660:/EFI/boot/grubx64.efi"
    assert failures[("efi", key)]["found"] == read_sha(unsigned)
    assert failures[("efi", f"{key} signers")]["expected"] == (
        "Debian Secure Boot Signer 2022 - grub2"
    )
    assert failures[("efi", f"{key} signers")]["found"] == "(unsigned)"
    # The ESP copy, which the firmware boots from a stick, was not touched.
    assert ("efi", "esp:/EFI/boot/grubx64.efi") not in failures


def read_sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_verify_library_function_reports_the_same(
    signed_build: tuple[Path, Any], keys: Keys
) -> None:
    report = verify_iso(signed_build[0] / ISO_NAME, keyring=keys.good_keyring)
    assert report.ok
    unsigned = verify_iso(signed_build[0] / ISO_NAME)
    assert unsigned.ok  # without a keyring the signature is reported, not checked
    assert [c.status.value for c in unsigned.checks if c.check == "signature"] == ["skipped"]


def test_the_sbom_is_reproducible_valid_and_agrees_with_the_manifest(
    standin_base_iso: Path, standin_artifacts_dir: StandinArtifacts, isobuild_cache: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    first = build_appliance(standin_base_iso, tmp_path / "a", standin_artifacts_dir,
                            isobuild_cache)  # fmt: skip
    second = build_appliance(standin_base_iso, tmp_path / "b", standin_artifacts_dir,
                             isobuild_cache)  # fmt: skip
    assert first.result.sbom is not None
    assert second.result.sbom is not None
    text = first.result.sbom.read_text()
    assert second.result.sbom.read_text() == text
    assert sbom.validation_errors(text) is None
    manifest = json.loads(first.result.manifest.read_text())
    components = json.loads(text)["components"]
    on_iso = {
        _prop(c, sbom.ISO_PATH): c["hashes"][0]["content"]
        for c in components
        if c["bom-ref"].startswith("file:")
    }
    assert on_iso == {f["path"]: f["sha256"] for f in manifest["files"]}
    efi = {c["bom-ref"].removeprefix("efi:"): c["hashes"][0]["content"]
           for c in components if c["bom-ref"].startswith("efi:")}  # fmt: skip
    assert efi == {f"{b['location']}:{b['path']}": b["sha256"] for b in manifest["efi_binaries"]}
    assert json.loads(text)["metadata"]["component"]["hashes"][0]["content"] == (
        first.result.sha256
    )


def _prop(component: dict[str, Any], name: str) -> str:
    return next(p["value"] for p in component["properties"] if p["name"] == name)
