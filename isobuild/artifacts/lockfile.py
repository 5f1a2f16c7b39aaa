"""payload.lock.yaml: load, validate against its schema, and expose the pins as records."""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from host_service.schema import Schema
from isobuild.config import load_yaml, yaml_error
from isobuild.errors import ConfigError
from isobuild.resources import SCHEMAS_DIR

LOCK_SCHEMA = SCHEMAS_DIR / "payload-lock.json"
LOCK_HINT = "see docs/payload.md; `isobuild lock --update` writes a valid lock file"

# The Flux controllers `flux install` deploys by default; each needs an image in the archive.
DEFAULT_FLUX_CONTROLLERS = (
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
)


@dataclass(frozen=True, kw_only=True)
class PinnedFile:
    """One release asset, pinned by sha256."""

    component: str  # "k3s" or "flux"
    role: str  # "binary", "airgap_images", "cli", "install_manifest", "image_archive"
    name: str  # the publisher's file name
    sha256: str
    version: str
    base_url: str
    # The publisher's checksum file that must list this file, or None when it does not.
    checksum_file: str | None

    @property
    def key(self) -> str:
        """Where the pin lives in the lock file, for messages."""
        return f"{self.component}.files.{self.role}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/{urllib.parse.quote(self.name)}"


@dataclass(frozen=True, kw_only=True)
class PinnedImage:
    """A controller image pinned by the digest of its index or manifest."""

    name: str  # "source-controller"
    repository: str  # "ghcr.io/fluxcd/source-controller"
    tag: str
    digest: str  # "sha256:<hex>"

    @property
    def registry(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def path(self) -> str:
        """The repository path inside the registry ("fluxcd/source-controller")."""
        return self.repository.split("/", 1)[1]

    @property
    def reference(self) -> str:
        """The tagged name pods ask for; the archive registers the image under it."""
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True, kw_only=True)
class Component:
    version: str
    base_url: str
    checksum_file: str
    files: Mapping[str, PinnedFile]


@dataclass(frozen=True, kw_only=True)
class PayloadLock:
    """Every pin of one lock file, plus where it came from."""

    source: Path
    sha256: str
    standin: bool
    k3s: Component
    flux: Component
    images: tuple[PinnedImage, ...]

    def files(self) -> Iterator[PinnedFile]:
        yield from self.k3s.files.values()
        yield from self.flux.files.values()

    @property
    def image_archive(self) -> PinnedFile | None:
        """A prebuilt controller image archive (stand-ins, mirrors), if one is pinned."""
        return self.flux.files.get("image_archive")

    def images_key(self) -> str:
        """A digest of the image pins: names the archive built from them in the cache."""
        text = "\n".join(f"{i.reference}@{i.digest}" for i in sorted(self.images, key=_by_name))
        return hashlib.sha256(f"linux/amd64\n{text}\n".encode()).hexdigest()


def _by_name(image: PinnedImage) -> str:
    return image.name


def _expected_base_suffix(component: str, version: str) -> str:
    if component == "k3s":
        return "/" + urllib.parse.quote(version, safe="")
    return f"/v{version}"


def _component(name: str, data: Mapping[str, Any]) -> Component:
    version = str(data["version"])
    base_url = str(data["base_url"])
    checksum_file = str(data["checksum_file"])
    files = {
        role: PinnedFile(
            component=name,
            role=role,
            name=str(entry["name"]),
            sha256=str(entry["sha256"]),
            version=version,
            base_url=base_url,
            checksum_file=checksum_file if entry.get("checksum_entry", True) else None,
        )
        for role, entry in data["files"].items()
    }
    return Component(version=version, base_url=base_url, checksum_file=checksum_file, files=files)


def _cross_problems(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Checks the schema cannot express; each is (key path, message)."""
    found: list[tuple[str, str]] = []
    for component in ("k3s", "flux"):
        section = data[component]
        suffix = _expected_base_suffix(component, str(section["version"]))
        if not str(section["base_url"]).endswith(suffix):
            found.append(
                (
                    f"{component}.base_url",
                    f"does not end with {suffix!r} although {component}.version is "
                    f"{section['version']!r}; update the version and its URL together",
                )
            )
        names = [entry["name"] for entry in section["files"].values()]
        for role, entry in section["files"].items():
            if names.count(entry["name"]) > 1:
                found.append((f"{component}.files.{role}.name", "used by two files"))
            if entry["name"] == section["checksum_file"]:
                found.append((f"{component}.files.{role}.name", "is the checksum file itself"))
    images = data["flux"]["images"]
    if not images:
        found.append(("flux.images", "must pin at least one controller image"))
    return found


def parse_lock(text: str, *, source: Path) -> PayloadLock:
    """Validate lock file text; every problem is reported at once, naming file and key."""
    try:
        data, duplicates = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error(source, exc), hint=LOCK_HINT) from exc
    problems = [(d.where, d.message) for d in duplicates]
    problems += [(p.path, p.message) for p in Schema.load(LOCK_SCHEMA).problems(data)]
    if not problems:
        problems = _cross_problems(data)
    if problems:
        raise ConfigError(
            [f"{source}: {path or '<root>'}: {message}" for path, message in problems],
            hint=LOCK_HINT,
        )
    images = tuple(
        PinnedImage(name=name, repository=str(e["repository"]), tag=str(e["tag"]),
                    digest=str(e["digest"]))
        for name, e in data["flux"]["images"].items()
    )  # fmt: skip
    return PayloadLock(
        source=source,
        sha256=hashlib.sha256(text.encode()).hexdigest(),
        standin=bool(data.get("standin", False)),
        k3s=_component("k3s", data["k3s"]),
        flux=_component("flux", data["flux"]),
        images=images,
    )


def load_lock(path: Path) -> PayloadLock:
    """Read and validate the lock file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: lock file not found",
            hint="pass --lock with an existing file, or `isobuild standin-artifacts DIR` "
            "to write a stand-in one",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read lock file: {exc}") from exc
    return parse_lock(text, source=path)


def format_lock(document: Mapping[str, Any], *, header: str, source: Path) -> str:
    """Lock file text for ``document`` with a ``#`` comment header; validated before return."""
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.strip().splitlines())
    body = yaml.safe_dump(dict(document), sort_keys=False, default_flow_style=False, width=100)
    text = comment + body
    parse_lock(text, source=source)
    return text
