"""The setup token: random, typable, 0600 on disk, shown on the local console only."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from host_service import atomic

log = logging.getLogger(__name__)

# Crockford's base32: no I, L, O or U, so what is read off a console is typed right.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUPS = 5
GROUP_SIZE = 4  # 20 symbols x 5 bits = 100 bits
_SYMBOLS = frozenset(ALPHABET)
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


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        return ""  # damaged


def load_or_create(path: Path, *, replaced: Callable[[str], None] | None = None) -> str:
    """The stored token, created on first start; the file is kept at 0600.

    The service and the console banner may both start first: the new file is linked into
    place only if none exists, so both always show the same token. A damaged file gets a
    new token, which ``replaced`` is given (to show it on the console at once: the token
    the console shows no longer works).
    """
    token = _read(path)
    if token is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        atomic.write_text(tmp, generate() + "\n", mode=0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # the other process won; use its token
        finally:
            tmp.unlink(missing_ok=True)
        token = _read(path) or ""
    if len(normalize(token)) != GROUPS * GROUP_SIZE or not set(normalize(token)) <= _SYMBOLS:
        new = rotate(path)
        log.warning("%s: damaged; replaced by a new setup token (shown on the console)", path)
        if replaced is not None:
            replaced(new)
        return new
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return token


def rotate(path: Path) -> str:
    token = generate()
    atomic.write_text(path, token + "\n", mode=0o600)
    return token
