"""What can go wrong talking to a registry; every error names registry, repository, reference."""

from __future__ import annotations

from host_service.errors import ExternalError


class RegistryError(ExternalError):
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


class RegistryTimeout(RegistryUnreachable):
    """The connection or an answer took longer than the client's timeout."""


class ProxyFailed(RegistryUnreachable):
    """The proxy could not be reached, or would not open a tunnel to the registry."""


class ProxyAuthenticationRequired(ProxyFailed):
    """The proxy answered 407: it wants a user name and password, or refused the ones sent."""


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
