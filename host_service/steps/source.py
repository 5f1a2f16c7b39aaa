"""Source: the OCIRepositories pinned by digest (the config bundle's, one per chart) and the
bundle's Kustomization; every source goes through the site's proxy and CA."""

from __future__ import annotations

from host_service import manifests
from host_service.kube import FIELD_MANAGER, KubeError, Object
from host_service.steps import resolved
from host_service.steps.context import StepContext, StepFailed


def _ca_pem(ctx: StepContext) -> str | None:
    bundle = ctx.settings.registry.ca_bundle
    if bundle is None:
        return None
    try:
        return bundle.read_text(encoding="ascii")
    except OSError as exc:
        raise StepFailed(
            f"the registry CA bundle {bundle} cannot be read: {exc.strerror}",
            cause="build-info.json names a CA bundle that is not on the system",
            next_step="restore the CA bundle file, then retry",
        ) from exc
    except UnicodeDecodeError as exc:
        # A bundle put in place on the appliance, not checked by the build: Flux's Secret
        # takes certificate blocks only.
        line = exc.object[: exc.start].count(b"\n") + 1
        raise StepFailed(
            f"the registry CA bundle {bundle}: line {line} has a non-ASCII character",
            cause="the file holds more than certificate blocks (a comment or a subject line)",
            next_step="keep only the -----BEGIN CERTIFICATE----- blocks in it, then retry",
        ) from exc


def _source_namespaces(ctx: StepContext) -> tuple[str, str]:
    """Where sources live: the bundle's (Flux's namespace), the charts' (the release's)."""
    return ctx.settings.namespaces.flux, ctx.settings.namespaces.system


def desired(ctx: StepContext) -> list[Object]:
    """Secrets, then the chart sources, then the bundle's source and its Kustomization."""
    _, release = resolved.require(ctx)
    proxy, ca = bool(ctx.intent.proxy), _ca_pem(ctx)
    objects: list[Object] = []
    for namespace in _source_namespaces(ctx):
        if ctx.intent.proxy:
            objects.append(manifests.proxy_secret(namespace, ctx.intent.proxy))
        if ca is not None:
            objects.append(manifests.ca_secret(namespace, ca))
    system = ctx.settings.namespaces.system
    for chart, ref in sorted(release.charts.items()):
        objects.append(
            manifests.chart_source(system, chart, ref, proxy=proxy, custom_ca=ca is not None)
        )
    objects.append(
        manifests.oci_repository(ctx.settings, release, proxy=proxy, custom_ca=ca is not None)
    )
    objects.append(manifests.kustomization(ctx.settings, release))
    return objects


def _resource(obj: Object) -> str:
    return {
        "Secret": "secrets",
        "OCIRepository": manifests.OCI_REPOSITORIES,
        "Kustomization": manifests.KUSTOMIZATIONS,
    }[obj["kind"]]


def _matches(live: Object | None, want: Object) -> bool:
    if live is None:
        return False
    if "spec" in want:
        return all(live.get("spec", {}).get(k) == v for k, v in want["spec"].items())
    return bool(live.get("data") == want.get("data"))


def probe(ctx: StepContext) -> bool:
    try:
        if not ctx.intent.proxy and any(
            ctx.kube.get("secrets", manifests.PROXY_SECRET, namespace)
            for namespace in _source_namespaces(ctx)
        ):
            return False
        for obj in desired(ctx):
            meta = obj["metadata"]
            if not _matches(ctx.kube.get(_resource(obj), meta["name"], meta["namespace"]), obj):
                return False
    except KubeError:
        return False
    return True


def run(ctx: StepContext) -> None:
    objects = desired(ctx)
    try:
        if not ctx.intent.proxy:
            # The operator removed the proxy: its credentials must not linger in the cluster.
            for namespace in _source_namespaces(ctx):
                ctx.kube.delete("secrets", manifests.PROXY_SECRET, namespace)
        ctx.report("applying the Flux source")
        ctx.kube.apply(objects, field_manager=FIELD_MANAGER)
    except KubeError as exc:
        raise StepFailed(
            f"applying the Flux source failed: {exc.message}",
            cause="the Flux CRDs are missing or the API server rejected the objects",
            next_step="check `k3s kubectl get crd | grep fluxcd`, then retry",
            output=exc.output,
        ) from exc
    for obj in objects:
        if obj["kind"] != "Secret":
            ctx.report(
                f"{obj['kind']} {obj['metadata']['name']} applied",
                detail=f"{obj['kind']} {obj['metadata']['namespace']}/{obj['metadata']['name']}"
                + (f" @ {obj['spec']['ref']['digest']}" if obj["kind"] == "OCIRepository" else ""),
            )
