"""``repair-release``: apply the recorded release selection again, without changing it.

For drift (someone edited a values ConfigMap, deleted the source) or a half-applied update:
the bootstrap's own values, apply and source steps run again against the recorded
resolution (the release is never re-resolved: a channel that moved meanwhile is not
followed), Flux and Helm are asked to reconcile, and each HelmRelease is waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from host_service.errors import ServiceError
from host_service.intent import IntentStore
from host_service.release import Release
from host_service.resolution import read_resolution
from host_service.runtime import Runtime
from host_service.settings import Settings
from host_service.steps import apply, reconcile, resolved, source, values
from host_service.steps.context import StepContext
from host_service.update import flux
from host_service.update.store import History, UpdatePaths
from host_service.worker import redactor

STEPS = ("release", "values", "apply", "source", "flux", "helm", "record")


class NothingToRepair(ServiceError):
    """There is no recorded selection to apply again."""


def repair_release(
    settings: Settings,
    runtime: Runtime,
    *,
    say: Callable[[str], None],
    requested_by: str,
    clock: Callable[[], float] = time.time,
) -> str:
    """Re-apply the recorded selection; returns its version. Raises NothingToRepair, or
    StepFailed (what failed, cause, next step, output) from the step that failed. The repair
    and its outcome go into the update history."""
    intent = IntentStore(settings.paths.intent_file).load()
    if intent is None:
        raise NothingToRepair(
            "nothing to repair: the appliance was never set up",
            hint="submit setup on the status page",
        )
    resolution = read_resolution(settings.paths)
    if resolution is None:
        raise NothingToRepair(
            "nothing to repair: no release has been selected yet",
            hint="let the bootstrap reach its release step (status page)",
        )
    if resolution.ref != intent.release_ref:
        raise NothingToRepair(
            f"the setup inputs ask for {intent.release_ref!r} but the recorded selection is "
            f"{resolution.ref!r} ({resolution.version})",
            hint="setup was changed since: let the bootstrap apply it (status page), or "
            "submit setup again",
        )

    def reporter(message: str, detail: str | None) -> None:
        say(f"    {message}")

    ctx = StepContext(
        settings=settings,
        intent=intent,
        kube=runtime.kube,
        systemd=runtime.systemd,
        k3s=runtime.k3s,
        host=runtime.host,
        registry=runtime.registry(settings, intent),
        reporter=reporter,
    )
    total = len(STEPS)
    recorded = f"{resolution.version} ({resolution.manifest_digest})"
    say(f"[1/{total}] release: the recorded selection {recorded}")
    found = resolved.load(ctx)
    if found is None:
        say("    the cached manifest is missing or damaged: fetching it again by its digest")
        fetched = resolved.fetch(ctx, resolution.manifest_digest)
        resolved.store(ctx, resolution.ref, fetched)
        found = resolved.require(ctx)
    _, release = found
    selection = {
        "ref": resolution.ref,
        "version": resolution.version,
        "manifest_digest": resolution.manifest_digest,
        "config_digest": release.config.digest,
    }
    history = History(UpdatePaths.of(settings.paths).history)
    entry: dict[str, Any] = {
        "id": f"repair-{int(clock())}",
        "kind": "repair",
        "requested_by": requested_by,
        "requested_at": clock(),
        "finished_at": None,
        "from": selection,
        "to": selection,
        "force": False,
        "outcome": "running",
        "blocked_at": None,
        "message": "",
    }
    history.upsert(entry)
    redact = redactor(intent)
    try:
        _reapply(ctx, release, clock=clock, say=say)
    except BaseException as exc:  # whatever ends it (kubectl, Ctrl-C), the entry says so
        message = redact(_failure(exc))
        history.upsert({**entry, "outcome": "blocked", "finished_at": clock(), "message": message})
        raise
    history.upsert({**entry, "outcome": "succeeded", "finished_at": clock()})
    return release.version


def _failure(exc: BaseException) -> str:
    """What the history says stopped a repair."""
    if isinstance(exc, ServiceError):  # StepFailed, KubeError, RegistryError...
        return exc.message
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (KeyboardInterrupt) before it finished; run repair-release again"
    return f"failed with an internal error: {exc!r}"


def _reapply(
    ctx: StepContext, release: Release, *, clock: Callable[[], float], say: Callable[[str], None]
) -> None:
    total = len(STEPS)
    for number, (name, step) in enumerate(
        (("values", values), ("apply", apply), ("source", source)), start=2
    ):
        say(f"[{number}/{total}] {name}")
        step.run(ctx)
    token = f"repair-{int(clock())}"
    say(f"[5/{total}] asking Flux to reconcile release {release.version}")
    flux.wait_source(ctx, release, token)
    say(f"[6/{total}] asking Helm to reconcile every HelmRelease")
    flux.wait_helm_releases(ctx, token)
    say(f"[7/{total}] recording the selection")
    reconcile.run(ctx)
