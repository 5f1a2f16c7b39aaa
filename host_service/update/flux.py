"""Asking Flux and Helm to reconcile now, and waiting until they did, object by object.

``reconcile.fluxcd.io/requestedAt`` is Flux's own trigger (what ``flux reconcile`` sets):
each controller reconciles the object and records the value it handled in
``status.lastHandledReconcileAt``. A run uses one token, so a resumed run asks once and
recognises the answer to its own request; an old Ready condition is never taken for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from host_service import manifests
from host_service.kube import KubeError, Object, condition, is_true
from host_service.manifests import HELMRELEASES, KUSTOMIZATIONS, OCI_REPOSITORIES
from host_service.release import Release
from host_service.steps.context import StepContext, StepFailed
from host_service.steps.reconcile import KUSTOMIZATION_FATAL, revision_matches

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


def handled(obj: Mapping[str, Any] | None, token: str) -> bool:
    return bool(obj) and (obj or {}).get("status", {}).get("lastHandledReconcileAt") == token


def requested(obj: Mapping[str, Any] | None, token: str) -> bool:
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return annotations.get(REQUESTED_AT) == token


def _observed(obj: Mapping[str, Any]) -> bool:
    generation = obj.get("metadata", {}).get("generation")
    return generation is None or obj.get("status", {}).get("observedGeneration") == generation


def _message(obj: Mapping[str, Any] | None, kind: str = "Ready") -> str:
    cond = condition(obj, kind)
    if cond is None:
        return "no status yet"
    return f"{cond.get('reason', '')}: {cond.get('message', '')}".strip(": ")


def describe(objects: list[Object | None]) -> str:
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


def request(ctx: StepContext, resource: str, obj: Object, token: str) -> bool:
    """Annotate ``obj`` with ``token`` unless it already carries it; True when it patched."""
    if requested(obj, token):
        return False
    meta = obj["metadata"]
    patch = {"metadata": {"annotations": {REQUESTED_AT: token}}}
    ctx.kube.patch(resource, meta["name"], meta.get("namespace"), patch)
    return True


def helm_releases(ctx: StepContext) -> list[Object]:
    return ctx.kube.list(
        HELMRELEASES,
        ctx.settings.namespaces.system,
        selector=f"kustomize.toolkit.fluxcd.io/name={manifests.SOURCE_NAME}",
    )


def _timeout(ctx: StepContext, message: str) -> StepFailed:
    flux = ctx.settings.namespaces.flux
    try:
        output = describe(
            [
                ctx.kube.get(OCI_REPOSITORIES, manifests.SOURCE_NAME, flux),
                ctx.kube.get(KUSTOMIZATIONS, manifests.SOURCE_NAME, flux),
                *helm_releases(ctx),
            ]
        )
    except KubeError as exc:
        output = exc.output
    return StepFailed(
        message,
        cause="Flux or Helm did not finish: see the conditions below",
        next_step="read the conditions and the workloads' logs (a support bundle has both), "
        "fix the cause, then retry; nothing was rolled back",
        output=output,
    )


def wait_source(ctx: StepContext, release: Release, token: str) -> None:
    """Ask for the source and Kustomization to reconcile; wait until the Kustomization applied
    the release's config bundle digest in answer to ``token``."""
    flux = ctx.settings.namespaces.flux
    digest = release.config.digest
    for resource in (OCI_REPOSITORIES, KUSTOMIZATIONS):
        obj = ctx.kube.get(resource, manifests.SOURCE_NAME, flux)
        if obj is None:
            raise StepFailed(
                f"{resource.split('.')[0]} {flux}/{manifests.SOURCE_NAME} is missing",
                cause="it was deleted after the bootstrap applied it",
                next_step="run `python3 -m host_service repair-release`, or retry",
            )
        request(ctx, resource, obj, token)

    def ready() -> tuple[bool | None, str]:
        try:
            source = ctx.kube.get(OCI_REPOSITORIES, manifests.SOURCE_NAME, flux)
            kustomization = ctx.kube.get(KUSTOMIZATIONS, manifests.SOURCE_NAME, flux)
        except KubeError as exc:
            return None, f"asking the API: {exc.message}"
        ready_cond = condition(kustomization, "Ready")
        if (
            ready_cond is not None
            and ready_cond.get("status") == "False"
            and ready_cond.get("reason") in KUSTOMIZATION_FATAL
        ):
            raise StepFailed(
                f"Flux cannot apply release {release.version}: {_message(kustomization)}",
                cause="the config bundle does not build for this appliance",
                next_step="select another release, or report this one as broken",
                output=describe([source, kustomization]),
            )
        applied = (kustomization or {}).get("status", {}).get("lastAppliedRevision")
        if (
            kustomization is not None
            and is_true(kustomization, "Ready")
            and _observed(kustomization)
            and revision_matches(applied, digest)
            and handled(kustomization, token)
        ):
            return True, ""
        if source is not None and not is_true(source, "Ready"):
            return None, f"OCIRepository: {_message(source)}"
        if not revision_matches(applied, digest):
            return None, f"Kustomization applied {applied or 'nothing'}, waiting for {digest[:19]}…"
        return None, f"Kustomization: {_message(kustomization)}"

    ctx.poll(
        ready,
        timeout=ctx.settings.timeouts.reconcile,
        on_timeout=lambda last: _timeout(
            ctx, f"Flux did not apply release {release.version} ({last})"
        ),
    )
    ctx.report(f"Kustomization applied {digest[:19]}…", detail=f"Kustomization Ready at {digest}")


def wait_helm_releases(ctx: StepContext, token: str) -> None:
    """Ask every HelmRelease of the Kustomization to reconcile with ``token``; report each as
    it answers Ready; a HelmRelease that stalls in answer to ``token`` is a blocker."""
    try:
        for hr in helm_releases(ctx):
            request(ctx, HELMRELEASES, hr, token)
    except KubeError as exc:
        raise StepFailed(
            f"asking Helm to reconcile failed: {exc.message}",
            cause="the API server refused the change",
            next_step="read the output, then retry",
            output=exc.output,
        ) from exc
    ready: set[str] = set()

    def all_ready() -> tuple[bool | None, str]:
        try:
            releases = helm_releases(ctx)
        except KubeError as exc:
            return None, f"asking the API: {exc.message}"
        waiting = []
        for hr in releases:
            name = str(hr.get("metadata", {}).get("name"))
            if not requested(hr, token):  # appeared with the new bundle
                request(ctx, HELMRELEASES, hr, token)
            answered = handled(hr, token)
            if answered and is_true(hr, "Stalled"):
                raise StepFailed(
                    f"HelmRelease {name} failed and Flux gave up: {_message(hr, 'Stalled')}",
                    cause="the chart failed to upgrade and its remediation retries are exhausted",
                    next_step=f"read the HelmRelease and the pod logs (a support bundle has "
                    f"both; or `k3s kubectl -n {ctx.settings.namespaces.system} describe "
                    f"helmrelease {name}`), then retry or select another release",
                    output=describe([hr]),
                )
            if answered and is_true(hr, "Ready") and _observed(hr):
                if name not in ready:
                    ready.add(name)
                    ctx.report(f"HelmRelease {name} Ready", detail=f"HelmRelease {name} Ready")
            else:
                state = _message(hr) if answered else "reconcile requested"
                waiting.append(f"{name} ({state})")
        if waiting:
            return None, f"waiting for {len(waiting)} HelmRelease(s): {', '.join(waiting[:3])}"
        return True, ""

    ctx.poll(
        all_ready,
        timeout=ctx.settings.timeouts.reconcile,
        on_timeout=lambda last: _timeout(ctx, f"HelmReleases did not become Ready ({last})"),
    )
