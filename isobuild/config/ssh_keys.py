"""Public SSH keys as authorized_keys lines: parsed and checked, never echoed."""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from typing import Any

SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
)
# sshd(8) AUTHORIZED_KEYS FILE FORMAT: comma-separated options, values in double quotes.
_KEY_OPTION = r'[A-Za-z0-9_-]+(="(?:[^"\\]|\\.)*")?'
_KEY_OPTIONS = re.compile(rf"{_KEY_OPTION}(,{_KEY_OPTION})*[ \t]+")
_KEY_LINE = "`[options ]<type> <base64>[ comment]`, one line of a .pub file"


def _key_type_and_blob(text: str) -> tuple[str, str] | None:
    parts = text.split(None, 2)
    if len(parts) >= 2 and (parts[0] in SSH_KEY_TYPES or parts[0] == "ssh-dss"):
        return parts[0], parts[1]
    options = _KEY_OPTIONS.match(text)
    if options is None:
        return None
    parts = text[options.end() :].split(None, 2)
    return (parts[0], parts[1]) if len(parts) >= 2 else None


def _ssh_string(data: bytes) -> bytes | None:
    """The first RFC 4251 string of a key blob (its key type), or None."""
    if len(data) < 4:
        return None
    size = int.from_bytes(data[:4], "big")
    return data[4 : 4 + size] if 4 + size < len(data) else None


def authorized_key(value: Any) -> str | None:
    """One authorized_keys line. Never echoes it: a refused value may be a private key."""
    text = str(value).strip()
    if "PRIVATE KEY" in text:
        return (
            "is a private key (value not shown); everything on the ISO is readable by "
            "whoever holds it: give the public key (`ssh-keygen -y -f KEY` prints it)"
        )
    if not text:
        return f"is empty; give a public key: {_KEY_LINE}"
    # A tab may separate the fields; any other control character could start a new line.
    if any(c != "\t" and unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
        return "has a line break or control character (value not shown); give one key per item"
    found = _key_type_and_blob(text)
    if found is None or found[0] not in (*SSH_KEY_TYPES, "ssh-dss"):
        return (
            f"not an OpenSSH public key (value not shown); expected {_KEY_LINE}, with a "
            f"type of {', '.join(SSH_KEY_TYPES)}"
        )
    key_type, blob = found
    if key_type == "ssh-dss":
        return (
            "is a DSA (ssh-dss) key, which the OpenSSH of Ubuntu 24.04 refuses; give an "
            "ssh-ed25519 key (`ssh-keygen -t ed25519`)"
        )
    try:
        embedded = _ssh_string(base64.b64decode(blob, validate=True))
    except binascii.Error:
        embedded = None
    if embedded != key_type.encode():
        return (
            f"{key_type} key whose base64 part is not an {key_type} key (value not shown: "
            "cut or mistyped?); copy the whole line from the .pub file"
        )
    return None
