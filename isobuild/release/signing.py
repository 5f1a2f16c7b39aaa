"""Signing the build's checksum file with OpenPGP: ``SHA256SUMS`` + ``SHA256SUMS.gpg``.

The convention Ubuntu's releases follow, so ``gpgv --keyring KEY.gpg SHA256SUMS.gpg
SHA256SUMS`` and ``sha256sum -c SHA256SUMS`` are all a customer needs. The key is either
one the user's gpg-agent holds (named by fingerprint) or a secret key file, imported into a
throwaway GnuPG home in the system temp directory (never the output directory), whose agent
is ended and which is removed after signing. Expired and revoked keys are refused before
anything is signed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from isobuild.errors import ConfigError, ToolError, VerificationError
from isobuild.run import run

SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.gpg"
FINGERPRINT = re.compile(r"(0x)?([0-9A-Fa-f]{16}|[0-9A-Fa-f]{40})")
# The key reaches us from either place; messages name both, as we cannot tell which.
GIVEN_AS = "--sign-key or the build config's signing.key"
EXPORT_SECRET = "gpg --armor --export-secret-keys FINGERPRINT > release-key.asc"
# libgpg-error codes (low 16 bits of gpg's FAILURE status) that mean the secret key needs
# a passphrase nobody can give: bad passphrase, no pinentry, cancelled, no passphrase.
_PASSPHRASE_ERRORS = frozenset({11, 85, 99, 177})


@dataclass(frozen=True, kw_only=True)
class KeyState:
    """A key as ``gpg --with-colons`` lists it (pure data)."""

    fingerprint: str
    user_id: str
    validity: str  # gpg's field 2: e expired, r revoked, ...
    expires: int | None  # Unix time
    can_sign: bool  # the key as a whole has a usable signing (sub)key


def render_sums(digests: Mapping[str, str]) -> str:
    """``sha256sum`` output for ``name → hex digest``, sorted by name (pure)."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(digests.items()))


def parse_key_listing(colons: str) -> list[KeyState]:
    """The primary keys of ``gpg --with-colons --list-keys`` output (pure)."""
    keys: list[KeyState] = []
    current: dict[str, str | int | None] | None = None

    def close() -> None:
        if current is not None:
            keys.append(KeyState(**current))  # type: ignore[arg-type]

    for line in colons.splitlines():
        fields = line.split(":")
        kind = fields[0]
        if kind in ("pub", "sec"):
            close()
            current = {
                "fingerprint": "",
                "user_id": "",
                "validity": fields[1],
                "expires": int(fields[6]) if len(fields) > 6 and fields[6] else None,
                "can_sign": "S" in (fields[11] if len(fields) > 11 else ""),
            }
        elif kind == "fpr" and current is not None and not current["fingerprint"]:
            current["fingerprint"] = fields[9]
        elif kind == "uid" and current is not None and not current["user_id"]:
            current["user_id"] = fields[9]
    close()
    return keys


def key_problem(key: KeyState, now: float) -> str | None:
    """Why ``key`` must not sign, or None (pure)."""
    who = f"{key.fingerprint} ({key.user_id})" if key.user_id else key.fingerprint
    if key.validity == "r":
        return f"signing key {who} is revoked"
    if key.validity == "e" or (key.expires is not None and key.expires <= now):
        when = time.strftime("%Y-%m-%d", time.gmtime(key.expires)) if key.expires else "?"
        return f"signing key {who} expired on {when}"
    if not key.can_sign:
        return f"signing key {who} has no usable signing (sub)key (expired or revoked subkeys?)"
    return None


def needs_passphrase(status: str) -> bool:
    """Whether gpg's ``--status-fd`` lines say signing failed for want of a passphrase (pure).

    GnuPG 2.2 reports ``FAILURE sign <code>`` (``NEED_PASSPHRASE`` only in loopback mode).
    """
    for line in status.splitlines():
        fields = line.split()
        if fields[:3] == ["[GNUPG:]", "FAILURE", "sign"] and len(fields) > 3:
            if fields[3].isdigit() and int(fields[3]) & 0xFFFF in _PASSPHRASE_ERRORS:
                return True
        elif fields[:2] == ["[GNUPG:]", "NEED_PASSPHRASE"]:
            return True
    return False


class _Gpg:
    def __init__(self, home: Path | None, key_file: Path | None = None) -> None:
        self.env = dict(os.environ)
        if home is not None:
            self.env["GNUPGHOME"] = str(home)
        self.home = home
        # The file the key came from, imported into ``home``: no agent there holds its
        # passphrase and no pinentry can ask for it.
        self.key_file = key_file

    def __call__(self, *args: str | Path, check: bool = True) -> tuple[int, str, str]:
        result = run(["gpg", "--batch", "--no-tty", *args], capture=True, env=self.env,
                     check=check)  # fmt: skip
        return result.returncode, result.stdout, result.stderr


@contextlib.contextmanager
def _throwaway_home() -> Iterator[Path]:
    """A private GnuPG home outside any output directory; its agent is ended afterwards."""
    home = Path(tempfile.mkdtemp(prefix="isobuild-gnupg-"))
    home.chmod(0o700)
    try:
        yield home
    finally:
        env = {**os.environ, "GNUPGHOME": str(home)}
        with contextlib.suppress(ToolError, OSError):
            run(["gpgconf", "--kill", "all"], env=env, capture=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


def _usable_key(gpg: _Gpg, name: str) -> KeyState:
    code, out, _ = gpg("--with-colons", "--fixed-list-mode", "--list-secret-keys", name,
                       check=False)  # fmt: skip
    keys = parse_key_listing(out) if code == 0 else []
    if not keys:
        raise ConfigError(
            f"signing key {name}: no secret key with that name in gpg",
            hint=f"give {GIVEN_AS} the fingerprint of a key gpg-agent holds "
            "(`gpg --list-secret-keys`) or a secret key file",
        )
    if len(keys) > 1:
        raise ConfigError(
            f"signing key {name}: names {len(keys)} secret keys",
            hint="give the full 40-digit fingerprint",
        )
    # Validity and capabilities come from the public half (revocations live there).
    _, public, _ = gpg("--with-colons", "--fixed-list-mode", "--list-keys",
                       keys[0].fingerprint, check=False)  # fmt: skip
    key = next(iter(parse_key_listing(public)), keys[0])
    problem = key_problem(key, time.time())
    if problem is not None:
        raise VerificationError(problem, hint="renew the key or sign with another one")
    return key


@contextlib.contextmanager
def _key(key: str) -> Iterator[tuple[_Gpg, str]]:
    """gpg set up to use ``key`` (a fingerprint in the user's gpg, or a secret key file)."""
    if FINGERPRINT.fullmatch(key):
        yield _Gpg(None), key.removeprefix("0x")
        return
    key_file = Path(key)
    if not key_file.is_file():
        raise ConfigError(
            f"signing key {key}: neither a key fingerprint nor a readable key file",
            hint=f"give {GIVEN_AS} the fingerprint of a key in gpg-agent or the path of a "
            "secret key file (in the config, relative to the config file)",
        )
    with _throwaway_home() as home:
        gpg = _Gpg(home, key_file)
        code, status, err = gpg("--status-fd", "1", "--import", key_file.resolve(), check=False)
        if code != 0:
            nodata = any(line.startswith("[GNUPG:] NODATA") for line in status.splitlines())
            raise ConfigError(
                f"{key_file}: not an OpenPGP key file (gpg found no OpenPGP data in it)"
                if nodata
                else f"{key_file}: gpg could not import it: {_last(err)}",
                hint=f"give a secret key exported with `{EXPORT_SECRET}`, or the fingerprint "
                f"of a key in gpg-agent ({GIVEN_AS})",
            )
        _, out, _ = gpg("--with-colons", "--fixed-list-mode", "--list-secret-keys")
        keys = parse_key_listing(out)
        if not keys:
            raise ConfigError(
                f"{key_file}: holds no secret key (a public key?): it cannot sign",
                hint=f"export the secret key: `{EXPORT_SECRET}`, or give the fingerprint "
                f"of a key in gpg-agent ({GIVEN_AS})",
            )
        if len(keys) > 1:
            raise ConfigError(
                f"{key_file}: expected one secret key, found {len(keys)}",
                hint=f"export only the signing key: `{EXPORT_SECRET}`",
            )
        yield gpg, keys[0].fingerprint


def check_key(key: str) -> str:
    """The fingerprint of ``key`` if it can sign now; a clear error if not (expired...).

    A key file is tried out by signing a few bytes in its throwaway home: a
    passphrase-protected one is refused here, before anything is built.
    """
    with _key(key) as (gpg, name):
        fingerprint = _usable_key(gpg, name).fingerprint
        if gpg.home is not None:
            probe = gpg.home / "probe"
            probe.write_bytes(b"isobuild: can this key sign?\n")
            _sign(gpg, fingerprint, probe, gpg.home / "probe.asc")
        return fingerprint


def sign_file(path: Path, signature: Path, key: str) -> str:
    """Write an armored detached signature of ``path``; the signing key's fingerprint."""
    with _key(key) as (gpg, name):
        return _sign(gpg, name, path, signature)


def _sign(gpg: _Gpg, name: str, path: Path, signature: Path) -> str:
    key = _usable_key(gpg, name)
    signature.unlink(missing_ok=True)
    # A key file's throwaway agent has no passphrase cached and no terminal for a
    # pinentry: fail at once (pinentry-curses would say "Inappropriate ioctl for device").
    no_pinentry = ("--pinentry-mode", "error") if gpg.key_file is not None else ()
    code, status, err = gpg(*no_pinentry, "--status-fd", "1", "--armor", "--detach-sign",
                            "--local-user", f"{key.fingerprint}!", "--output", signature, path,
                            check=False)  # fmt: skip
    if code != 0:
        signature.unlink(missing_ok=True)
        if gpg.key_file is not None and needs_passphrase(status):
            raise ConfigError(
                f"{gpg.key_file}: the secret key {key.fingerprint} is passphrase-protected; "
                "a key file must have no passphrase (it is imported into a throwaway GnuPG "
                "home, where nothing can unlock it)",
                hint=f"import it into your own keyring (gpg --import {gpg.key_file}), unlock "
                "it in gpg-agent (sign any file once with it) and give its fingerprint "
                f"instead: --sign-key {key.fingerprint} or signing.key: {key.fingerprint}",
            )
        raise ToolError(
            f"gpg could not sign {path.name} with {key.fingerprint}: {_last(err)}",
            hint="check that gpg can sign with the key file's key (gpg --import it, then "
            "gpg --sign any file)"
            if gpg.key_file is not None
            else "a passphrase-protected key must be unlocked in gpg-agent first "
            "(e.g. sign any file once with it)",
        )
    return key.fingerprint


def _last(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return lines[-1].removeprefix("gpg: ") if lines else "no message"
