"""The setup token: random, typable, 0600 on disk, shown on the local console only."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from host_service import atomic

# Crockford's base32: no I, L, O or U, so what is read off a console is typed right.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUPS = 5
GROUP_SIZE = 4  # 20 symbols x 5 bits = 100 bits
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})


def generate() -> str:
    """A new token such as ``7K3M-Q9TD-X2WA-HB5R-NJ84`` (100 bits)."""
    symbols = "".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_SIZE))
    return "-".join(symbols[i : i + GROUP_SIZE] for i in range(0, len(symbols), GROUP_SIZE))


def normalize(text: str) -> str:
    """What the user typed, reduced to the token's symbols (case, spaces, dashes ignored)."""
    return "".join(text.split()).replace("-", "").upper().translate(_CONFUSABLE)


def matches(typed: str, token: str) -> bool:
    return hmac.compare_digest(normalize(typed).encode(), normalize(token).encode())


def load_or_create(path: Path) -> str:
    """The stored token, created on first start; the file is kept at 0600."""
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        token = ""
    if len(normalize(token)) != GROUPS * GROUP_SIZE:
        token = generate()
        atomic.write_text(path, token + "\n", mode=0o600)
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return token


def rotate(path: Path) -> str:
    token = generate()
    atomic.write_text(path, token + "\n", mode=0o600)
    return token
