"""Apply: namespaces, the generated Secret, values ConfigMaps and the release selection.

Server-side apply with the appliance's field manager for everything the appliance renders.
The generated Secret is the exception: it is created once and only ever gains missing keys,
so a re-run never changes a password the database already uses.
"""

from __future__ import annotations

import secrets
from typing import Any

from host_service import manifests, values_store
from host_service.kube import FIELD_MANAGER, KubeError, Object
from host_service.resolution import Resolution
from host_service.steps import resolved
from host_service.steps.context import StepContext, StepFailed
from host_service.values import GENERATED_SECRET_KEYS, SECRET_NAME
from host_service.values_store import RenderedFrom


def stored_values(ctx: StepContext, resolution: Resolution) -> dict[str, str]:
    """The values the values step rendered for this run (never rendered again here)."""
    directory = ctx.settings.paths.values_dir
    found = values_store.read(directory, RenderedFrom.of(resolution, ctx.intent, ctx.settings))
    if found is None:
        raise StepFailed(
            f"the rendered values in {directory} are missing, damaged or not for this release",
            cause="they were removed or changed after the values step, or the release was "
            "resolved again since",
            next_step="submit setup again: the run renders the values before it applies them",
        )
    return found


def desired(ctx: StepContext) -> list[Object]:
    """Everything this step server-side applies, in order (namespaces first)."""
    settings = ctx.settings
    resolution, release = resolved.require(ctx)
    objects: list[Object] = [manifests.namespace(n) for n in settings.namespaces.all]
    for service, text in stored_values(ctx, resolution).items():
        objects.append(manifests.values_configmap(service, settings.namespaces.system, text))
    objects.append(
        manifests.selection_configmap(
            settings.namespaces.system,
            release=release,
            ref=resolution.ref,
            manifest_digest=resolution.manifest_digest,
            repository=resolution.repository,
        )
    )
    return objects


def _resource(obj: Object) -> str:
    return {"Namespace": "namespaces", "ConfigMap": "configmaps", "Secret": "secrets"}[obj["kind"]]


def _matches(live: Object | None, want: Object) -> bool:
    if live is None:
        return False
    labels = live.get("metadata", {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in want["metadata"].get("labels", {}).items()):
        return False
    return all(live.get(key) == want[key] for key in ("data",) if key in want)


def _secret_complete(ctx: StepContext) -> bool:
    live = ctx.kube.get("secrets", SECRET_NAME, ctx.settings.namespaces.workloads)
    return set(GENERATED_SECRET_KEYS) <= set(manifests.secret_values(live))


def probe(ctx: StepContext) -> bool:
    try:
        for obj in desired(ctx):
            meta = obj["metadata"]
            if not _matches(ctx.kube.get(_resource(obj), meta["name"], meta.get("namespace")), obj):
                return False
        return _secret_complete(ctx)
    except KubeError:
        return False


def run(ctx: StepContext) -> None:
    objects = desired(ctx)
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    rest = [o for o in objects if o["kind"] != "Namespace"]
    try:
        ctx.report("applying namespaces")
        ctx.kube.apply(namespaces, field_manager=FIELD_MANAGER)
        ctx.report(
            "namespaces applied", detail=", ".join(o["metadata"]["name"] for o in namespaces)
        )
        _ensure_generated_secret(ctx)
        ctx.report("applying values and release selection")
        ctx.kube.apply(rest, field_manager=FIELD_MANAGER)
    except KubeError as exc:
        raise StepFailed(
            f"applying the appliance configuration failed: {exc.message}",
            cause="the API server rejected an object (admission, quota or a conflicting owner)",
            next_step="read the output below, fix the cause, then retry",
            output=exc.output,
        ) from exc
    for obj in rest:
        ctx.report(
            f"{obj['kind']} {obj['metadata']['name']} applied",
            detail=f"{obj['kind']} {obj['metadata']['namespace']}/{obj['metadata']['name']}",
        )


def _ensure_generated_secret(ctx: StepContext) -> None:
    namespace = ctx.settings.namespaces.workloads
    live = ctx.kube.get("secrets", SECRET_NAME, namespace)
    if live is None:
        data = {key: secrets.token_urlsafe(32) for key in GENERATED_SECRET_KEYS}
        created = ctx.kube.create(manifests.secret(SECRET_NAME, namespace, data))
        ctx.report(
            f"secret {SECRET_NAME} created" if created else f"secret {SECRET_NAME} kept",
            detail=f"Secret {namespace}/{SECRET_NAME} "
            + ("generated" if created else "already present, kept"),
        )
        if created:
            return
        live = ctx.kube.get("secrets", SECRET_NAME, namespace)
    have = manifests.secret_values(live)
    missing = [key for key in GENERATED_SECRET_KEYS if key not in have]
    if missing:
        patch: dict[str, Any] = {
            "data": manifests.secret(
                SECRET_NAME, namespace, {key: secrets.token_urlsafe(32) for key in missing}
            )["data"]
        }
        ctx.kube.patch("secrets", SECRET_NAME, namespace, patch)
        ctx.report(f"secret {SECRET_NAME}: added {', '.join(missing)}")
    ctx.report(f"secret {SECRET_NAME} kept", detail=f"Secret {namespace}/{SECRET_NAME} kept")
