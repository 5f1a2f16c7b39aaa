"""The Flux kinds' schemas, read from the CRDs in the pinned Flux install.yaml.

Flux objects are checked against what the API server will check: each CRD version's own
``openAPIV3Schema``, taken from the install.yaml the payload carries (``payload.lock.yaml``
``flux.files.install_manifest``, fetched and verified like every pinned file). The
structural schema is turned into the project's JSON Schema subset (``host_service.schema``):

- an object with ``properties`` gets ``additionalProperties: false``: kubectl and Flux apply
  with strict field validation, so an unknown field (a typo) is an error, not pruned;
- ``x-kubernetes-preserve-unknown-fields`` keeps an object open, ``x-kubernetes-int-or-string``
  allows both, ``nullable`` allows null;
- ``metadata`` is left to the caller (the API server checks ObjectMeta itself);
- CEL rules (``x-kubernetes-validations``) and other ``x-kubernetes-*`` hints are not
  evaluated here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from host_service.schema import Schema
from isobuild.artifacts.cache import ArtifactCache
from isobuild.artifacts.fetch import Fetcher, make_source
from isobuild.artifacts.lockfile import PayloadLock
from isobuild.errors import ConfigError

CRD_API = "apiextensions.k8s.io/v1"
# Keywords of a structural schema that the project's validator understands as they are.
_KEPT = frozenset(
    {
        "description", "type", "enum", "pattern", "minLength", "maxLength", "minimum",
        "maximum", "minItems", "maxItems", "uniqueItems", "required", "format", "default",
    }
)  # fmt: skip

FluxSchemas = Mapping[tuple[str, str], Schema]  # (apiVersion, kind) → schema


def convert(node: Mapping[str, Any]) -> dict[str, Any]:
    """One ``openAPIV3Schema`` node as a strict JSON Schema node (pure)."""
    out: dict[str, Any] = {k: v for k, v in node.items() if k in _KEPT}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    properties = node.get("properties")
    if isinstance(properties, Mapping):
        out["properties"] = {k: convert(v) for k, v in properties.items()}
    items = node.get("items")
    if isinstance(items, Mapping):
        out["items"] = convert(items)
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        out["additionalProperties"] = convert(extra)
    elif properties and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    for keyword in ("anyOf", "oneOf", "allOf"):
        if isinstance(node.get(keyword), list):
            out[keyword] = [convert(sub) for sub in node[keyword]]
    return out


def _version_schema(group: str, kind: str, version: str, schema: Mapping[str, Any]) -> Schema:
    document = convert(schema)
    properties = document.setdefault("properties", {})
    properties["apiVersion"] = {"const": f"{group}/{version}"}
    properties["kind"] = {"const": kind}
    properties["metadata"] = {"type": "object"}
    required = set(document.get("required", ())) | {"apiVersion", "kind", "metadata"}
    document["required"] = sorted(required)
    document["additionalProperties"] = False
    return Schema(document, name=f"{kind} ({group}/{version})")


def schemas_from_install_yaml(text: str, *, source: str) -> dict[tuple[str, str], Schema]:
    """Every served version of every CRD in ``text``; an install.yaml with none is refused."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    found: dict[tuple[str, str], Schema] = {}
    for crd in documents:
        if crd.get("apiVersion") != CRD_API or crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd.get("spec") or {}
        group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
        for version in spec.get("versions") or []:
            schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or None
            if version.get("served", True) and schema and group and kind:
                api = f"{group}/{version['name']}"
                found[(api, kind)] = _version_schema(group, kind, version["name"], schema)
    if not found:
        raise ConfigError(
            f"{source}: no CustomResourceDefinition with a schema: not a Flux install.yaml",
            hint="the Flux install.yaml pinned in payload.lock.yaml carries the CRDs; a "
            "stand-in one needs them too (isobuild standin-artifacts --flux-crds FILE)",
        )
    return found


def load_install_yaml(path: Path) -> dict[tuple[str, str], Schema]:
    return schemas_from_install_yaml(path.read_text(encoding="utf-8"), source=str(path))


def pinned_flux_schemas(
    lock: PayloadLock, *, cache_dir: Path, mirror: str | None = None, offline: bool = False
) -> dict[tuple[str, str], Schema]:
    """The schemas of the install.yaml ``lock`` pins: from the artifact cache, else fetched
    (publisher or ``mirror``) and verified like every pinned file; ``offline``: cache only."""
    if offline and mirror is not None:
        raise ConfigError("--offline and --mirror exclude each other", hint="pass one of them")
    source = None if offline else make_source(mirror, progress=False)
    fetcher = Fetcher(ArtifactCache.under(cache_dir), source)
    return load_install_yaml(fetcher.fetch(lock.flux.files["install_manifest"]))
