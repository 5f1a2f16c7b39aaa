"""The one push path: OCI artifacts go up with oras-py (its traps disarmed) and are read back
with the project's registry client (``host_service.oci``) to verify what landed."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import oras.auth
import oras.provider
import requests
import requests.adapters
from urllib3.util import Retry

from host_service.oci import (
    OCI_MANIFEST,
    AuthenticationError,
    Credentials,
    Descriptor,
    NotFoundError,
    RegistryClient,
    RegistryError,
    sha256_digest,
)
from host_service.oci.client import TIMEOUT
from host_service.release import EMPTY_BLOB, EMPTY_MEDIA_TYPE, RELEASE_MEDIA_TYPE, Release
from isobuild.errors import ConfigError, PayloadError, VerificationError
from isobuild.release.bundle import Artifact, Blob
from isobuild.release.render import split_repository

log = logging.getLogger(__name__)

# What `release push` says when the registry refuses who we are (commands/release.py says
# the same for every registry error; tests hold the two to each other).
CREDENTIALS_HINT = (
    "set ISOBUILD_REGISTRY_USERNAME and ISOBUILD_REGISTRY_PASSWORD (or --password-stdin)"
)
# A connection that cannot be opened (refused, reset, no route) is tried this many more
# times, after 0 s and 1 s; an answer that does not come in time is not asked for again.
CONNECT_RETRIES = 2


class _FreshTokenAuth(oras.auth.TokenAuth):  # type: ignore[misc]
    """oras-py keeps the first bearer token it gets (often pull-only, from a HEAD) and resends
    it after every later 401, so a push against a strict token service never succeeds. A 401
    means the held token does not cover this request: drop it and ask for the challenge's
    scope."""

    def authenticate_request(
        self, original: requests.Response, headers: dict[str, str], refresh: bool = False
    ) -> Any:
        if original.status_code == 401:
            refresh = True
        return super().authenticate_request(original, headers, refresh=refresh)


# oras-py picks its auth backend by name from this table (and gives it the client's session,
# TLS setting and scheme itself); ours is its token backend with the fix above.
AUTH_BACKEND = "isobuild-fresh-token"
oras.auth.auth_backends.setdefault(AUTH_BACKEND, _FreshTokenAuth)

# oras-py's do_request answers the registry's auth challenges, under a @retry decorator that
# retries every error and every HTTP 500 five times, sleeping 3, 5, 11, 29 and 83 s (131 s)
# and logging the registry's message each time. The undecorated function (functools.wraps
# keeps it as __wrapped__) makes one attempt; _BoundedAdapter retries what is safe to.
_do_request = oras.provider.Registry.do_request.__wrapped__


class _BoundedAdapter(requests.adapters.HTTPAdapter):
    """oras-py sends every request (its token requests too) without a timeout: one that
    never answers hangs a push forever. This transport gives each one ours, and retries a
    connection that could not be opened, briefly (``CONNECT_RETRIES``)."""

    def __init__(self, timeout: float | tuple[float, float]) -> None:
        retries = Retry(
            total=CONNECT_RETRIES, connect=CONNECT_RETRIES, read=0, status=0, other=0,
            backoff_factor=0.5, raise_on_status=False,
        )  # fmt: skip
        super().__init__(max_retries=retries)
        self.timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        return super().send(
            request,
            stream=stream,
            timeout=self.timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


class _OrasRecordsToDebug(logging.Filter):
    """oras-py logs a registry's refusal itself, at ERROR; the one-line error we raise says
    it already, so its records are debug output (shown with --debug only)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


# oras-py logs through the one logger "oras.logger" (a filter does not see a child's records).
logging.getLogger("oras.logger").addFilter(_OrasRecordsToDebug())


def oras_registry(
    registry: str,
    *,
    credentials: Credentials | None,
    ca_bundle: Path | None,
    timeout: float | tuple[float, float] = TIMEOUT,
) -> oras.provider.Registry:
    """An oras-py client that never reads or writes ``~/.docker/config.json`` or ``~/.netrc``.

    Credentials go onto the auth backend as basic auth (``login()`` would write them to
    ``~/.docker/config.json``, where every later client silently finds them). Only the
    upload calls are used, which never load the docker config (``push``/``pull`` would).
    Every request has ``timeout`` (seconds: connect, read).
    """
    verify: bool | str = str(ca_bundle) if ca_bundle is not None else True
    client = oras.provider.Registry(hostname=registry, tls_verify=verify, auth_backend=AUTH_BACKEND)
    # A netrc entry for the registry would replace our bearer header with Basic; proxies from
    # the environment are still honoured, resolved here once.
    client.session.trust_env = False
    client.session.proxies.update(requests.utils.get_environ_proxies(f"https://{registry}/v2/"))
    # The auth backend holds the same session: token requests get the timeout too.
    for prefix in ("https://", "http://"):
        client.session.mount(prefix, _BoundedAdapter(timeout))
    if credentials is not None:
        client.auth.set_basic_auth(credentials.username, credentials.password)
    return client


@dataclass(frozen=True)
class Pushed:
    """Where an artifact landed: ``registry/repository``, its digest, the tags set to it."""

    repository: str
    digest: str
    tags: tuple[str, ...]

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


class Publisher:
    """Pushes to one registry with oras-py and checks with our own client (``client``).

    The test suite's registry fixture pushes through it too: nothing else in the project
    writes to a registry.
    """

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None,
        ca_bundle: Path | None,
        timeout: float | tuple[float, float] = TIMEOUT,
    ) -> None:
        self.registry = registry
        self.anonymous = credentials is None
        self._oras = oras_registry(
            registry, credentials=credentials, ca_bundle=ca_bundle, timeout=timeout
        )
        self.client = RegistryClient(
            registry, credentials=credentials, ca_bundle=ca_bundle, timeout=timeout
        )

    def close(self) -> None:
        self.client.close()
        self._oras.session.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def push_blob(self, repository: str, data: bytes, media_type: str) -> Descriptor:
        """Upload ``data`` (monolithic POST + PUT) unless the registry already has it."""
        digest = sha256_digest(data)
        descriptor = Descriptor(media_type=media_type, digest=digest, size=len(data))
        blobs = f"{self._oras.prefix}://{self.registry}/v2/{repository}/blobs"
        what = f"blob {digest}"
        if self._send("HEAD", f"{blobs}/{digest}", what, repository).status_code == 200:
            return descriptor
        started = self._send("POST", f"{blobs}/uploads/", what, repository)
        self._check(started, (202,), f"upload of {what}", repository)
        location = started.headers.get("Location")
        if not location:
            raise PayloadError(
                f"{self.registry}/{repository}: the registry started an upload of {what} "
                "without saying where (no Location header)"
            )
        url = urljoin(started.url, location)
        url += ("&" if "?" in url else "?") + f"digest={digest}"
        headers = {"Content-Type": "application/octet-stream"}
        finished = self._send("PUT", url, what, repository, data=data, headers=headers)
        self._check(finished, (201,), what, repository)
        return descriptor

    def push_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """PUT these exact manifest (or index) bytes under a tag or digest; returns the digest.

        oras-py's ``upload_manifest`` re-serialises a dict and always says OCI image
        manifest; the bytes go through its authenticated ``do_request`` instead, so the
        digest is the digest of what was reviewed.
        """
        digest = sha256_digest(data)
        url = f"{self._oras.prefix}://{self.registry}/v2/{repository}/manifests/{reference}"
        what = f"manifest for {reference}"
        headers = {"Content-Type": media_type}
        response = self._send("PUT", url, what, repository, data=data, headers=headers)
        self._check(response, (201,), what, repository)
        announced = response.headers.get("Docker-Content-Digest")
        if announced and announced != digest:
            raise PayloadError(
                f"{self.registry}/{repository}:{reference}: registry stored manifest "
                f"{announced}, expected {digest}"
            )
        return digest

    def _send(
        self,
        method: str,
        url: str,
        what: str,
        repository: str,
        *,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """One request through oras-py's client, which answers the registry's auth challenges."""
        try:
            response: requests.Response = _do_request(
                self._oras, url, method, data=data, headers=headers or {}
            )
        except requests.RequestException as exc:
            raise PayloadError(f"{self.registry}/{repository}: {what}: {exc}") from exc
        except ValueError as exc:
            # oras-py raises ValueError when it cannot authenticate.
            raise PayloadError(
                f"{self.registry}/{repository}: {what}: {exc}", hint=CREDENTIALS_HINT
            ) from exc
        return response

    def push(self, repository: str, artifact: Artifact, tags: Sequence[str]) -> Pushed:
        """Upload the blobs, then put the exact manifest bytes under each tag in order."""
        # Find an unreachable registry or refused credentials with our client first: its
        # errors name the registry and who was refused.
        self._preflight(repository)
        for blob in artifact.blobs:
            self.push_blob(repository, blob.data, blob.media_type)
        for tag in tags:
            self.push_manifest(repository, tag, artifact.manifest_bytes, OCI_MANIFEST)
            resolved = self._resolve(repository, tag)
            if resolved != artifact.digest:
                raise PayloadError(
                    f"{self.registry}/{repository}:{tag}: tag points at {resolved} after the "
                    f"push, expected {artifact.digest}"
                )
            log.info("pushed %s/%s:%s -> %s", self.registry, repository, tag, artifact.digest)
        return Pushed(f"{self.registry}/{repository}", artifact.digest, tuple(tags))

    def existing(self, repository: str, tag: str) -> str | None:
        """The digest ``tag`` points at, or None when it does not exist yet."""
        try:
            return self.client.resolve(repository, tag)
        except NotFoundError:
            return None
        except RegistryError as exc:
            raise _payload_error(exc) from exc

    def _preflight(self, repository: str) -> None:
        try:
            self.client.blob_exists(repository, "sha256:" + "0" * 64)
        except RegistryError as exc:
            raise _payload_error(exc) from exc

    def _resolve(self, repository: str, tag: str) -> str:
        try:
            return self.client.resolve(repository, tag)
        except RegistryError as exc:
            raise _payload_error(exc) from exc

    def _check(
        self, response: requests.Response, ok: Sequence[int], what: str, repository: str
    ) -> None:
        if response.status_code in ok:
            return
        detail = ""
        try:
            errors = response.json().get("errors") or []
            detail = "; ".join(f"{e.get('code')} {e.get('message', '')}".strip() for e in errors)
        except (ValueError, AttributeError):
            pass
        denied = response.status_code in (401, 403)
        who = " (anonymous: no credentials were given)" if denied and self.anonymous else ""
        raise PayloadError(
            f"{self.registry}/{repository}: {what} refused with HTTP {response.status_code}"
            + (f": {detail}" if detail else "")
            + who,
            hint="set ISOBUILD_REGISTRY_USERNAME and ISOBUILD_REGISTRY_PASSWORD (push rights)"
            if denied
            else None,
        )


def _payload_error(exc: RegistryError) -> PayloadError:
    """A read of the registry client failed; a refusal says where credentials come from."""
    hint = exc.hint
    if hint is None and isinstance(exc, AuthenticationError):
        hint = CREDENTIALS_HINT
    return PayloadError(str(exc), hint=hint)


def release_artifact(release: Release) -> Artifact:
    """The release artifact: the manifest JSON as config blob, the OCI empty layer."""
    return Artifact(
        config=Blob(RELEASE_MEDIA_TYPE, release.to_json()),
        layers=(Blob(EMPTY_MEDIA_TYPE, EMPTY_BLOB),),
    )


@dataclass(frozen=True)
class Published:
    bundle: Pushed
    release: Pushed
    version: str
    channel: str

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "channel": self.channel,
            "bundle": {
                "repository": self.bundle.repository,
                "digest": self.bundle.digest,
                "tags": list(self.bundle.tags),
            },
            "release": {
                "repository": self.release.repository,
                "digest": self.release.digest,
                "tags": list(self.release.tags),
            },
        }


def publish_release(
    release: Release,
    bundle: Artifact,
    *,
    release_repository: str,
    credentials: Credentials | None,
    ca_bundle: Path | None,
    timeout: float | tuple[float, float] = TIMEOUT,
) -> Published:
    """Push the config bundle, then the release under its version, then move its channel.

    A version is immutable: if its tag already names a different release, nothing is pushed.
    """
    if bundle.digest != release.config.digest:
        raise ConfigError(
            f"release {release.version}: config.digest is {release.config.digest} but the "
            f"bundle is {bundle.digest}",
            hint="render the release from this bundle (isobuild release render --bundle FILE)",
        )
    bundle_registry, bundle_repo = split_repository(release.config.repository, "config.repository")
    registry, repository = split_repository(release_repository, "--to")
    artifact = release_artifact(release)
    with Publisher(
        registry, credentials=credentials, ca_bundle=ca_bundle, timeout=timeout
    ) as publisher:
        existing = publisher.existing(repository, release.version)
        if existing is not None and existing != artifact.digest:
            raise VerificationError(
                f"{registry}/{repository}:{release.version} already names another release "
                f"({existing}); versions are immutable",
                hint="publish under a new version",
            )
        with Publisher(
            bundle_registry, credentials=credentials, ca_bundle=ca_bundle, timeout=timeout
        ) as bundle_publisher:
            pushed_bundle = bundle_publisher.push(
                bundle_repo, bundle, [release.config.tag or release.version]
            )
        pushed_release = publisher.push(repository, artifact, [release.version, release.channel])
    return Published(pushed_bundle, pushed_release, release.version, release.channel)
