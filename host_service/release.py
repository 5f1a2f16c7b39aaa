"""Release manifests: the one loader and validator, and fetching one from its OCI repository."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from host_service.errors import ExternalError
from host_service.oci import DIGEST_RE, RegistryClient
from host_service.schema import Schema

SCHEMA_V1 = "alga.appliance.release/v1"
SUPPORTED_SCHEMAS = (SCHEMA_V1,)
SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "release-v1.json"

# OCI media types of the release artifact: the manifest JSON is the config blob; the one
# layer is the OCI 1.1 empty descriptor (artifacts without blobs SHOULD carry it).
RELEASE_MEDIA_TYPE = "application/vnd.alga.appliance.release.v1+json"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"

# The workloads a release configures, in dependency order (data stores, app, workers).
SERVICES = (
    "db",
    "redis",
    "pgbouncer",
    "temporal",
    "alga-core",
    "workflow-worker",
    "email-service",
    "temporal-worker",
)
# Release image key -> the service whose values carry that image.
IMAGE_SERVICES: Mapping[str, str] = {
    "algaCore": "alga-core",
    "workflowWorker": "workflow-worker",
    "emailService": "email-service",
    "temporalWorker": "temporal-worker",
}

# The runtime values contract with flux/base (see docs/release.md): the host service writes
# one ConfigMap per service in the release namespace; each HelmRelease reads it by valuesFrom.
VALUES_CONFIGMAP_PREFIX = "alga-values-"
VALUES_KEY = "values.yaml"
# The chart sources contract: the host service applies one OCIRepository per chart of the
# release, named alga-chart-<chart>, in the release namespace, pinned to the manifest's
# digest; each HelmRelease of the bundle names its chart's with chartRef.
CHART_SOURCE_PREFIX = "alga-chart-"
# What `helm push` stores a chart as: the one layer an OCIRepository copies for chartRef.
HELM_CHART_MEDIA_TYPE = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"

# The most fetch_release reads of a config blob: a release is published as its canonical JSON
# (UTF-8), so that encoding may be no larger, or it would be pushed and then never read.
MAX_RELEASE_BYTES = 8 * 1024 * 1024
# Helm values nest a dozen levels; PyYAML and json recurse per level, and the values step
# dumps what it loads (which recurses deeper than loading), so a bound keeps both in reach.
MAX_VALUES_DEPTH = 100
TOO_DEEP = f"too deeply nested (more than {MAX_VALUES_DEPTH} levels)"


def values_configmap_name(service: str) -> str:
    return f"{VALUES_CONFIGMAP_PREFIX}{service}"


def chart_source_name(chart: str) -> str:
    return f"{CHART_SOURCE_PREFIX}{chart}"


def profile_values_file(service: str, profile: str) -> str:
    return f"{service}.{profile}.yaml"


class ReleaseError(ExternalError):
    """A release manifest is malformed, of an unknown schema, or inconsistent."""

    def __init__(self, problems: list[str] | str, *, hint: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems), hint=hint)


@dataclass(frozen=True)
class ImageRef:
    """``registry/repository`` plus a tag and/or digest; the digest wins when pulling."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """``repo:tag@digest``, ``repo@digest`` or ``repo:tag``."""
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageRef:
        return cls(data["repository"], data.get("tag"), data.get("digest"))

    def to_json(self) -> dict[str, str]:
        out = {"repository": self.repository}
        if self.tag:
            out["tag"] = self.tag
        if self.digest:
            out["digest"] = self.digest
        return out


@dataclass(frozen=True)
class ConfigBundleRef:
    """The Flux config bundle: an OCI artifact pinned by digest."""

    repository: str
    digest: str
    tag: str | None = None

    @property
    def url(self) -> str:
        """What an OCIRepository's ``spec.url`` takes (the digest goes in ``spec.ref``)."""
        return f"oci://{self.repository}"


@dataclass(frozen=True)
class ChartRef:
    """A Helm chart stored as an OCI artifact, pinned by its manifest digest."""

    repository: str  # registry/path/<chart>, no scheme
    version: str
    digest: str

    @property
    def url(self) -> str:
        """What an OCIRepository's ``spec.url`` takes (the digest goes in ``spec.ref``)."""
        return f"oci://{self.repository}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChartRef:
        return cls(data["repository"], data["version"], data["digest"])

    def to_json(self) -> dict[str, str]:
        return {"repository": self.repository, "version": self.version, "digest": self.digest}


@dataclass(frozen=True)
class Release:
    """A validated release manifest."""

    version: str
    channel: str
    values_profile: str
    images: Mapping[str, ImageRef]
    control_plane: ImageRef
    config: ConfigBundleRef
    charts: Mapping[str, ChartRef]
    profile_values: Mapping[str, str] = field(repr=False)
    document: Mapping[str, Any] = field(repr=False)
    schema: str = SCHEMA_V1

    def values_for(self, service: str) -> str:
        """The profile values text for ``service`` (validation guarantees it exists)."""
        return self.profile_values[profile_values_file(service, self.values_profile)]

    def to_json(self) -> bytes:
        return canonical_json(self.document)


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """The one serialisation of a release manifest: same document, same bytes, same digest."""
    return _canonical_text(document).encode()


def _canonical_text(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _utf8_size(text: str) -> int:
    # surrogatepass: a lone surrogate (refused as YAML on its own) must not stop the count.
    return len(text.encode("utf-8", "surrogatepass"))


_SCHEMA: Schema | None = None


def _schema() -> Schema:
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = Schema.load(SCHEMA_FILE)
    return _SCHEMA


def parse_release(data: bytes | str | Mapping[str, Any], *, source: str) -> Release:
    """Validate a release manifest (JSON bytes/text or a parsed document) into a Release.

    Every problem is reported at once as ``source: path: message``.
    """
    if isinstance(data, Mapping):
        document: Any = data
    else:
        try:
            document = json.loads(data)
        except ValueError as exc:
            raise ReleaseError(f"{source}: not valid JSON: {exc}") from exc
        except RecursionError as exc:  # the parser recurses per level: [[[[...]]]]
            raise ReleaseError(f"{source}: not valid JSON: too deeply nested") from exc
    if not isinstance(document, dict):
        raise ReleaseError(f"{source}: expected a JSON object, got {type(document).__name__}")
    schema = document.get("schema")
    if schema not in SUPPORTED_SCHEMAS:
        got = "missing" if schema is None else repr(schema)
        raise ReleaseError(
            f"{source}: schema: unsupported release schema {got}; this version reads "
            + ", ".join(SUPPORTED_SCHEMAS),
            hint="update the appliance, or publish the release in a supported schema",
        )
    problems = [f"{source}: {p}" for p in _schema().problems(document)]
    hint = None
    if not problems:
        problems = [f"{source}: {p}" for p in _consistency_problems(document)]
        too_large = _size_problem(document)
        if too_large:
            problems.append(f"{source}: {too_large}")
            hint = "values count in UTF-8 bytes: make the profile's values files smaller"
    if problems:
        raise ReleaseError(problems, hint=hint)
    return Release(
        version=document["version"],
        channel=document["channel"],
        values_profile=document["valuesProfile"],
        images={k: ImageRef.from_json(v) for k, v in document["images"].items()},
        control_plane=ImageRef.from_json(document["controlPlane"]),
        config=ConfigBundleRef(
            document["config"]["repository"],
            document["config"]["digest"],
            document["config"].get("tag"),
        ),
        charts={k: ChartRef.from_json(v) for k, v in document["charts"].items()},
        profile_values=dict(document["profileValues"]),
        document=document,
    )


def _consistency_problems(document: Mapping[str, Any]) -> list[str]:
    """What JSON Schema cannot say: the profile's value files are all there and parse."""
    profile = document["valuesProfile"]
    values: Mapping[str, str] = document["profileValues"]
    problems = []
    if not document["charts"]:
        problems.append("charts: empty: a release names the chart of every HelmRelease")
    for service in SERVICES:
        name = profile_values_file(service, profile)
        if name not in values:
            problems.append(f"profileValues.{name}: missing (profile {profile!r} needs it)")
    for name, text in sorted(values.items()):
        service, _, rest = name.partition(".")
        if rest != f"{profile}.yaml":
            problems.append(f"profileValues.{name}: not for profile {profile!r}")
            continue
        if service not in SERVICES:
            problems.append(f"profileValues.{name}: unknown service {service!r}")
            continue
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" (line {mark.line + 1})" if mark is not None else ""
            problems.append(f"profileValues.{name}: not valid YAML{line}")
            continue
        except RecursionError:  # the parser recurses per level: a: [[[[...]]]]
            problems.append(f"profileValues.{name}: {TOO_DEEP}")
            continue
        if parsed is not None and not isinstance(parsed, dict):
            problems.append(f"profileValues.{name}: expected a YAML mapping")
        elif too_deep(parsed):
            problems.append(f"profileValues.{name}: {TOO_DEEP}")
    return problems


def too_deep(value: Any, limit: int = MAX_VALUES_DEPTH) -> bool:
    """Whether parsed YAML nests more than ``limit`` mappings and lists (without recursing).

    YAML aliases share nodes (and may loop): a node is walked again only when reached
    deeper than before, so shared nodes cost no more than ``limit`` walks each.
    """
    deepest: dict[int, int] = {}
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth >= limit:
            return True
        if deepest.get(id(node), -1) >= depth:
            continue
        deepest[id(node)] = depth
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children)
    return False


def _size_problem(document: Mapping[str, Any]) -> str | None:
    """The published form (canonical JSON) must fit what fetch_release reads."""
    size = _utf8_size(_canonical_text(document))
    if size <= MAX_RELEASE_BYTES:
        return None
    values: Mapping[str, str] = document["profileValues"]
    sizes = {name: _utf8_size(text) for name, text in values.items()}
    largest = max(sorted(sizes), key=sizes.__getitem__, default=None)
    detail = f"; the largest value is {largest} ({sizes[largest]} bytes)" if largest else ""
    return (
        f"profileValues: the release is {size} bytes as published (canonical JSON), more than "
        f"the {MAX_RELEASE_BYTES} an appliance reads{detail}"
    )


def load_release(path: Path) -> Release:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReleaseError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_release(data, source=str(path))


@dataclass(frozen=True)
class FetchedRelease:
    """A release read from a registry, with the digests that pin what was read."""

    release: Release
    reference: str
    manifest_digest: str
    config_digest: str


def fetch_release(client: RegistryClient, repository: str, ref: str) -> FetchedRelease:
    """Resolve a channel or version tag (or digest) and read its release manifest.

    The artifact manifest and the config blob are both re-hashed by the client.
    """
    where = f"{client.registry}/{repository}{'@' if DIGEST_RE.fullmatch(ref) else ':'}{ref}"
    manifest = client.get_manifest(repository, ref)
    if manifest.is_index:
        raise ReleaseError(f"{where}: is an image index, expected a release artifact manifest")
    try:
        config = manifest.config
    except (KeyError, TypeError, ValueError) as exc:
        raise ReleaseError(f"{where}: manifest has no valid config descriptor") from exc
    if config.media_type != RELEASE_MEDIA_TYPE:
        raise ReleaseError(
            f"{where}: config media type is {config.media_type!r}, expected {RELEASE_MEDIA_TYPE}",
            hint="is this the release repository (<org>/<name>-release)?",
        )
    if not DIGEST_RE.fullmatch(config.digest):
        raise ReleaseError(
            f"{where}: manifest config.digest: expected sha256:<64 lowercase hex>, "
            f"got {config.digest!r}",
            hint="the artifact is damaged: publish the release again",
        )
    data = client.get_blob(repository, config.digest, max_bytes=MAX_RELEASE_BYTES)
    release = parse_release(data, source=f"{where} (config {config.digest})")
    return FetchedRelease(
        release=release,
        reference=ref,
        manifest_digest=manifest.digest,
        config_digest=config.digest,
    )
