"""Values: render each service's runtime values from the release and the operator's inputs."""

from __future__ import annotations

from host_service import atomic, values
from host_service.steps.context import StepContext
from host_service.steps.release import require_resolved


def wanted(ctx: StepContext) -> dict[str, str]:
    _, release = require_resolved(ctx)
    return values.render_all(release, ctx.intent, workloads=ctx.settings.namespaces.workloads)


def probe(ctx: StepContext) -> bool:
    directory = ctx.settings.paths.values_dir
    for service, text in wanted(ctx).items():
        try:
            if (directory / f"{service}.yaml").read_text(encoding="utf-8") != text:
                return False
        except FileNotFoundError:
            return False
    return True


def run(ctx: StepContext) -> None:
    directory = ctx.settings.paths.values_dir
    for service, text in wanted(ctx).items():
        path = directory / f"{service}.yaml"
        try:
            unchanged = path.read_text(encoding="utf-8") == text
        except FileNotFoundError:
            unchanged = False
        if not unchanged:
            atomic.write_text(path, text, mode=0o600)
        ctx.report(f"values for {service}", detail=f"{service}: values rendered")
