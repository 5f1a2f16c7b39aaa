"""Release: channel or version tag -> manifest digest -> validated release manifest, stored
under ``<state>/release/`` (``host_service.resolution``) so a resumed run uses the same one."""

from __future__ import annotations

from host_service.steps import resolved
from host_service.steps.context import StepContext


def probe(ctx: StepContext) -> bool:
    return resolved.load(ctx) is not None


def run(ctx: StepContext) -> None:
    resolved.resolve(ctx)
