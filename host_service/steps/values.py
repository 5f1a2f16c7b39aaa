"""Values: render each service's runtime values once, from the release and the operator's
inputs, and store them (``host_service.values_store``); the apply step applies the store."""

from __future__ import annotations

from host_service import values, values_store
from host_service.steps import resolved
from host_service.steps.context import StepContext
from host_service.values_store import RenderedFrom


def probe(ctx: StepContext) -> bool:
    found, _ = resolved.require(ctx)
    source = RenderedFrom.of(found, ctx.intent, ctx.settings)
    return values_store.read(ctx.settings.paths.values_dir, source) is not None


def run(ctx: StepContext) -> None:
    found, release = resolved.require(ctx)
    rendered = values.render_all(release, ctx.intent, workloads=ctx.settings.namespaces.workloads)
    source = RenderedFrom.of(found, ctx.intent, ctx.settings)
    values_store.write(ctx.settings.paths.values_dir, source, rendered)
    for service in rendered:
        ctx.report(f"values for {service}", detail=f"{service}: values rendered")
