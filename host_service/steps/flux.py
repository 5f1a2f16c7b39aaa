"""Flux: ``install.yaml`` from the payload applied server-side, CRDs established, controllers up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from host_service.kube import FIELD_MANAGER, KubeError, Object, containers, is_true
from host_service.steps.context import StepContext, StepFailed


@dataclass(frozen=True)
class FluxInstall:
    crds: tuple[str, ...]
    # (namespace, name) -> the container images install.yaml pins
    deployments: dict[tuple[str, str], tuple[str, ...]]


def read_install(path: Path) -> FluxInstall:
    """What install.yaml creates that readiness depends on; raises StepFailed when unusable."""
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except FileNotFoundError as exc:
        raise StepFailed(
            f"Flux install manifests are missing from the payload ({path})",
            cause="the installation did not copy the appliance payload completely",
            next_step="reinstall from the appliance ISO, then retry",
        ) from exc
    except yaml.YAMLError as exc:
        raise StepFailed(
            f"{path} is not valid YAML",
            cause="the payload file is damaged",
            next_step="reinstall from the appliance ISO, then retry",
            output=str(exc),
        ) from exc
    crds: list[str] = []
    deployments: dict[tuple[str, str], tuple[str, ...]] = {}
    for doc in documents:
        if not isinstance(doc, dict):
            continue
        meta = doc.get("metadata") or {}
        if doc.get("kind") == "CustomResourceDefinition":
            crds.append(str(meta.get("name")))
        elif doc.get("kind") == "Deployment":
            key = (str(meta.get("namespace", "default")), str(meta.get("name")))
            deployments[key] = _images(doc)
    if not crds or not deployments:
        raise StepFailed(
            f"{path} does not look like Flux's install.yaml (no CRDs or controllers)",
            cause="the payload carries the wrong file",
            next_step="rebuild the ISO with the pinned Flux install.yaml, then retry",
        )
    return FluxInstall(tuple(crds), deployments)


def _images(deployment: Object) -> tuple[str, ...]:
    return tuple(str(c.get("image", "")) for c in containers(deployment))


def _waiting_for(ctx: StepContext, install: FluxInstall) -> list[str]:
    """What is not ready yet; two list calls, however many objects install.yaml has."""
    crds = {
        str(obj.get("metadata", {}).get("name")): obj
        for obj in ctx.kube.list("customresourcedefinitions.apiextensions.k8s.io")
    }
    namespaces = sorted({namespace for namespace, _ in install.deployments})
    deployments = {
        (str(obj["metadata"].get("namespace")), str(obj["metadata"].get("name"))): obj
        for namespace in namespaces
        for obj in ctx.kube.list("deployments.apps", namespace)
    }
    waiting = [f"CRD {crd}" for crd in install.crds if not is_true(crds.get(crd), "Established")]
    for key, images in install.deployments.items():
        obj = deployments.get(key)
        if obj is None or _images(obj) != images or not is_true(obj, "Available"):
            waiting.append(f"{key[0]}/{key[1]}")
    return waiting


def probe(ctx: StepContext) -> bool:
    install = read_install(ctx.settings.paths.flux_install)
    try:
        return not _waiting_for(ctx, install)
    except KubeError:
        return False


def run(ctx: StepContext) -> None:
    path = ctx.settings.paths.flux_install
    install = read_install(path)
    ctx.report(
        f"applying {path.name} ({len(install.crds)} CRDs, {len(install.deployments)} controllers)"
    )
    try:
        ctx.kube.apply_file(path, field_manager=FIELD_MANAGER)
    except KubeError as exc:
        raise StepFailed(
            f"applying the Flux manifests failed: {exc.message}",
            cause="the API server rejected the manifests (version skew between Flux and k3s?)",
            next_step="check the Flux and k3s versions pinned in the payload, then retry",
            output=exc.output,
        ) from exc
    ctx.report("Flux manifests applied", detail="install.yaml applied server-side")
    seen: set[str] = set()

    def ready() -> tuple[bool | None, str]:
        try:
            waiting = _waiting_for(ctx, install)
        except KubeError as exc:
            return None, f"asking the API: {exc.message}"
        for item in (*install.crds, *(f"{n}/{d}" for n, d in install.deployments)):
            label = item if "/" in item else f"CRD {item}"
            if label not in waiting and item not in seen:
                seen.add(item)
                ctx.report(f"{label} ready", detail=f"{label} ready")
        if waiting:
            return None, f"waiting for {', '.join(waiting[:4])}"
        return True, ""

    ctx.poll(
        ready,
        timeout=ctx.settings.timeouts.flux_ready,
        on_timeout=lambda last: StepFailed(
            f"Flux did not become ready ({last})",
            cause="a controller image is missing from the airgap images or a controller crashes",
            next_step=f"check `k3s kubectl -n {ctx.settings.namespaces.flux} get pods` and "
            "their logs, then retry",
        ),
    )
