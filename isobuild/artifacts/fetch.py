"""Download pinned release files into the artifact cache: upstream, a mirror, or offline.

Every file is checked twice: its publisher's checksum file must list the pinned digest
(before the big download starts), and the downloaded bytes must hash to the pin before
the cache admits them. Downloads stream, retry with backoff, resume partial files with
HTTP ranges (or restart when the server ignores them) and honour HTTP(S)_PROXY/NO_PROXY.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import requests
import urllib3

from isobuild import no_room
from isobuild.artifacts.cache import ArtifactCache
from isobuild.artifacts.lockfile import PinnedFile
from isobuild.errors import ConfigError, PayloadError, VerificationError
from isobuild.progress import Progress

log = logging.getLogger(__name__)

# Small enough that a dropped connection loses little of what arrived (requests hands out
# only whole chunks), big enough to keep per-chunk overhead negligible.
CHUNK = 64 * 1024
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 60.0
USER_AGENT = "isobuild (+https://github.com/; pinned artifact fetch)"


class _Retryable(Exception):
    """A transient failure: connection reset, timeout, 5xx, short body."""


# The userinfo of any URL in a text: up to the last "@" before the path, so a password
# with an unencoded "@" goes too.
_USERINFO = re.compile(r"(?<=://)[^/?#\s]*@")


def redact_url(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***``.

    ``http://user:pw@mirror/m`` → ``http://***@mirror/m``: a mirror's (or proxy's)
    credentials never reach a log, an error or a report. The user name goes too: a token
    is often passed as the user name alone (``https://TOKEN@host/``).
    """
    return _USERINFO.sub("***@", text)


def _host(url: str) -> str:
    """``host[:port]`` of ``url``, without any credentials."""
    return urllib.parse.urlsplit(url).netloc.rpartition("@")[2]


def _short(cause: object) -> str:
    # Redacted before it is cut: a cut could end inside a URL's userinfo, before its "@".
    return redact_url(str(cause))[:160]


def _reason(exc: BaseException, url: str) -> str:
    """A short cause for a requests failure (requests' own text is a nested repr)."""
    host = _host(url)
    inner = exc.args[0] if exc.args else None
    cause = getattr(inner, "reason", None) or inner
    if isinstance(exc, requests.exceptions.ProxyError):
        return f"the proxy failed: {_short(cause)}"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS to {host} failed: {_short(cause)}"
    if isinstance(cause, urllib3.exceptions.NameResolutionError):
        return f"cannot resolve {host.rsplit(':', 1)[0]} (DNS)"
    if isinstance(cause, urllib3.exceptions.ConnectTimeoutError) or isinstance(
        exc, requests.exceptions.ConnectTimeout
    ):
        return f"connecting to {host} timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"{host} stopped sending (read timeout)"
    if isinstance(cause, urllib3.exceptions.NewConnectionError) and "refused" in str(cause):
        return f"{host} refused the connection"
    return f"{type(exc).__name__}: {_short(cause if cause is not None else exc)}"


# --- publisher checksum files -------------------------------------------------------------


def parse_checksums(text: str) -> dict[str, str]:
    """File name → sha256 from a checksum file.

    Accepts the ``sha256sum`` format (``<hex>  <name>``, ``<hex> *<name>``) that k3s and
    Flux (goreleaser) publish, and the BSD format (``SHA256 (<name>) = <hex>``).
    """
    entries: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("SHA256 (") and ") = " in line:
            name, _, digest = line[len("SHA256 (") :].rpartition(") = ")
        else:
            digest, _, name = line.partition(" ")
            name = name.strip().lstrip("*")
        digest = digest.strip().lower()
        if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest) and name:
            entries[name.rsplit("/", 1)[-1]] = digest
    return entries


# --- where bytes come from ------------------------------------------------------------------


class Source(Protocol):
    """Where pinned files are read from: the publishers, a mirror URL or a mirror directory."""

    def describe(self, pin: PinnedFile) -> str:
        """The URL (without credentials) or path ``pin`` is read from, for messages."""
        ...

    def checksum_text(self, pin: PinnedFile) -> tuple[str, str]:
        """(text, where) of the checksum file that should list ``pin``."""
        ...

    def download(self, pin: PinnedFile, dest: Path) -> None:
        """Write ``pin``'s bytes to ``dest``, resuming what is already there if possible."""
        ...


@dataclass
class HttpDownloader:
    """Streaming GET with retries, exponential backoff, resume and progress."""

    session: requests.Session
    retries: int = 4
    backoff: float = 1.0
    progress: bool = False
    sleep: Callable[[float], None] = time.sleep
    attempts: list[str] = field(default_factory=list)  # what happened, for logs and tests

    def _retry(self, url: str, action: Callable[[], None]) -> None:
        shown = redact_url(url)
        for attempt in range(1, self.retries + 2):
            try:
                action()
                return
            except _Retryable as exc:
                self.attempts.append(f"{shown}: attempt {attempt}: {exc}")
                if attempt > self.retries:
                    raise PayloadError(
                        f"{shown}: download failed after {attempt} attempts: {exc}",
                        hint="check the network, proxy (HTTPS_PROXY) or mirror; partial "
                        "downloads are kept and resumed next time",
                    ) from exc
                delay = self.backoff * 2 ** (attempt - 1)
                log.warning("%s: %s; retrying in %.1f s", shown, exc, delay)
                self.sleep(delay)

    def _get(self, url: str, headers: Mapping[str, str]) -> requests.Response:
        try:
            response = self.session.get(
                url,
                headers={"User-Agent": USER_AGENT, **headers},
                stream=True,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retryable(_reason(exc, url)) from exc
        if response.status_code == 429 or response.status_code >= 500:
            response.close()
            raise _Retryable(f"HTTP {response.status_code}")
        return response

    def get_text(self, url: str) -> str:
        result: list[str] = []

        def once() -> None:
            with self._get(url, {}) as response:
                if response.status_code != 200:
                    raise PayloadError(f"{redact_url(url)}: HTTP {response.status_code}")
                try:
                    result.append(response.content.decode("utf-8", "replace"))
                except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                    raise _Retryable(_reason(exc, url)) from exc

        self._retry(url, once)
        return result[0]

    def download(self, url: str, dest: Path, *, label: str) -> None:
        self._retry(url, lambda: self._download_once(url, dest, label))

    def _download_once(self, url: str, dest: Path, label: str) -> None:
        have = dest.stat().st_size if dest.exists() else 0
        # Ranges count bytes of the representation: ask for it unencoded so they line up.
        headers = {"Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        with self._get(url, headers) as response:
            status = response.status_code
            if status == 416:
                # Our partial file is at least as long as the resource: it is not a prefix
                # of it. Start over.
                dest.unlink(missing_ok=True)
                raise _Retryable("partial file does not fit the resource; restarting")
            if status == 206 and have:
                content_range = response.headers.get("Content-Range", "")
                if not content_range.startswith(f"bytes {have}-"):
                    dest.unlink(missing_ok=True)
                    raise _Retryable(f"unexpected Content-Range {content_range!r}; restarting")
                mode = "ab"
                self.attempts.append(f"{redact_url(url)}: resumed at byte {have}")
            elif status == 200:
                mode, have = "wb", 0
            else:
                raise PayloadError(
                    f"{redact_url(url)}: HTTP {status}",
                    hint="check that the lock file's version and file names exist at the "
                    "source (a mirror must use the layout in docs/payload.md)",
                )
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None and length.isdigit() else None
            done = have
            enabled = self.progress and Progress.wanted(False)
            with dest.open(mode) as out, Progress(label, total, enabled=enabled) as bar:
                try:
                    for chunk in response.iter_content(CHUNK):
                        out.write(chunk)
                        done += len(chunk)
                        bar.update(done)
                except (
                    requests.ConnectionError,
                    requests.exceptions.ChunkedEncodingError,
                    requests.Timeout,
                ) as exc:
                    raise _Retryable(
                        f"connection lost after {done} bytes ({_reason(exc, url)})"
                    ) from exc
            if total is not None and done != total:
                raise _Retryable(f"short body: {done} of {total} bytes")


def _new_session() -> requests.Session:
    session = requests.Session()
    # trust_env (the default) makes requests use HTTP_PROXY/HTTPS_PROXY/NO_PROXY and
    # REQUESTS_CA_BUNDLE; say so, since a proxy is the usual suspect when a download fails.
    session.trust_env = True
    return session


class UpstreamSource:
    """The publishers' release URLs from the lock file."""

    def __init__(self, http: HttpDownloader) -> None:
        self.http = http

    def describe(self, pin: PinnedFile) -> str:
        return redact_url(pin.url)

    def checksum_text(self, pin: PinnedFile) -> tuple[str, str]:
        assert pin.checksum_file is not None
        url = f"{pin.base_url}/{urllib.parse.quote(pin.checksum_file)}"
        return self.http.get_text(url), redact_url(url)

    def download(self, pin: PinnedFile, dest: Path) -> None:
        self.http.download(pin.url, dest, label=pin.name)


def mirror_relpath(pin: PinnedFile, name: str | None = None) -> str:
    """Where a mirror keeps ``pin`` (or its sibling ``name``): ``<component>/<version>/<file>``."""
    return f"{pin.component}/{pin.version}/{name or pin.name}"


class MirrorUrlSource:
    """An internal HTTP(S) mirror with the layout ``<base>/<component>/<version>/<file>``."""

    def __init__(self, base_url: str, http: HttpDownloader) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http

    def _url(self, pin: PinnedFile, name: str | None = None) -> str:
        return f"{self.base_url}/{urllib.parse.quote(mirror_relpath(pin, name))}"

    def describe(self, pin: PinnedFile) -> str:
        return redact_url(self._url(pin))

    def checksum_text(self, pin: PinnedFile) -> tuple[str, str]:
        url = self._url(pin, pin.checksum_file)
        return self.http.get_text(url), redact_url(url)

    def download(self, pin: PinnedFile, dest: Path) -> None:
        self.http.download(self._url(pin), dest, label=pin.name)


class MirrorDirSource:
    """A mirror directory (USB disk, NFS, `isobuild standin-artifacts` output), same layout."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            what = (
                "--mirror is not a directory"
                if root.exists()
                else "--mirror directory does not exist"
            )
            raise ConfigError(
                f"{root}: {what}",
                hint="pass an existing directory or an http(s):// URL",
            )
        self.root = root

    def _path(self, pin: PinnedFile, name: str | None = None) -> Path:
        return self.root / mirror_relpath(pin, name)

    def describe(self, pin: PinnedFile) -> str:
        return str(self._path(pin))

    def checksum_text(self, pin: PinnedFile) -> tuple[str, str]:
        path = self._path(pin, pin.checksum_file)
        try:
            return path.read_text(encoding="utf-8", errors="replace"), str(path)
        except OSError as exc:
            raise PayloadError(
                f"{path}: cannot read the publisher checksum file: {exc.strerror}",
                hint="a mirror keeps each release's checksum file beside its assets",
            ) from exc

    def download(self, pin: PinnedFile, dest: Path) -> None:
        path = self._path(pin)
        try:
            with path.open("rb") as src, dest.open("wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
        except FileNotFoundError as exc:
            raise PayloadError(
                f"{path}: {pin.key} ({pin.name}) is missing from the mirror",
                hint="copy the release assets into <mirror>/<component>/<version>/",
            ) from exc


def make_source(
    mirror: str | None, *, progress: bool, retries: int = 4, backoff: float = 1.0
) -> Source:
    """The source for ``--mirror URL|DIR`` (or the publishers when None)."""
    http = HttpDownloader(_new_session(), retries=retries, backoff=backoff, progress=progress)
    if mirror is None:
        return UpstreamSource(http)
    if mirror.startswith(("http://", "https://")):
        return MirrorUrlSource(mirror, http)
    if "://" in mirror:
        raise ConfigError(
            f"--mirror {redact_url(mirror)}: unsupported scheme",
            hint="use an http(s):// URL or a directory",
        )
    return MirrorDirSource(Path(mirror))


# --- the fetcher ------------------------------------------------------------------------------


@dataclass
class Fetcher:
    """Gets pinned files into the cache from ``source``; ``source=None`` means offline."""

    cache: ArtifactCache
    source: Source | None
    _checksums: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    @property
    def offline(self) -> bool:
        return self.source is None

    def _publisher_digest(self, pin: PinnedFile) -> str:
        assert self.source is not None
        assert pin.checksum_file is not None
        key = (pin.component, pin.version)
        if key not in self._checksums:
            text, where = self.source.checksum_text(pin)
            entries = parse_checksums(text)
            if not entries:
                raise VerificationError(
                    f"{where}: no sha256 lines found in the publisher checksum file",
                    hint="the mirror or proxy returned something else (an error page?)",
                )
            self._checksums[key] = entries
        entries = self._checksums[key]
        if pin.name not in entries:
            raise VerificationError(
                f"{pin.key}: the publisher checksum file {pin.checksum_file} has no entry "
                f"for {pin.name}",
                hint="the release layout changed or the lock names the wrong file; set "
                "checksum_entry: false only for files the publisher never lists",
            )
        return entries[pin.name]

    def check_publisher(self, pin: PinnedFile) -> None:
        """Refuse a pin its publisher's checksum file disagrees with."""
        if self.source is None or pin.checksum_file is None:
            return
        published = self._publisher_digest(pin)
        if published != pin.sha256:
            raise VerificationError(
                f"{pin.key}: {pin.name}: the publisher's {pin.checksum_file} lists sha256 "
                f"{published} but the lock file pins {pin.sha256}",
                hint="the release was re-published or the lock file is wrong; review it and "
                "run `isobuild lock --update` deliberately, never to silence this",
            )

    def fetch(self, pin: PinnedFile) -> Path:
        """The cached, verified file for ``pin``; downloads it when needed and allowed."""
        return self.fetch_all([pin])[pin.key]

    def fetch_all(
        self, pins: Iterable[PinnedFile], *, also_missing: Iterable[str] = ()
    ) -> dict[str, Path]:
        """``pin.key`` → cached, verified path; offline, every missing file is named at once.

        ``also_missing`` lists other artifacts the caller already knows are missing, so
        the offline error names everything in one go.
        """
        found: dict[str, Path] = {}
        missing: list[PinnedFile] = []
        for pin in pins:
            cached = self.cache.lookup(pin.sha256)
            if cached is not None:
                log.debug("%s: cached at %s", pin.name, cached)
                found[pin.key] = cached
            else:
                missing.append(pin)
        others = list(also_missing)
        if (missing or others) and self.source is None:
            lines = [f"  {p.key}: {p.name} (sha256 {p.sha256})" for p in missing] + others
            raise PayloadError(
                f"--offline: {len(lines)} pinned artifact(s) missing from the cache "
                f"{self.cache.root}:\n" + "\n".join(lines),
                hint="run `isobuild fetch` with network access (or --mirror) first, "
                "or pass --cache-dir pointing at a cache that has them",
            )
        for pin in missing:  # every publisher check before any big download
            self.check_publisher(pin)
        for pin in missing:
            found[pin.key] = self._download(pin)
        return found

    def _download(self, pin: PinnedFile) -> Path:
        try:
            return self._download_into_cache(pin)
        except OSError as exc:
            if exc.errno not in no_room.CANNOT_WRITE:
                raise
            # The partial file stays: the next run resumes it once there is room.
            raise no_room.problem(
                exc, self.cache.root, f"downloading {pin.name} into the cache",
                "pass --cache-dir with a directory on a filesystem with room",
            ) from exc  # fmt: skip

    def _download_into_cache(self, pin: PinnedFile) -> Path:
        assert self.source is not None
        label = f"{self.source.describe(pin)} ({pin.key})"
        log.info("fetching %s", self.source.describe(pin))
        with self.cache.locked(pin.sha256):
            cached = self.cache.lookup(pin.sha256)  # another build may have finished it
            if cached is not None:
                return cached
            partial = self.cache.partial_path(pin.sha256)
            resumed = partial.exists() and partial.stat().st_size > 0
            self.source.download(pin, partial)
            try:
                return self.cache.admit(partial, pin.sha256, label=label)
            except VerificationError:
                if not resumed:
                    raise
            # The bytes kept from an earlier run may not belong to this file: one clean try.
            log.warning("%s: resumed download did not verify; downloading it again", pin.name)
            self.source.download(pin, partial)
            return self.cache.admit(partial, pin.sha256, label=label)
