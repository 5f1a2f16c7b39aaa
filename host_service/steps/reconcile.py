"""Reconcile: wait for the Kustomization to apply the pinned digest and the HelmReleases to be
Ready, reporting each as it becomes ready; then record the release selection."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from host_service import atomic, console, manifests, setup_token
from host_service.kube import KubeError, Object, condition, is_true
from host_service.manifests import HELMRELEASES, KUSTOMIZATIONS, OCI_REPOSITORIES
from host_service.steps import resolved
from host_service.steps.context import StepContext, StepFailed

# Reasons that will not heal by waiting: the bundle itself is wrong.
KUSTOMIZATION_FATAL = frozenset({"BuildFailed", "ArtifactFailed"})


def revision_matches(revision: str | None, digest: str) -> bool:
    """Flux reports ``sha256:<hex>`` for a digest ref, ``<tag>@sha256:<hex>`` for a tag."""
    return bool(revision) and (revision == digest or str(revision).endswith("@" + digest))


def _observed(obj: Mapping[str, Any]) -> bool:
    generation = obj.get("metadata", {}).get("generation")
    observed = obj.get("status", {}).get("observedGeneration")
    return generation is None or observed == generation


def _message(obj: Mapping[str, Any] | None, kind: str = "Ready") -> str:
    cond = condition(obj, kind)
    if cond is None:
        return "no status yet"
    return f"{cond.get('reason', '')}: {cond.get('message', '')}".strip(": ")


def _kustomization_state(ctx: StepContext, digest: str) -> tuple[bool, str]:
    flux = ctx.settings.namespaces.flux
    source = ctx.kube.get(OCI_REPOSITORIES, manifests.SOURCE_NAME, flux)
    kustomization = ctx.kube.get(KUSTOMIZATIONS, manifests.SOURCE_NAME, flux)
    if kustomization is None:
        raise StepFailed(
            f"the Kustomization {flux}/{manifests.SOURCE_NAME} is gone",
            cause="something deleted it after the source step applied it",
            next_step="submit setup again to re-apply it",
        )
    ready = condition(kustomization, "Ready")
    failed = ready is not None and ready.get("status") == "False"
    if failed and ready is not None and ready.get("reason") in KUSTOMIZATION_FATAL:
        raise StepFailed(
            f"Flux cannot apply the release: {_message(kustomization)}",
            cause="the config bundle does not build for this appliance "
            "(kustomize error or missing path)",
            next_step="pin a different release, or report the release as broken",
            output=_describe([source, kustomization]),
        )
    applied = kustomization.get("status", {}).get("lastAppliedRevision")
    if is_true(kustomization, "Ready") and _observed(kustomization):
        if revision_matches(applied, digest):
            return True, ""
        return False, f"Kustomization applied {applied or 'nothing'}, waiting for {digest[:19]}…"
    if source is not None and not is_true(source, "Ready"):
        return False, f"OCIRepository: {_message(source)}"
    return False, f"Kustomization: {_message(kustomization)}"


def _describe(objects: list[Object | None]) -> str:
    lines = []
    for obj in objects:
        if obj is None:
            continue
        meta = obj.get("metadata", {})
        lines.append(f"{obj.get('kind')} {meta.get('namespace')}/{meta.get('name')}:")
        for cond in obj.get("status", {}).get("conditions", []) or []:
            lines.append(
                f"  {cond.get('type')}={cond.get('status')} {cond.get('reason', '')}: "
                f"{cond.get('message', '')}"
            )
    return "\n".join(lines)


def _helm_releases(ctx: StepContext) -> list[Object]:
    return ctx.kube.list(
        HELMRELEASES,
        ctx.settings.namespaces.system,
        selector=f"kustomize.toolkit.fluxcd.io/name={manifests.SOURCE_NAME}",
    )


def _selection_recorded(ctx: StepContext, manifest_digest: str) -> bool:
    try:
        recorded = json.loads(ctx.settings.paths.selection_file.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return False
    return isinstance(recorded, dict) and bool(  # another JSON type: damaged, not recorded
        recorded.get("manifest_digest") == manifest_digest
        and recorded.get("app_url") == ctx.intent.app_url
    )


def probe(ctx: StepContext) -> bool:
    resolution, release = resolved.require(ctx)
    if not _selection_recorded(ctx, resolution.manifest_digest):
        return False
    try:
        done, _ = _kustomization_state(ctx, release.config.digest)
        releases = _helm_releases(ctx)
        # None found is never ready: the bundle's HelmReleases went elsewhere or not at all.
        return done and bool(releases) and all(is_true(hr, "Ready") for hr in releases)
    except (KubeError, StepFailed):
        return False


def run(ctx: StepContext) -> None:
    resolution, release = resolved.require(ctx)
    digest = release.config.digest
    timeout = ctx.settings.timeouts.reconcile

    def kustomization_ready() -> tuple[bool | None, str]:
        try:
            done, waiting = _kustomization_state(ctx, digest)
        except KubeError as exc:
            return None, f"asking the API: {exc.message}"
        return (True, "") if done else (None, waiting)

    ctx.poll(
        kustomization_ready,
        timeout=timeout,
        on_timeout=lambda last: _timeout(
            ctx, f"Flux did not apply release {release.version} ({last})"
        ),
    )
    ctx.report(f"Kustomization applied {digest[:19]}…", detail=f"Kustomization Ready at {digest}")
    ready: set[str] = set()

    def helm_ready() -> tuple[bool | None, str]:
        try:
            releases = _helm_releases(ctx)
        except KubeError as exc:
            return None, f"asking the API: {exc.message}"
        if not releases:
            return None, (
                f"no HelmRelease of the Kustomization {manifests.SOURCE_NAME} in namespace "
                f"{ctx.settings.namespaces.system} yet"
            )
        waiting = []
        for hr in releases:
            name = str(hr.get("metadata", {}).get("name"))
            if is_true(hr, "Stalled"):
                raise StepFailed(
                    f"HelmRelease {name} failed and Flux gave up: {_message(hr, 'Stalled')}",
                    cause="the chart failed to install or upgrade and its remediation "
                    "retries are exhausted",
                    next_step=f"read the HelmRelease and pod logs (status page, "
                    f"`k3s kubectl -n {ctx.settings.namespaces.system} describe helmrelease "
                    f"{name}`), then retry or collect a support bundle",
                    output=_describe([hr]),
                )
            if is_true(hr, "Ready") and _observed(hr):
                if name not in ready:
                    ready.add(name)
                    ctx.report(f"HelmRelease {name} Ready", detail=f"HelmRelease {name} Ready")
            else:
                waiting.append(f"{name} ({_message(hr)})")
        if waiting:
            return None, f"waiting for {len(waiting)} HelmRelease(s): {', '.join(waiting[:3])}"
        return True, ""

    ctx.poll(
        helm_ready,
        timeout=timeout,
        on_timeout=lambda last: _timeout(ctx, f"HelmReleases did not become Ready ({last})"),
    )
    selection = {
        **asdict(resolution),
        "config_repository": release.config.repository,
        "config_digest_pinned": digest,
        "app_url": ctx.intent.app_url,
        "reconciled_at": time.time(),
    }
    atomic.write_json(ctx.settings.paths.selection_file, selection, mode=0o600)
    _show_on_console(ctx)
    ctx.report(f"release {release.version} reconciled", detail=f"release {release.version} live")


def _show_on_console(ctx: StepContext) -> None:
    """The console banner gains the app URL (the banner timer would, within 30 s)."""
    try:
        token = setup_token.load_or_create(ctx.settings.paths.token_file)
        console.show(ctx.settings, addresses=ctx.host.addresses(), token=token)
    except OSError as exc:
        ctx.report(f"console banner not updated: {exc}")


def _timeout(ctx: StepContext, message: str) -> StepFailed:
    try:
        flux = ctx.settings.namespaces.flux
        objects: list[Object | None] = [
            ctx.kube.get(OCI_REPOSITORIES, manifests.SOURCE_NAME, flux),
            ctx.kube.get(KUSTOMIZATIONS, manifests.SOURCE_NAME, flux),
            *_helm_releases(ctx),
        ]
        output = _describe(objects)
    except KubeError as exc:
        output = exc.output
    return StepFailed(
        message,
        cause="Flux or Helm is still failing: see the conditions below",
        next_step="read the conditions and the workloads' logs, fix the cause, then retry",
        output=output,
    )
