"""The update's steps, each ``probe`` (already done in reality?) and ``run`` (idempotent).

The bootstrap's own code does the work wherever it can: the release step fetches and
validates, ``values.render_all`` renders (operator inputs win, secrets are never rendered),
the bootstrap's values, apply and source steps write the values, patch the ConfigMaps and
move the source once the selection is committed, and its reconcile step records it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from host_service import manifests
from host_service.intent import InputErrors, IntentStore, SetupIntent, parse_setup
from host_service.kube import KubeError, is_true
from host_service.oci import DigestMismatch, RegistryError
from host_service.release import FetchedRelease, Release, values_configmap_name
from host_service.resolution import read_resolution
from host_service.steps import apply, reconcile, resolved, source
from host_service.steps import values as values_step
from host_service.steps.context import StepContext, StepFailed
from host_service.update import flux
from host_service.update.state import UpdateRun, UpdateStep
from host_service.update.store import Candidate, CandidateCache, read_selection
from host_service.update.versions import compare
from host_service.values import render_all

log = logging.getLogger(__name__)


def target_intent(intent: SetupIntent, run: UpdateRun) -> SetupIntent:
    """The operator's inputs with the release choice this run makes; nothing else changes
    (the app URL, the proxy: an update never resets what the operator set). The choice
    passes setup's own rules, as if the operator had typed it into the setup form."""
    ref = run.target.ref
    pin = run.kind == "pin"
    choice = {"channel": None if pin else ref, "release": ref if pin else None}
    try:
        chosen = parse_setup({**intent.to_json(), **choice}, default_channel="")
    except InputErrors as exc:
        why = "; ".join(f"{field}: {problem}" for field, problem in exc.errors.items())
    else:
        if chosen.release_ref == ref:
            return chosen
        why = f"it reads as {chosen.release_ref!r}"
    raise StepFailed(
        f"update {run.id} selects {ref!r} ({run.kind}), which setup would refuse: {why}",
        cause="the run file was changed by hand, or written by an older service that did not "
        "check the release it names",
        next_step="choose the release again on the update page (that replaces this run)",
    )


@dataclass
class UpdateContext:
    ctx: StepContext  # its intent is already the target intent
    run: UpdateRun
    cache: CandidateCache
    intents: IntentStore
    set_changes: Callable[[tuple[str, ...]], None]

    def candidate(self) -> Candidate:
        found = self.cache.load(self.run.target.manifest_digest)
        if found is None:
            raise StepFailed(
                f"the manifest of release {self.run.target.version} is not cached",
                cause="the state directory lost it after the resolve step",
                next_step="retry: the resolve step fetches it again",
            )
        return found


@dataclass(frozen=True)
class UpdateImplementation:
    probe: Callable[[UpdateContext], bool]
    run: Callable[[UpdateContext], None]


def _never(u: UpdateContext) -> bool:
    """Steps that only read: they always run (a resumed run checks again)."""
    return False


def resolve_run(u: UpdateContext) -> None:
    target = u.run.target
    fetched = resolved.fetch(u.ctx, target.manifest_digest)
    if fetched.release.version != target.version:  # a digest names one manifest for good
        raise StepFailed(
            f"{target.manifest_digest} is release {fetched.release.version}, not {target.version}",
            cause="the registry answered with another manifest",
            next_step="check the registry or the mirror in between, then retry",
        )
    # The run's ref was checked against the candidate when it started; it stays paired.
    u.cache.save(
        Candidate(
            fetched.manifest_digest, fetched.config_digest, fetched.release, refs=(target.ref,)
        )
    )
    u.ctx.report(
        f"release {target.version}: manifest and config blob digests recomputed",
        detail=f"{u.run.target.ref} -> {fetched.manifest_digest} (config {fetched.config_digest})",
    )


def validate_run(u: UpdateContext) -> None:
    candidate = u.candidate()
    release = candidate.release
    previous = u.run.previous
    order = compare(release.version, previous.version)
    if order is not None and order < 0 and not u.run.force:
        raise StepFailed(
            f"release {release.version} is older than the running {previous.version}",
            cause="a downgrade is refused unless forced: the running release may have "
            "migrated data the older one cannot read",
            next_step="select it again with the downgrade confirmed (force), or pick a newer "
            "release",
        )
    registry = u.ctx.settings.registry.host
    repository = release.config.repository
    if repository.startswith(f"{registry}/"):
        path = repository.removeprefix(f"{registry}/")
        try:
            with u.ctx.registry() as client:
                client.get_manifest(path, release.config.digest)
        except DigestMismatch as exc:
            raise StepFailed(
                f"the config bundle {repository}@{release.config.digest} failed its digest check",
                cause="a corrupting proxy or mirror, or a tampered registry",
                next_step="do not bypass this; check the proxy or mirror, then retry",
                output=str(exc),
            ) from exc
        except RegistryError as exc:
            raise StepFailed(
                f"the config bundle {repository}@{release.config.digest} cannot be read: "
                f"{exc.detail}",
                cause="the release names a bundle that is not (or no longer) published",
                next_step="pick another release, or retry once the registry is reachable",
                output=str(exc),
            ) from exc
        u.ctx.report(
            "config bundle digest verified",
            detail=f"config bundle {repository}@{release.config.digest}: manifest verified",
        )
    else:
        u.ctx.report(
            "config bundle on another registry: Flux verifies its digest when it pulls",
            detail=f"config bundle {repository}@{release.config.digest}: pinned by digest",
        )
    u.ctx.report(
        f"release {release.version} for profile {release.values_profile}",
        detail=f"{previous.version} -> {release.version}" + (" (forced)" if u.run.force else ""),
    )


def render_run(u: UpdateContext) -> None:
    release = u.candidate().release
    settings = u.ctx.settings
    wanted = render_all(release, u.ctx.intent, workloads=settings.namespaces.workloads)
    changed: list[str] = []
    for service, text in wanted.items():
        name = values_configmap_name(service)
        try:
            live = u.ctx.kube.get("configmaps", name, settings.namespaces.system)
        except KubeError as exc:
            raise StepFailed(
                f"reading {name} failed: {exc.message}",
                cause="the API server is not answering",
                next_step="check k3s, then retry",
                output=exc.output,
            ) from exc
        same = (live or {}).get("data", {}).get("values.yaml") == text
        if not same:
            changed.append(name)
        u.ctx.report(
            f"{name}: {'unchanged' if same else 'changes'}",
            detail=f"{name}: {'unchanged' if same else 'changes'}",
        )
    changed.append(manifests.SELECTION_CONFIGMAP)
    u.set_changes(tuple(changed))


def _committed(u: UpdateContext) -> bool:
    resolution = read_resolution(u.ctx.settings.paths)
    stored = u.intents.load()
    return (
        resolution is not None
        and resolution.manifest_digest == u.run.target.manifest_digest
        and resolution.ref == u.run.target.ref
        and stored is not None
        and stored.release_ref == u.run.target.ref
        and resolved.load(u.ctx) is not None
        and values_step.probe(u.ctx)
    )


def commit_run(u: UpdateContext) -> None:
    candidate = u.candidate()
    fetched = FetchedRelease(
        release=candidate.release,
        reference=u.run.target.ref,
        manifest_digest=candidate.manifest_digest,
        config_digest=candidate.config_digest,
    )
    resolved.store(u.ctx, u.run.target.ref, fetched)
    stored = u.intents.load()
    if stored is None:
        raise StepFailed(
            "the setup inputs are gone",
            cause="setup-inputs.json was deleted (reset-data?)",
            next_step="submit setup again",
        )
    u.intents.save(target_intent(stored, u.run))
    u.ctx.report(
        f"selection recorded: {u.run.target.ref} = {candidate.release.version}",
        detail=f"selection {u.run.target.ref} -> {candidate.manifest_digest}",
    )
    values_step.run(u.ctx)


def _release(u: UpdateContext) -> Release:
    return resolved.require(u.ctx)[1]


def _reconciled(u: UpdateContext) -> bool:
    recorded, problem = read_selection(u.ctx.settings.paths.selection_file)
    if problem is not None:
        log.warning("%s", problem)
    if recorded is None:
        return False
    if recorded.get("manifest_digest") != u.run.target.manifest_digest:
        return False
    if recorded.get("app_url") != u.ctx.intent.app_url:
        return False
    try:
        releases = flux.helm_releases(u.ctx)
    except KubeError:
        return False
    token = u.run.token
    return all(flux.handled(hr, token) and is_true(hr, "Ready") for hr in releases)


def reconcile_run(u: UpdateContext) -> None:
    release = _release(u)
    flux.wait_source(u.ctx, release, u.run.token)
    flux.wait_helm_releases(u.ctx, u.run.token)
    reconcile.run(u.ctx)


IMPLEMENTATIONS: Mapping[UpdateStep, UpdateImplementation] = {
    UpdateStep.RESOLVE: UpdateImplementation(_never, resolve_run),
    UpdateStep.VALIDATE: UpdateImplementation(_never, validate_run),
    UpdateStep.RENDER: UpdateImplementation(_never, render_run),
    UpdateStep.COMMIT: UpdateImplementation(_committed, commit_run),
    UpdateStep.APPLY: UpdateImplementation(
        lambda u: apply.probe(u.ctx), lambda u: apply.run(u.ctx)
    ),
    UpdateStep.SOURCE: UpdateImplementation(
        lambda u: source.probe(u.ctx), lambda u: source.run(u.ctx)
    ),
    UpdateStep.RECONCILE: UpdateImplementation(_reconciled, reconcile_run),
}
