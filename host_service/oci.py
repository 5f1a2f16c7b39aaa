"""The project's one OCI registry client: token flow, basic auth, proxies, custom CA, digests."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from host_service import atomic
from host_service.errors import ServiceError

log = logging.getLogger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST))

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
REPOSITORY_RE = re.compile(
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
CHUNK = 1024 * 1024


class RegistryError(ServiceError):
    """A registry operation failed; names the registry, repository and reference involved."""

    def __init__(
        self,
        message: str,
        *,
        registry: str,
        repository: str = "",
        reference: str = "",
        hint: str | None = None,
    ) -> None:
        self.registry = registry
        self.repository = repository
        self.reference = reference
        self.detail = message
        super().__init__(f"{self.where}: {message}", hint=hint)

    @property
    def where(self) -> str:
        where = self.registry
        if self.repository:
            where += f"/{self.repository}"
        if self.reference:
            where += ("@" if self.reference.startswith("sha256:") else ":") + self.reference
        return where


class RegistryUnreachable(RegistryError):
    """No HTTP answer: DNS, connection, proxy or timeout."""


class RegistryTLSError(RegistryUnreachable):
    """The TLS handshake failed: wrong or missing CA bundle, bad certificate."""


class AuthenticationError(RegistryError):
    """The registry or its token service refused us."""


class NotFoundError(RegistryError):
    """The repository, tag, manifest or blob does not exist."""


class DigestMismatch(RegistryError):
    """Bytes from the registry do not hash to the digest they were asked for or announced."""

    def __init__(
        self,
        *,
        expected: str,
        actual: str,
        what: str,
        registry: str,
        repository: str,
        reference: str,
    ) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{what} digest mismatch: expected {expected}, got {actual}",
            registry=registry,
            repository=repository,
            reference=reference,
        )


class ManifestError(RegistryError):
    """A manifest is not valid JSON, has an unexpected media type or lacks a platform."""


class ProtocolError(RegistryError):
    """The registry answered something the distribution spec does not allow."""


@dataclass(frozen=True)
class Credentials:
    """Basic-auth credentials for a registry; the password never appears in repr()."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Reference:
    """``registry/repository[:tag][@digest]`` split into its parts."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse ``host[:port]/repo[:tag][@sha256:...]``; the registry host is required."""
    rest, _, digest = text.partition("@")
    host, slash, path = rest.partition("/")
    if not slash or not ("." in host or ":" in host or host == "localhost"):
        raise ValueError(f"{text!r}: expected registry/repository[:tag][@digest]")
    repository, colon, tag = path.rpartition(":")
    if not colon:
        repository, tag = path, ""
    if not REPOSITORY_RE.fullmatch(repository):
        raise ValueError(f"{text!r}: {repository!r} is not a valid repository name")
    if tag and not TAG_RE.fullmatch(tag):
        raise ValueError(f"{text!r}: {tag!r} is not a valid tag")
    if digest and not DIGEST_RE.fullmatch(digest):
        raise ValueError(f"{text!r}: {digest!r} is not a sha256 digest")
    return Reference(host, repository, tag or None, digest or None)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] | None = None
    platform: Mapping[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest}
        out["size"] = self.size
        if self.platform:
            out["platform"] = dict(self.platform)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Descriptor:
        return cls(
            media_type=str(data.get("mediaType", "")),
            digest=str(data["digest"]),
            size=int(data["size"]),
            annotations=data.get("annotations"),
            platform=data.get("platform"),
        )


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as fetched: its verified digest, media type, bytes and document."""

    digest: str
    media_type: str
    data: bytes = field(repr=False)
    document: Mapping[str, Any] = field(repr=False)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def config(self) -> Descriptor:
        return Descriptor.from_json(self.document["config"])

    @property
    def layers(self) -> list[Descriptor]:
        return [Descriptor.from_json(d) for d in self.document.get("layers", [])]

    @property
    def manifests(self) -> list[Descriptor]:
        return [Descriptor.from_json(d) for d in self.document.get("manifests", [])]


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
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        ca_bundle: Path | None = None,
        proxies: Mapping[str, str] | None = None,
        timeout: float = 30.0,
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
                allow_redirects=True,
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
            raise RegistryUnreachable(
                f"proxy refused the connection: {_reason(exc)}",
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
        """Raise the error matching a non-success answer."""
        code = response.status_code
        detail = _registry_errors(response)
        response.close()
        cls: type[RegistryError] = ProtocolError
        if code == 404:
            cls = NotFoundError
        elif code in (401, 403):
            cls = AuthenticationError
        raise cls(
            f"{what}: HTTP {code}{': ' + detail if detail else ''}",
            registry=self.registry,
            repository=repository,
            reference=reference,
        )

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
            self._fail(response, "manifest not found", repository, reference)
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
            self._fail(response, "manifest not found", repository, reference)
        with response:
            data = _read_limited(response, MAX_MANIFEST_BYTES)
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
            offered = sorted(_platform_name(d.platform) for d in manifest.manifests if d.platform)
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
            data = _read_limited(response, max_bytes)
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
                for chunk in response.iter_content(CHUNK):
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
            self._fail(response, "blob not found", repository, digest)
        return response

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self._request(
            "HEAD", f"{repository}/blobs/{digest}", repository=repository, reference=digest
        )
        response.close()
        return response.status_code == 200

    # -- push --------------------------------------------------------------------------

    def push_blob(self, repository: str, data: bytes, media_type: str) -> Descriptor:
        """Upload ``data`` (monolithic POST + PUT) unless the registry already has it."""
        digest = sha256_digest(data)
        descriptor = Descriptor(media_type=media_type, digest=digest, size=len(data))
        if self.blob_exists(repository, digest):
            return descriptor
        response = self._request(
            "POST", f"{repository}/blobs/uploads/", repository=repository, reference=digest
        )
        if response.status_code != 202 or "Location" not in response.headers:
            self._fail(response, "cannot start blob upload", repository, digest)
        location = urljoin(self.base, response.headers["Location"])
        response.close()
        separator = "&" if "?" in location else "?"
        response = self._request(
            "PUT",
            f"{location}{separator}digest={digest}",
            repository=repository,
            reference=digest,
            headers={"Content-Type": "application/octet-stream"},
            data=data,
        )
        if response.status_code != 201:
            self._fail(response, "blob upload refused", repository, digest)
        response.close()
        return descriptor

    def push_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """PUT manifest bytes under a tag or digest; returns the digest, checked."""
        digest = sha256_digest(data)
        response = self._request(
            "PUT",
            f"{repository}/manifests/{reference}",
            repository=repository,
            reference=reference,
            headers={"Content-Type": media_type},
            data=data,
        )
        if response.status_code != 201:
            self._fail(response, "manifest refused", repository, reference)
        announced = response.headers.get("Docker-Content-Digest", digest)
        response.close()
        if announced != digest:
            raise DigestMismatch(
                expected=digest,
                actual=announced,
                what="pushed manifest",
                registry=self.registry,
                repository=repository,
                reference=reference,
            )
        return digest


def select_platform(candidates: list[Descriptor], platform: str) -> Descriptor | None:
    """The first descriptor whose platform matches ``os/arch[/variant]``."""
    wanted = platform.split("/")
    for descriptor in candidates:
        if descriptor.platform is None:
            continue
        have = [
            descriptor.platform.get("os", ""),
            descriptor.platform.get("architecture", ""),
        ]
        if len(wanted) > 2:
            have.append(descriptor.platform.get("variant", ""))
        if have == wanted:
            return descriptor
    return None


def _platform_name(platform: Mapping[str, str] | None) -> str:
    if not platform:
        return "?"
    name = f"{platform.get('os', '?')}/{platform.get('architecture', '?')}"
    return f"{name}/{platform['variant']}" if platform.get("variant") else name


def _read_limited(response: requests.Response, limit: int) -> bytes | None:
    parts: list[bytes] = []
    size = 0
    for chunk in response.iter_content(CHUNK):
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


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 200 else text[:197] + "..."
