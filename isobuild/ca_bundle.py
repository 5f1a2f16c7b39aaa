"""A site registry CA bundle (PEM): checked with the stdlib ``ssl`` module before a build."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

PEM_HINT = (
    "give a PEM file with the CA certificate(s) that signed the registry's (or the "
    "TLS-inspecting proxy's) certificate"
)
_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----", re.DOTALL
)
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_SSL_SOURCE = re.compile(r"\s*\(_ssl\.c:\d+\)")


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


class BadBundle(Exception):
    """``path`` is no usable CA bundle; the message says why and what to do."""


def problem(path: Path) -> str | None:
    """What is wrong with ``path`` as a CA bundle (one sentence plus what to do), or None."""
    try:
        read(path)
    except BadBundle as exc:
        return str(exc)
    return None


def read(path: Path) -> bytes:
    """The bundle's bytes, once they pass every check (else :class:`BadBundle`).

    The bundle must be readable ASCII (the appliance hands it to Flux as text), hold no
    private key (everything on the ISO is readable by whoever holds it) and carry at least
    one PEM certificate; every certificate in it must load into an ``ssl.SSLContext``.
    """
    data = _read(path)
    text = _ascii(path, data)
    _check_pem(path, text)
    return data


def _read(path: Path) -> bytes:
    if not path.exists():
        raise BadBundle(
            f"{path}: no such file; {PEM_HINT} (a relative path is relative to the config "
            "file's directory)"
        )
    if path.is_dir():
        raise BadBundle(f"{path}: is a directory; {PEM_HINT}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadBundle(
            f"{path}: cannot be read ({exc.strerror}); make it readable by the user running "
            "isobuild"
        ) from exc


def _ascii(path: Path, data: bytes) -> str:
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as exc:
        if b"-----BEGIN" not in data:
            raise BadBundle(
                f"{path}: not PEM text (binary data, a DER certificate?); convert it with "
                "`openssl x509 -inform der -in CA.der -out CA.pem`"
            ) from exc
        line = data.count(b"\n", 0, exc.start) + 1
        raise BadBundle(
            f"{path}: line {line} has a non-ASCII character; keep only the certificate blocks "
            "(`openssl x509 -in CA.crt -out CA.pem` per certificate)"
        ) from exc


def _check_pem(path: Path, text: str) -> None:
    key = _PRIVATE_KEY.search(text)
    if key is not None:
        raise BadBundle(
            f"{path}: line {_line_of(text, key.start())} starts a private key; a CA bundle holds "
            "certificates only (the ISO is readable by anyone who has it): remove the key"
        )
    blocks = list(_CERTIFICATE.finditer(text))
    if not blocks:
        raise BadBundle(
            f"{path}: no PEM certificate ('-----BEGIN CERTIFICATE-----') in it; {PEM_HINT}"
        )
    for number, block in enumerate(blocks, 1):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_verify_locations(cadata=block.group(0))
        except (ssl.SSLError, ValueError) as exc:
            detail = exc.args[-1] if isinstance(exc.args[-1], str) else str(exc)
            reason = _SSL_SOURCE.sub("", detail).strip()
            raise BadBundle(
                f"{path}: certificate {number} of {len(blocks)} (line "
                f"{_line_of(text, block.start())}) does not parse as X.509 ({reason}); replace "
                "it with the certificate as the CA exports it (`openssl x509 -in CA.pem -noout "
                "-text` must read it)"
            ) from exc
