"""Operator intent: the setup inputs, validated into a record and kept apart from derived state."""

from __future__ import annotations

import difflib
import ipaddress
import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from host_service import atomic
from host_service.errors import InvalidInput

log = logging.getLogger(__name__)

CHANNEL = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
VERSION = re.compile(r"v?[0-9]+\.[0-9]+\.[0-9]+([.+~-][0-9A-Za-z.+~-]{1,60})?")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
NO_PROXY_ENTRY = re.compile(r"\.?[A-Za-z0-9.*:/-]{1,253}")
MAX_URL = 2048
FIELDS = (
    "app_url",
    "channel",
    "release",
    "proxy",
    "no_proxy",
    "proxy_password",  # replaces the stored password (the URL then names only the user)
    "proxy_password_clear",  # true: no password, also when one is stored
)


class InputErrors(InvalidInput):
    """Field name -> what is wrong with it; the HTTP layer turns this into a 400."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True, kw_only=True)
class SetupIntent:
    """What the operator asked for. Operator intent always wins over anything derived."""

    app_url: str
    channel: str | None = None
    release: str | None = None  # a version such as 1.4.2, or a manifest digest
    proxy: str | None = None  # may carry credentials: never echoed back, never logged
    no_proxy: tuple[str, ...] = ()

    @property
    def release_ref(self) -> str:
        """The tag or digest the release step resolves."""
        return self.release or self.channel or ""

    def public(self) -> dict[str, Any]:
        """What the API and pages may show: the proxy with its user name, not its password."""
        return {
            "app_url": self.app_url,
            "channel": self.channel,
            "release": self.release,
            "proxy": with_password(self.proxy, None) if self.proxy else None,
            "proxy_password_set": bool(self.proxy and urlsplit(self.proxy).password),
            "no_proxy": list(self.no_proxy),
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["no_proxy"] = list(self.no_proxy)
        return data


def _json_type(value: object) -> str:
    return {list: "a list", str: "a string", bool: "true or false", type(None): "null"}.get(
        type(value), "a number"
    )


def with_password(url: str, password: str | None) -> str:
    """``url`` with its password replaced (``None``: none; the user name stays). The
    password is put in as given: percent-encoded, as in a URL."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    userinfo = parts.username or ""
    if userinfo and password is not None:
        userinfo = f"{userinfo}:{password}"
    netloc = f"{userinfo}@{host}" if userinfo else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    return len(host) <= 253 and all(_LABEL.fullmatch(label) for label in labels)


def _check_url(value: str, *, schemes: tuple[str, ...], what: str) -> str:
    if len(value) > MAX_URL:
        raise ValueError(f"longer than {MAX_URL} characters")
    if any(c.isspace() for c in value):
        raise ValueError(f"{what} must not contain spaces")
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        starts = " or ".join(f"{scheme}://" for scheme in schemes)
        raise ValueError(f"expected a URL starting with {starts}, such as {schemes[0]}://host")
    if not parts.hostname or not _valid_host(parts.hostname):
        raise ValueError(f"{what} has no valid host name")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{what} has an invalid port") from exc
    if port == 0:
        raise ValueError(f"{what} has an invalid port")
    if parts.query or parts.fragment:
        raise ValueError(f"{what} must not have a query or fragment")
    if parts.path not in ("", "/"):
        raise ValueError(f"{what} must not have a path")
    return value.rstrip("/")


def parse_setup(
    data: Mapping[str, Any], *, default_channel: str, stored: SetupIntent | None = None
) -> SetupIntent:
    """Validate a setup request (JSON body or form fields); every bad field is reported.

    The proxy password is shown to nobody, so a request that names the proxy without one
    keeps the ``stored`` password (same user, same host); ``proxy_password`` replaces it,
    ``proxy_password_clear`` removes it.
    """
    errors: dict[str, str] = {}
    for key in data:
        if key not in FIELDS:
            close = difflib.get_close_matches(str(key), FIELDS, n=1)
            errors[str(key)] = "unknown field" + (f" (did you mean {close[0]!r}?)" if close else "")

    def text(name: str) -> str | None:
        value = data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            errors[name] = f"expected a string, got {type(value).__name__}"
            return None
        return value.strip() or None

    app_url = text("app_url")
    if app_url is None and "app_url" not in errors:
        errors["app_url"] = "required: the public URL users open, e.g. https://psa.example.com"
    elif app_url is not None:
        try:
            app_url = _check_url(app_url, schemes=("https", "http"), what="URL")
            if urlsplit(app_url).username is not None:
                errors["app_url"] = "must not contain a user name or password"
        except ValueError as exc:
            errors["app_url"] = str(exc)

    channel = text("channel")
    release = text("release")
    if channel is not None and not CHANNEL.fullmatch(channel):
        errors["channel"] = "expected a channel name such as 'stable' or 'nightly'"
    if release is not None and not (VERSION.fullmatch(release) or DIGEST.fullmatch(release)):
        errors["release"] = "expected a version such as 1.4.2 or a digest sha256:<64 hex>"
    if channel is not None and release is not None and "release" not in errors:
        errors["release"] = "give a channel or a pinned release, not both"
    if channel is None and release is None:
        channel = default_channel

    proxy = text("proxy")
    if proxy is not None:
        try:
            proxy = _check_url(proxy, schemes=("http", "https"), what="proxy")
        except ValueError as exc:
            errors["proxy"] = str(exc)
    password = data.get("proxy_password")
    if password is not None and not isinstance(password, str):
        errors["proxy_password"] = f"expected a string, got {type(password).__name__}"
        password = None
    clear = data.get("proxy_password_clear", False)
    if not isinstance(clear, bool):
        errors["proxy_password_clear"] = f"expected true or false, got {clear!r}"
        clear = False
    if "proxy" not in errors:
        try:
            proxy = _proxy_password(proxy, password or None, clear=clear, stored=stored)
        except ValueError as exc:
            errors["proxy_password"] = str(exc)

    no_proxy: tuple[str, ...] = ()
    raw = data.get("no_proxy")
    if isinstance(raw, str):
        items = [p.strip() for p in raw.replace("\n", ",").split(",")]
    elif isinstance(raw, list) and all(isinstance(p, str) for p in raw):
        items = [p.strip() for p in raw]
    elif raw is None:
        items = []
    else:
        items = []
        errors["no_proxy"] = "expected a comma-separated list of hosts, domains or CIDRs"
    items = [p for p in items if p]
    bad = [p for p in items if not NO_PROXY_ENTRY.fullmatch(p)]
    if bad:
        errors["no_proxy"] = f"not a host, domain or CIDR: {bad[0]!r}"
    elif len(items) > 64:
        errors["no_proxy"] = "at most 64 entries"
    else:
        no_proxy = tuple(dict.fromkeys(items))
    if no_proxy and proxy is None:
        errors["no_proxy"] = "only meaningful with a proxy"

    if errors:
        raise InputErrors(errors)
    assert app_url is not None
    return SetupIntent(
        app_url=app_url, channel=channel, release=release, proxy=proxy, no_proxy=no_proxy
    )


def _proxy_password(
    proxy: str | None, password: str | None, *, clear: bool, stored: SetupIntent | None
) -> str | None:
    """The proxy URL to store, with the password the request asks for."""
    if proxy is None:
        if password is not None:
            raise ValueError("only meaningful with a proxy")
        return None
    parts = urlsplit(proxy)
    if password is not None and clear:
        raise ValueError("give a new password or remove it, not both")
    if parts.password is not None:
        if password is not None:
            raise ValueError("the proxy URL has a password already; give it once")
        return proxy
    if password is not None:
        if not parts.username:
            raise ValueError("a password needs a user name: http://user@host:port")
        return with_password(proxy, quote(password, safe=""))
    old = urlsplit(stored.proxy) if stored and stored.proxy else None
    if clear or old is None or old.password is None or old.username != parts.username:
        return proxy  # no password, or a new user (whose password is not the old one's)
    if old.hostname != parts.hostname:
        # The stored password is not sent to another host unasked.
        raise ValueError(
            "the proxy host changed: type the password again, or tick 'remove the password'"
        )
    return with_password(proxy, old.password)


class IntentUnreadable(InvalidInput):
    """``setup-inputs.json`` exists but does not hold setup inputs (damaged, or edited by hand)."""


class IntentStore:
    """``setup-inputs.json`` (0600): the operator's inputs and nothing derived from them.

    ``sets_aside`` (the service's store): a damaged file is moved aside (kept for a look,
    0600 as it was) with a warning, and reads as no inputs, so the setup page asks for them
    again. Without it (the support commands) a damaged file is an error naming it.
    """

    def __init__(self, path: Path, *, sets_aside: bool = False) -> None:
        self.path = path
        self.sets_aside = sets_aside
        self._lock = threading.Lock()

    def load(self) -> SetupIntent | None:
        """The stored inputs, checked by the rules setup checks them by; None before setup.

        A damaged file raises :class:`IntentUnreadable` naming the file and what is wrong
        (or is set aside, see the class); one the system cannot read (EACCES, EIO) is an
        ``OSError`` as it is.
        """
        try:
            return self._read()
        except IntentUnreadable:
            if not self.sets_aside:
                raise
        with self._lock:  # the first of several readers moves it; the others read again
            try:
                return self._read()
            except IntentUnreadable as exc:
                aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
                self.path.replace(aside)
                log.warning(
                    "%s; moved to %s: enter the setup inputs again", exc.message, aside.name
                )
                return None

    def _read(self) -> SetupIntent | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:
            raise self._unreadable("not UTF-8 text") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise self._unreadable(f"not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise self._unreadable(f"expected a JSON object, got {_json_type(data)}")
        try:
            # The same checks as a setup request; an error names no value (the proxy URL
            # may hold a password).
            intent = parse_setup(data, default_channel="")
        except InputErrors as exc:
            raise self._unreadable("; ".join(f"{k}: {v}" for k, v in exc.errors.items())) from None
        if not intent.release_ref:  # none given, or blank: setup always stores one
            raise self._unreadable("names neither a channel nor a release")
        return intent

    def _unreadable(self, why: str) -> IntentUnreadable:
        return IntentUnreadable(
            f"{self.path}: {why}",
            hint="enter the setup inputs again on the setup page (the service moves this "
            "file aside when it starts), or restore the file from a copy",
        )

    def save(self, intent: SetupIntent) -> None:
        atomic.write_json(self.path, intent.to_json(), mode=0o600)
