"""The project's one OCI registry client (reads): token flow, basic auth, proxies, custom CA,
every digest recomputed. Pushing is the builder's (``isobuild/release/publish.py``, oras-py)."""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from host_service import atomic
from host_service.oci.errors import (
    AuthenticationError,
    DigestMismatch,
    ManifestError,
    NotFoundError,
    ProtocolError,
    ProxyAuthenticationRequired,
    ProxyFailed,
    RegistryError,
    RegistryTimeout,
    RegistryTLSError,
    RegistryUnreachable,
)
from host_service.oci.reference import (
    ACCEPT,
    DIGEST_RE,
    INDEX_TYPES,
    MANIFEST_TYPES,
    Manifest,
    platform_name,
    select_platform,
    sha256_digest,
)

log = logging.getLogger(__name__)

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# Seconds to open a connection, then for each read of the answer (not the whole answer).
TIMEOUT = (10.0, 30.0)
CHUNK = 1024 * 1024
# urllib3 reports a proxy's refusal of CONNECT as "Tunnel connection failed: 407 ...".
_PROXY_407 = re.compile(r"\b407\b")
# urllib3 prefixes connection errors with the connection object's repr.
_OBJECT_PREFIX = re.compile(r"^<[^>]*>: ")


@dataclass(frozen=True)
class Credentials:
    """Basic-auth credentials for a registry; the password never appears in repr()."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Ping:
    """The registry's answer to ``GET /v2/``: 200 or 401 means an OCI registry is there."""

    status: int
    date: float | None  # the Date header, for a clock-skew check


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


class RegistryClient:
    """One registry, many repositories.

    Anonymous pulls use the bearer-token flow without credentials; with ``credentials`` the
    token service (or a Basic challenge) gets them. Nothing is read from
    ``~/.docker/config.json`` or ``~/.netrc``. ``ca_bundle`` replaces the system trust store;
    ``proxies`` (``{"https": url}``) replaces the ``HTTPS_PROXY``/``NO_PROXY`` environment.
    ``timeout`` bounds every request, in seconds: one number for connecting and for each read
    of the answer, or a ``(connect, read)`` pair.
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        ca_bundle: Path | None = None,
        proxies: Mapping[str, str] | None = None,
        timeout: float | tuple[float, float] = TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.registry = registry
        self.credentials = credentials
        self.timeout = timeout
        self._verify: bool | str = str(ca_bundle) if ca_bundle is not None else True
        self._proxies = dict(proxies) if proxies is not None else None
        self._session = session or requests.Session()
        # trust_env would read ~/.netrc and send it to token realms: anonymous must stay
        # anonymous. Proxies from the environment are resolved per URL in _proxies_for.
        self._session.trust_env = False
        self._tokens: dict[str, str] = {}
        self._basic = False
        self.base = f"https://{registry}/v2/"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------

    def _proxies_for(self, url: str) -> dict[str, str]:
        if self._proxies is not None:
            return self._proxies
        return dict(requests.utils.get_environ_proxies(url))

    def _send(
        self,
        method: str,
        url: str,
        *,
        repository: str,
        reference: str,
        headers: Mapping[str, str] | None = None,
        data: bytes | Iterator[bytes] | None = None,
        stream: bool = False,
        auth: tuple[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        allow_redirects: bool = True,
    ) -> requests.Response:
        try:
            return self._session.request(
                method,
                url,
                headers=dict(headers or {}),
                data=data,
                stream=stream,
                auth=auth,
                params=params,
                verify=self._verify,
                proxies=self._proxies_for(url),
                timeout=self.timeout,
                allow_redirects=allow_redirects,
            )
        except requests.exceptions.SSLError as exc:
            raise RegistryTLSError(
                f"TLS failed for {urlsplit(url).netloc}: {_reason(exc)}",
                registry=self.registry,
                repository=repository,
                reference=reference,
                hint="is the registry's CA in the CA bundle? (registry.ca_bundle)",
            ) from exc
        except requests.exceptions.ProxyError as exc:
            if _PROXY_407.search(str(exc)):
                raise ProxyAuthenticationRequired(
                    f"the proxy {_proxy_host(self._proxies_for(url))} answered 407 Proxy "
                    "Authentication Required",
                    registry=self.registry,
                    repository=repository,
                    reference=reference,
                    hint="give the proxy user name and password in the proxy URL "
                    "(http://user:password@proxy:port)",
                ) from exc
            raise ProxyFailed(
                f"proxy refused the connection: {_reason(exc)}",
                registry=self.registry,
                repository=repository,
                reference=reference,
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise RegistryTimeout(
                f"{method} {urlsplit(url).netloc} timed out: {_reason(exc)}",
                registry=self.registry,
                repository=repository,
                reference=reference,
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise RegistryUnreachable(
                f"{method} {urlsplit(url).netloc} failed: {_reason(exc)}",
                registry=self.registry,
                repository=repository,
                reference=reference,
            ) from exc

    def ping(self) -> Ping:
        """``GET /v2/`` without credentials and without following redirects.

        Any HTTP answer is returned (200 or 401: a registry; anything else: something answers
        in its place); no answer raises ``RegistryUnreachable`` (or its TLS or proxy kinds).
        A plain-HTTP proxy's own 407 is raised as ``ProxyAuthenticationRequired`` too.
        """
        response = self._send("GET", self.base, repository="", reference="", allow_redirects=False)
        with response:
            if response.status_code == 407:
                raise ProxyAuthenticationRequired(
                    f"the proxy {_proxy_host(self._proxies_for(self.base))} answered 407 "
                    "Proxy Authentication Required",
                    registry=self.registry,
                )
            date = response.headers.get("Date")
            try:
                when = email.utils.parsedate_to_datetime(date).timestamp() if date else None
            except (TypeError, ValueError):
                when = None
            return Ping(response.status_code, when)

    def _authorization(self, repository: str) -> dict[str, str]:
        token = self._tokens.get(repository)
        if token is not None:
            return {"Authorization": f"Bearer {token}"}
        return {}

    def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        repository: str,
        reference: str = "",
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send with the repository's token; on a challenge, get a token and retry once."""
        url = urljoin(self.base, path_or_url)

        def send() -> requests.Response:
            # Credentials as they stand now: the retry carries the token or Basic just won.
            return self._send(
                method,
                url,
                repository=repository,
                reference=reference,
                headers={**(headers or {}), **self._authorization(repository)},
                data=data,
                stream=stream,
                auth=self._basic_auth() if self._basic else None,
            )

        response = send()
        if response.status_code != 401:
            return response
        challenge = response.headers.get("Www-Authenticate", "")
        response.close()
        scheme, params = _parse_challenge(challenge)
        if scheme == "bearer" and params.get("realm"):
            self._tokens[repository] = self._fetch_token(params, repository, reference)
        elif scheme == "basic" and self.credentials is not None and not self._basic:
            self._basic = True
        else:
            raise AuthenticationError(
                self._denied_message(method, challenge),
                registry=self.registry,
                repository=repository,
                reference=reference,
            )
        response = send()
        if response.status_code in (401, 403):
            response.close()
            raise AuthenticationError(
                self._denied_message(method, response.headers.get("Www-Authenticate", "")),
                registry=self.registry,
                repository=repository,
                reference=reference,
            )
        return response

    def _basic_auth(self) -> tuple[str, str] | None:
        if self.credentials is None:
            return None
        return (self.credentials.username, self.credentials.password)

    def _denied_message(self, method: str, challenge: str) -> str:
        who = (
            f"user {self.credentials.username!r}"
            if self.credentials is not None
            else "anonymous access (supply credentials)"
        )
        _, params = _parse_challenge(challenge)
        scope = f" for scope {params['scope']!r}" if "scope" in params else ""
        return f"{method} denied to {who}{scope}"

    def _fetch_token(self, challenge: Mapping[str, str], repository: str, reference: str) -> str:
        realm = challenge["realm"]
        query = {k: challenge[k] for k in ("service", "scope") if challenge.get(k)}
        auth = self._basic_auth()
        if auth is not None and urlsplit(realm).scheme != "https":
            raise AuthenticationError(
                f"token realm {realm} is not https: refusing to send credentials",
                registry=self.registry,
                repository=repository,
                reference=reference,
            )
        response = self._send(
            "GET",
            realm,
            repository=repository,
            reference=reference,
            params=query,
            auth=auth,
            headers={"Accept": "application/json"},
        )
        with response:
            if response.status_code in (401, 403):
                who = (
                    f"credentials for {self.credentials.username!r}"
                    if self.credentials is not None
                    else "anonymous token request"
                )
                raise AuthenticationError(
                    f"token service {urlsplit(realm).netloc} refused {who}"
                    f" (HTTP {response.status_code})",
                    registry=self.registry,
                    repository=repository,
                    reference=reference,
                )
            if response.status_code != 200:
                raise ProtocolError(
                    f"token service {realm} answered HTTP {response.status_code}",
                    registry=self.registry,
                    repository=repository,
                    reference=reference,
                )
            try:
                body = response.json()
            except ValueError as exc:
                raise ProtocolError(
                    f"token service {realm} did not answer JSON",
                    registry=self.registry,
                    repository=repository,
                    reference=reference,
                ) from exc
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ProtocolError(
                f"token service {realm} answered without a token",
                registry=self.registry,
                repository=repository,
                reference=reference,
            )
        log.debug("token for %s/%s (%s)", self.registry, repository, query.get("scope", ""))
        return token

    def _fail(
        self, response: requests.Response, what: str, repository: str, reference: str
    ) -> None:
        """Raise the error matching a non-success answer for ``what`` (manifest, blob), with
        what the registry answered: a 500 is not a missing manifest."""
        code = response.status_code
        detail = _registry_errors(response)
        answer = f"HTTP {code}{' ' + response.reason if response.reason else ''}"
        answer += f": {detail}" if detail else ""
        response.close()
        cls: type[RegistryError] = ProtocolError
        message = f"{what}: the registry answered {answer}"
        if code == 404:
            cls, message = NotFoundError, f"{what} not found: {answer}"
        elif code in (401, 403):
            cls, message = AuthenticationError, f"{what}: access refused: {answer}"
        raise cls(message, registry=self.registry, repository=repository, reference=reference)

    def _chunks(
        self, response: requests.Response, repository: str, reference: str
    ) -> Iterator[bytes]:
        """The answer's body. requests raises while the body streams, outside ``_send``: a
        connection lost or timed out mid-body (a truncated answer) is our error too, naming
        the host that was sending (a redirect's target, for a blob on a CDN)."""
        try:
            yield from response.iter_content(CHUNK)
        except requests.exceptions.RequestException as exc:
            cls = RegistryTimeout if _timed_out(exc) else RegistryUnreachable
            raise cls(
                f"the answer from {urlsplit(response.url).netloc} broke off: {_reason(exc)}",
                registry=self.registry,
                repository=repository,
                reference=reference,
            ) from exc

    # -- manifests ---------------------------------------------------------------------

    def resolve(self, repository: str, reference: str) -> str:
        """Digest of the manifest a tag (or digest) names, from ``Docker-Content-Digest``.

        HEAD does not move bytes, so this digest is the registry's word; ``get_manifest``
        recomputes it from the bytes.
        """
        response = self._request(
            "HEAD",
            f"{repository}/manifests/{reference}",
            repository=repository,
            reference=reference,
            headers={"Accept": ACCEPT},
        )
        if response.status_code != 200:
            self._fail(response, "manifest", repository, reference)
        digest = response.headers.get("Docker-Content-Digest", "")
        response.close()
        if not DIGEST_RE.fullmatch(digest):
            return self.get_manifest(repository, reference).digest
        if DIGEST_RE.fullmatch(reference) and digest != reference:
            raise DigestMismatch(
                expected=reference,
                actual=digest,
                what="manifest",
                registry=self.registry,
                repository=repository,
                reference=reference,
            )
        return digest

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        """Fetch a manifest or index; its digest is recomputed and checked."""
        response = self._request(
            "GET",
            f"{repository}/manifests/{reference}",
            repository=repository,
            reference=reference,
            headers={"Accept": ACCEPT},
            stream=True,
        )
        if response.status_code != 200:
            self._fail(response, "manifest", repository, reference)
        with response:
            data = _read_limited(self._chunks(response, repository, reference), MAX_MANIFEST_BYTES)
        if data is None:
            raise ManifestError(
                f"manifest larger than {MAX_MANIFEST_BYTES} bytes",
                registry=self.registry,
                repository=repository,
                reference=reference,
            )
        digest = sha256_digest(data)
        announced = response.headers.get("Docker-Content-Digest", "")
        for expected, source in ((reference, "requested"), (announced, "announced")):
            if DIGEST_RE.fullmatch(expected) and expected != digest:
                raise DigestMismatch(
                    expected=expected,
                    actual=digest,
                    what=f"manifest ({source})",
                    registry=self.registry,
                    repository=repository,
                    reference=reference,
                )
        try:
            document = json.loads(data)
        except ValueError as exc:
            raise ManifestError(
                f"manifest is not JSON: {exc}",
                registry=self.registry,
                repository=repository,
                reference=reference,
            ) from exc
        if not isinstance(document, dict):
            raise ManifestError(
                "manifest is not a JSON object",
                registry=self.registry,
                repository=repository,
                reference=reference,
            )
        header_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        media_type = str(document.get("mediaType") or header_type)
        if media_type not in INDEX_TYPES | MANIFEST_TYPES:
            raise ManifestError(
                f"unsupported manifest media type {media_type!r}",
                registry=self.registry,
                repository=repository,
                reference=reference,
            )
        return Manifest(digest=digest, media_type=media_type, data=data, document=document)

    def get_image_manifest(
        self, repository: str, reference: str, *, platform: str = "linux/amd64"
    ) -> Manifest:
        """The image manifest for ``platform`` (``os/arch[/variant]``), through an index."""
        manifest = self.get_manifest(repository, reference)
        if not manifest.is_index:
            return manifest
        chosen = select_platform(manifest.manifests, platform)
        if chosen is None:
            offered = sorted(platform_name(d.platform) for d in manifest.manifests if d.platform)
            raise ManifestError(
                f"index has no {platform} manifest (offers {', '.join(offered) or 'none'})",
                registry=self.registry,
                repository=repository,
                reference=reference,
            )
        return self.get_manifest(repository, chosen.digest)

    # -- blobs -------------------------------------------------------------------------

    def get_blob(self, repository: str, digest: str, *, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        """A small blob (a config) in memory, digest checked."""
        response = self._blob_response(repository, digest)
        with response:
            data = _read_limited(self._chunks(response, repository, digest), max_bytes)
        if data is None:
            raise ProtocolError(
                f"blob larger than {max_bytes} bytes",
                registry=self.registry,
                repository=repository,
                reference=digest,
            )
        actual = sha256_digest(data)
        if actual != digest:
            raise DigestMismatch(
                expected=digest,
                actual=actual,
                what="blob",
                registry=self.registry,
                repository=repository,
                reference=digest,
            )
        return data

    def download_blob(self, repository: str, digest: str, dest: Path) -> int:
        """Stream a blob to ``dest`` (atomically); refuses bytes that do not hash to digest."""
        response = self._blob_response(repository, digest)
        hasher = hashlib.sha256()
        size = 0
        with atomic.replacing(dest, mode=0o600) as out:
            with response:
                for chunk in self._chunks(response, repository, digest):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            actual = "sha256:" + hasher.hexdigest()
            if actual != digest:
                raise DigestMismatch(
                    expected=digest,
                    actual=actual,
                    what="blob",
                    registry=self.registry,
                    repository=repository,
                    reference=digest,
                )
        return size

    def _blob_response(self, repository: str, digest: str) -> requests.Response:
        if not DIGEST_RE.fullmatch(digest):
            raise ValueError(f"{digest!r} is not a sha256 digest")
        response = self._request(
            "GET",
            f"{repository}/blobs/{digest}",
            repository=repository,
            reference=digest,
            stream=True,
        )
        if response.status_code != 200:
            self._fail(response, "blob", repository, digest)
        return response

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self._request(
            "HEAD", f"{repository}/blobs/{digest}", repository=repository, reference=digest
        )
        response.close()
        return response.status_code == 200


def _read_limited(chunks: Iterable[bytes], limit: int) -> bytes | None:
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _registry_errors(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return ""
    return "; ".join(
        f"{e.get('code', '?')} {e.get('message', '')}".strip()
        for e in errors
        if isinstance(e, dict)
    )


def _proxy_host(proxies: Mapping[str, str]) -> str:
    """``host:port`` of the HTTPS proxy, never its credentials."""
    parts = urlsplit(proxies.get("https", ""))
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname or "?")


def _wrapped(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors it wraps, outermost first (requests wraps urllib3's errors in
    ``reason``, ``original_error`` or ``args``)."""
    current: BaseException = exc
    seen = {id(exc)}
    yield current
    while True:
        inner = getattr(current, "reason", None) or getattr(current, "original_error", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in current.args if isinstance(a, BaseException)), None)
        if inner is None or id(inner) in seen:
            return
        seen.add(id(inner))
        current = inner
        yield current


def _timed_out(exc: BaseException) -> bool:
    """Whether a requests error is a timeout: mid-body, requests reports urllib3's read
    timeout as a plain ``ConnectionError`` around it (raised from the socket's timeout)."""
    for error in _wrapped(exc):
        if isinstance(error, requests.exceptions.Timeout | TimeoutError):
            return True
        if isinstance(error.__cause__, TimeoutError):
            return True
    return False


def _reason(exc: BaseException) -> str:
    """What went wrong, from the innermost error of a requests/urllib3 chain.

    requests wraps urllib3's ``MaxRetryError``, which wraps the real reason ("Tunnel
    connection failed: 407 ...", "certificate verify failed ...", "Connection refused");
    the outer texts repeat the URL and bury the reason at the end of a long line.
    """
    *_, current = _wrapped(exc)
    text = _OBJECT_PREFIX.sub("", str(current)) or str(exc)
    return text if len(text) <= 300 else text[:297] + "..."
