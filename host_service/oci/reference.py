"""OCI names and documents: media types, references, digests, descriptors, manifests (pure)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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


# A digest after the last "@" (the algorithms OCI registers); any other "@" is userinfo.
_DIGEST_SUFFIX = re.compile(r"@(?:sha256|sha384|sha512|blake3):[^/@]*$", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
CREDENTIALS_IN_REFERENCE = "credentials do not belong in a registry reference"


def redact_reference(text: str) -> str:
    """``text`` with any ``user[:password]@`` before the registry host replaced by ``***@``.

    Everything up to the last ``@`` that does not start the digest is taken as userinfo: a
    password may itself hold ``@`` or ``/``.
    """
    suffix = _DIGEST_SUFFIX.search(text)
    body, digest = (text[: suffix.start()], suffix.group()) if suffix else (text, "")
    if "@" not in body:
        return text
    scheme = _SCHEME.match(body)
    prefix = scheme.group() if scheme else ""
    return f"{prefix}***@{body.rpartition('@')[2]}{digest}"


def parse_reference(text: str) -> Reference:
    """Parse ``host[:port]/repo[:tag][@sha256:...]``; the registry host is required.

    Errors quote ``text`` redacted (``redact_reference``): a reference given with
    ``user:password@`` is refused without repeating the password.
    """
    shown = redact_reference(text)
    if shown != text:
        raise ValueError(f"{shown!r}: {CREDENTIALS_IN_REFERENCE}")
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


def platform_name(platform: Mapping[str, str] | None) -> str:
    """``os/arch[/variant]`` of a descriptor's platform, for messages."""
    if not platform:
        return "?"
    name = f"{platform.get('os', '?')}/{platform.get('architecture', '?')}"
    return f"{name}/{platform['variant']}" if platform.get("variant") else name
