"""The Kubernetes objects the appliance owns, built as plain JSON (pure functions).

Names here are the contract with ``flux/`` and with support tooling (docs/host-service.md).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from host_service.release import (
    HELM_CHART_MEDIA_TYPE,
    VALUES_KEY,
    ChartRef,
    Release,
    chart_source_name,
    values_configmap_name,
)
from host_service.settings import Settings

Object = dict[str, Any]
MANAGED_BY = {"app.kubernetes.io/managed-by": "alga-appliance"}
SELECTION_CONFIGMAP = "alga-release-selection"
SOURCE_NAME = "alga-appliance"
PROXY_SECRET = "alga-appliance-proxy"
CA_SECRET = "alga-appliance-registry-ca"
INTERVAL = "10m"
# The Flux resources the appliance creates and watches, as kubectl names them.
OCI_REPOSITORIES = "ocirepositories.source.toolkit.fluxcd.io"
KUSTOMIZATIONS = "kustomizations.kustomize.toolkit.fluxcd.io"
HELMRELEASES = "helmreleases.helm.toolkit.fluxcd.io"


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(MANAGED_BY)}
    if namespace:
        meta["namespace"] = namespace
    return meta


def namespace(name: str) -> Object:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name)}


def secret(name: str, namespace: str, data: Mapping[str, str]) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _meta(name, namespace),
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(data.items())},
    }


def secret_values(obj: Mapping[str, Any] | None) -> dict[str, str]:
    data = (obj or {}).get("data") or {}
    return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}


def values_configmap(service: str, namespace: str, values_yaml: str) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(values_configmap_name(service), namespace),
        "data": {VALUES_KEY: values_yaml},
    }


def selection_configmap(
    namespace: str, *, release: Release, ref: str, manifest_digest: str, repository: str
) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(SELECTION_CONFIGMAP, namespace),
        "data": {
            "version": release.version,
            "channel": release.channel,
            "requested": ref,
            "releaseRepository": repository,
            "manifestDigest": manifest_digest,
            "configRepository": release.config.repository,
            "configDigest": release.config.digest,
            "valuesProfile": release.values_profile,
        },
    }


def proxy_secret(namespace: str, proxy: str) -> Object:
    """The Secret an OCIRepository's ``proxySecretRef`` reads: address, username, password."""
    parts = urlsplit(proxy)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    data = {"address": f"{parts.scheme}://{host}"}
    if parts.username:
        data["username"] = unquote(parts.username)
        data["password"] = unquote(parts.password or "")
    return secret(PROXY_SECRET, namespace, data)


def ca_secret(namespace: str, ca_pem: str) -> Object:
    return secret(CA_SECRET, namespace, {"ca.crt": ca_pem})


def oci_repository(settings: Settings, release: Release, *, proxy: bool, custom_ca: bool) -> Object:
    spec: dict[str, Any] = {
        "interval": INTERVAL,
        "url": release.config.url,
        "ref": {"digest": release.config.digest},
    }
    if proxy:
        spec["proxySecretRef"] = {"name": PROXY_SECRET}
    if custom_ca:
        spec["certSecretRef"] = {"name": CA_SECRET}
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": _meta(SOURCE_NAME, settings.namespaces.flux),
        "spec": spec,
    }


def chart_source(
    namespace: str, chart: str, ref: ChartRef, *, proxy: bool, custom_ca: bool
) -> Object:
    """The OCIRepository a HelmRelease's ``chartRef`` names: the release's chart by digest,
    through the same proxy and CA as the bundle's source (Secrets of the same names in the
    release namespace: a source reads Secrets from its own namespace)."""
    spec: dict[str, Any] = {
        "interval": INTERVAL,
        "url": ref.url,
        "ref": {"digest": ref.digest},
        "layerSelector": {"mediaType": HELM_CHART_MEDIA_TYPE, "operation": "copy"},
    }
    if proxy:
        spec["proxySecretRef"] = {"name": PROXY_SECRET}
    if custom_ca:
        spec["certSecretRef"] = {"name": CA_SECRET}
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": _meta(chart_source_name(chart), namespace),
        "spec": spec,
    }


def kustomization(settings: Settings, release: Release) -> Object:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": _meta(SOURCE_NAME, settings.namespaces.flux),
        "spec": {
            "interval": INTERVAL,
            "sourceRef": {"kind": "OCIRepository", "name": SOURCE_NAME},
            "path": f"./profiles/{release.values_profile}",
            "prune": True,
            "wait": False,
            "timeout": "15m",
        },
    }
