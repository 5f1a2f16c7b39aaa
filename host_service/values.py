"""Runtime values per service: profile values, then pinned images, then the operator's inputs.

Pure functions. The merge order is the contract: the release's profile values are the base,
the release's pinned images override them, and the operator's inputs (app URL) override
everything, so an update can never reset what the operator set. Secrets are never rendered
into values: charts read them from the Secret named in ``global.secretName``, which the
apply step creates once and keeps.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import yaml

from host_service.intent import SetupIntent
from host_service.release import IMAGE_SERVICES, SERVICES, Release

SECRET_NAME = "alga-appliance-secrets"
# Keys of the generated Secret: random, created once, never rotated by a re-render.
GENERATED_SECRET_KEYS = (
    "postgres-password",
    "redis-password",
    "app-secret",
    "auth-key",
    "crypto-key",
    "temporal-db-password",
)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` wins; mappings merge recursively, anything else is replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def image_values(release: Release, service: str) -> dict[str, Any]:
    """The release's pinned image for ``service`` (``{}`` when the release pins none)."""
    for key, owner in IMAGE_SERVICES.items():
        if owner == service and key in release.images:
            ref = release.images[key]
            image: dict[str, Any] = {"repository": ref.repository}
            if ref.tag:
                image["tag"] = ref.tag
            if ref.digest:
                image["digest"] = ref.digest
            return {"image": image}
    return {}


def operator_values(intent: SetupIntent, release: Release, *, workloads: str) -> dict[str, Any]:
    """What the operator decided, in the shape every chart reads (``global``)."""
    url = urlsplit(intent.app_url)
    return {
        "global": {
            "appUrl": intent.app_url,
            "appHost": url.hostname or "",
            "appScheme": url.scheme,
            "applianceRelease": release.version,
            "valuesProfile": release.values_profile,
            "secretName": SECRET_NAME,
            "namespace": workloads,
        }
    }


def render_service(
    release: Release, intent: SetupIntent, service: str, *, workloads: str
) -> dict[str, Any]:
    base = yaml.safe_load(release.values_for(service)) or {}
    values = deep_merge(base, image_values(release, service))
    return deep_merge(values, operator_values(intent, release, workloads=workloads))


def render_all(release: Release, intent: SetupIntent, *, workloads: str) -> dict[str, str]:
    """service -> values.yaml text, for every service of the release, in dependency order."""
    return {
        service: dump(render_service(release, intent, service, workloads=workloads))
        for service in SERVICES
    }


def dump(values: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(values), sort_keys=True, default_flow_style=False)
