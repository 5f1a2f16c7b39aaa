"""Sessions: HMAC-signed cookies with expiry, a CSRF token per session, login lockout."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from host_service import atomic

log = logging.getLogger(__name__)

COOKIE = "appliance_session"
LIFETIME_SECONDS = 8 * 3600
KEY_BYTES = 32
REVOKED_FILE = "revoked-sessions.json"
# Each entry is a logout inside one cookie lifetime; past this many, a new key ends every
# session instead (the file stays small whatever happens).
MAX_REVOKED = 10_000

Clock = Callable[[], float]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    id: str
    expires: float
    csrf: str


class SessionKeeper:
    """Issues and checks session cookies signed with a 0600 key file.

    ``reset-token`` (another process) replaces the key file; the key is re-read when the
    file changes, which ends every session at once. A logout ends one session: its id is
    kept in a 0600 file until the cookie would have expired, so a restart does not bring
    the session back.
    """

    def __init__(
        self,
        key_file: Path,
        *,
        revoked_file: Path | None = None,
        lifetime: float = LIFETIME_SECONDS,
        clock: Clock = time.time,
        max_revoked: int = MAX_REVOKED,
    ) -> None:
        self.key_file = key_file
        self.max_revoked = max_revoked
        self.revoked_file = revoked_file or key_file.with_name(REVOKED_FILE)
        self.lifetime = lifetime
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int], bytes] | None = None
        self._revoked: dict[str, float] | None = None  # session id -> its expiry

    def _key(self) -> bytes:
        with self._lock:
            try:
                st = self.key_file.stat()
            except FileNotFoundError:
                rotate_key(self.key_file)
                st = self.key_file.stat()
            stamp = (st.st_ino, st.st_mtime_ns)
            if self._cached is None or self._cached[0] != stamp:
                key = self.key_file.read_bytes()
                if len(key) < KEY_BYTES:
                    rotate_key(self.key_file)
                    key = self.key_file.read_bytes()
                    stamp = (self.key_file.stat().st_ino, self.key_file.stat().st_mtime_ns)
                if self._cached is not None:
                    log.warning(
                        "the session key was replaced (reset-token): every session has ended"
                    )
                    self._save_revoked({})  # every entry was for the old key
                self._cached = (stamp, key)
            return self._cached[1]

    # -- ended sessions (call with the lock held) -----------------------------------------

    def _revoked_sessions(self) -> dict[str, float]:
        if self._revoked is None:
            self._revoked = self._read_revoked()
        return self._revoked

    def _read_revoked(self) -> dict[str, float]:
        try:
            data = json.loads(self.revoked_file.read_text(encoding="utf-8"))
            entries = data["revoked"]
            return {str(k): float(v) for k, v in entries.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # Which sessions ended is unknown: end them all rather than revive any.
            log.warning(
                "%s is unreadable (%s): a new session key ends every session",
                self.revoked_file,
                exc,
            )
            self._new_key()
            self._save_revoked({})
            return {}

    def _new_key(self) -> None:
        rotate_key(self.key_file)
        self._cached = None  # ours: read again without taking it for a reset-token

    def _save_revoked(self, revoked: dict[str, float]) -> None:
        self._revoked = revoked
        try:
            atomic.write_json(self.revoked_file, {"revoked": revoked}, mode=0o600)
        except OSError as exc:
            log.warning(
                "cannot write %s (%s): ended sessions stay ended only until the service restarts",
                self.revoked_file,
                exc.strerror or exc,
            )

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key(), payload, hashlib.sha256).digest())

    def _csrf(self, session_id: str) -> str:
        return self._sign(b"csrf|" + session_id.encode())[:32]

    def issue(self) -> tuple[Session, str]:
        """A new session and its cookie value."""
        session_id = _b64(secrets.token_bytes(18))
        expires = self.clock() + self.lifetime
        payload = json.dumps({"sid": session_id, "exp": int(expires)}, separators=(",", ":"))
        raw = payload.encode()
        cookie = f"{_b64(raw)}.{self._sign(raw)}"
        return Session(session_id, float(int(expires)), self._csrf(session_id)), cookie

    def verify(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        with self._lock:
            self._revoked_sessions()  # read first: a damaged list replaces the key
        body, _, signature = cookie.partition(".")
        try:
            raw = _unb64(body)
        except ValueError:
            return None
        if not same_secret(self._sign(raw), signature):
            return None
        try:
            data = json.loads(raw)
            session_id, expires = str(data["sid"]), float(data["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        now = self.clock()
        if expires <= now:
            return None
        with self._lock:
            if session_id in self._revoked_sessions():
                return None
        return Session(session_id, expires, self._csrf(session_id))

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        return bool(presented) and same_secret(session.csrf, str(presented))

    def revoke(self, session: Session) -> None:
        """End ``session`` for good (logout); entries past their expiry are dropped."""
        now = self.clock()
        with self._lock:
            revoked = {k: v for k, v in self._revoked_sessions().items() if v > now}
            revoked[session.id] = session.expires
            if len(revoked) > self.max_revoked:
                log.warning("%d sessions ended by logout: a new key ends them all", len(revoked))
                self._new_key()
                revoked = {}
            self._save_revoked(revoked)


def same_secret(expected: str, presented: str) -> bool:
    """Constant-time comparison of any two texts (``hmac.compare_digest`` refuses ``str``
    with non-ASCII characters, which a client can put in a header, cookie or form)."""
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), presented.encode("utf-8", "surrogatepass")
    )


def rotate_key(path: Path) -> None:
    """A fresh signing key: every cookie signed with the old one stops working."""
    atomic.write_bytes(path, secrets.token_bytes(KEY_BYTES), mode=0o600)


class Lockout:
    """Per-client login throttle: after ``free`` failures, wait ``base * 2**n`` seconds."""

    def __init__(
        self,
        *,
        free: int = 5,
        base: float = 30.0,
        ceiling: float = 900.0,
        clock: Clock = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.free = free
        self.base = base
        self.ceiling = ceiling
        self.clock = clock
        self.max_clients = max_clients
        self._lock = threading.Lock()
        # client -> (failures, locked until)
        self._clients: dict[str, tuple[int, float]] = {}

    def wait_seconds(self, client: str) -> float:
        """0 when ``client`` may try now, else how long it must wait."""
        with self._lock:
            _, until = self._clients.get(client, (0, 0.0))
        return max(0.0, until - self.clock())

    def failures(self, client: str) -> int:
        """Wrong tokens from ``client`` since its last good one."""
        with self._lock:
            return self._clients.get(client, (0, 0.0))[0]

    def failed(self, client: str) -> float:
        """Record a failure; returns the lockout it starts (0 while attempts remain)."""
        now = self.clock()
        with self._lock:
            if len(self._clients) >= self.max_clients:
                # Bounded memory: forget clients whose lockout has passed.
                self._clients = {k: v for k, v in self._clients.items() if v[1] > now}
            failures = self._clients.get(client, (0, 0.0))[0] + 1
            delay = 0.0
            if failures >= self.free:
                delay = min(self.ceiling, self.base * 2 ** (failures - self.free))
            self._clients[client] = (failures, now + delay)
            return delay

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)
