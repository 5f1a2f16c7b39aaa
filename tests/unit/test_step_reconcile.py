"""The reconcile step against FakeKube: the Kustomization's and HelmReleases' conditions as
Flux reports them, every way of waiting and failing, and the selection it records."""

from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from host_service import manifests
from host_service.manifests import HELMRELEASES, KUSTOMIZATIONS
from host_service.settings import Timeouts
from host_service.steps import reconcile
from host_service.steps.context import StepContext, StepFailed
from tests.fixtures.host_service import FakeKube
from tests.unit.test_host_steps import context, store_release

CONFIG = "sha256:" + "d" * 64  # the config digest store_release pins
MANIFEST = "sha256:" + "e" * 64
LABEL = {"kustomize.toolkit.fluxcd.io/name": manifests.SOURCE_NAME}


def cond(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    found = {"type": kind, "status": status}
    if reason:
        found["reason"] = reason
    if message:
        found["message"] = message
    return found


def source(*conditions: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1beta2",
        "kind": "OCIRepository",
        "metadata": {"name": manifests.SOURCE_NAME, "namespace": "flux-system"},
        "status": {"conditions": list(conditions)},
    }


def kustomization(
    *conditions: dict[str, str],
    applied: str | None = CONFIG,
    generation: int | None = 2,
    observed: int | None = 2,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": manifests.SOURCE_NAME, "namespace": "flux-system"}
    if generation is not None:
        meta["generation"] = generation
    status: dict[str, Any] = {"conditions": list(conditions)}
    if applied is not None:
        status["lastAppliedRevision"] = applied
    if observed is not None:
        status["observedGeneration"] = observed
    return {"kind": "Kustomization", "metadata": meta, "status": status}


def helmrelease(
    name: str,
    *conditions: dict[str, str],
    labels: dict[str, str] | None = None,
    generation: int = 1,
    observed: int = 1,
) -> dict[str, Any]:
    return {
        "kind": "HelmRelease",
        "metadata": {
            "name": name,
            "namespace": "alga-system",
            "labels": LABEL if labels is None else labels,
            "generation": generation,
        },
        "status": {"conditions": list(conditions), "observedGeneration": observed},
    }


READY = cond("Ready", "True", "ReconciliationSucceeded", "Applied revision")


def healthy_kube() -> FakeKube:
    kube = FakeKube()
    kube.put(source(cond("Ready", "True", "Succeeded", "stored artifact")))
    kube.put(kustomization(READY))
    kube.put(helmrelease("alga-core", READY))
    kube.put(helmrelease("redis", READY))
    return kube


def reconcile_context(
    tmp_path: Path, kube: FakeKube, *, timeout: float = 60.0
) -> tuple[StepContext, list[tuple[str, str | None]]]:
    ctx, reports = context(tmp_path, kube=kube)
    timeouts = Timeouts(poll_interval=0.0, storage=0.0, reconcile=timeout)
    ctx = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, timeouts=timeouts))
    store_release(ctx)
    return ctx, reports


# -- the pieces ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("generation", "observed", "expected"),
    [(None, None, True), (None, 1, True), (3, 3, True), (3, 2, False), (3, None, False)],
)
def test_observed_means_the_controller_saw_this_generation(
    generation: int | None, observed: int | None, expected: bool
) -> None:
    obj = kustomization(generation=generation, observed=observed)
    assert reconcile._observed(obj) is expected


def test_observed_without_metadata_or_status_counts_as_seen() -> None:
    assert reconcile._observed({}) is True
    assert reconcile._observed({"metadata": {"generation": 1}}) is False


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([], "no status yet"),
        ([cond("Ready", "False", "BuildFailed", "kustomize build failed")],
         "BuildFailed: kustomize build failed"),
        ([cond("Ready", "False", "Progressing")], "Progressing"),
        ([cond("Ready", "Unknown", message="reconciliation in progress")],
         "reconciliation in progress"),
        ([cond("Stalled", "True", "RetriesExceeded", "gave up")], "no status yet"),
    ],
)  # fmt: skip
def test_message_is_reason_and_message_of_the_condition(
    conditions: list[dict[str, str]], expected: str
) -> None:
    assert reconcile._message(kustomization(*conditions)) == expected


def test_message_of_another_condition_kind() -> None:
    obj = helmrelease("x", READY, cond("Stalled", "True", "RetriesExceeded", "gave up"))
    assert reconcile._message(obj, "Stalled") == "RetriesExceeded: gave up"
    assert reconcile._message(None) == "no status yet"


def test_describe_lists_each_objects_conditions_and_skips_missing_ones() -> None:
    objects = [
        None,
        source(cond("Ready", "False", "Failed", "pull denied")),
        kustomization(cond("Ready", "Unknown"), cond("Healthy", "True", "Ok", "all good")),
        {"kind": "HelmRelease", "metadata": {"name": "bare"}},
        {"kind": "HelmRelease", "metadata": {"name": "n"}, "status": {"conditions": None}},
    ]
    assert reconcile._describe(objects) == (
        "OCIRepository flux-system/alga-appliance:\n"
        "  Ready=False Failed: pull denied\n"
        "Kustomization flux-system/alga-appliance:\n"
        "  Ready=Unknown : \n"
        "  Healthy=True Ok: all good\n"
        "HelmRelease None/bare:\n"
        "HelmRelease None/n:"
    )


def test_only_the_kustomizations_helmreleases_are_listed(tmp_path: Path) -> None:
    kube = healthy_kube()
    kube.put(helmrelease("foreign", cond("Ready", "False", "InstallFailed"), labels={}))
    other = helmrelease("other-ns", READY)
    other["metadata"]["namespace"] = "msp"
    kube.put(other)
    ctx, _ = reconcile_context(tmp_path, kube)
    names = [hr["metadata"]["name"] for hr in reconcile._helm_releases(ctx)]
    assert names == ["alga-core", "redis"]
    assert (
        "list",
        HELMRELEASES,
        "alga-system",
        "kustomize.toolkit.fluxcd.io/name=alga-appliance",
    ) in kube.calls


# -- the Kustomization ----------------------------------------------------------------------


def state(tmp_path: Path, kube: FakeKube) -> tuple[bool, str]:
    ctx, _ = reconcile_context(tmp_path, kube)
    return reconcile._kustomization_state(ctx, CONFIG)


def test_kustomization_ready_at_the_pinned_digest_is_done(tmp_path: Path) -> None:
    assert state(tmp_path, healthy_kube()) == (True, "")


def test_kustomization_ready_at_a_tagged_revision_of_the_digest_is_done(tmp_path: Path) -> None:
    kube = healthy_kube()
    kube.put(kustomization(READY, applied=f"latest@{CONFIG}"))
    assert state(tmp_path, kube) == (True, "")


def test_kustomization_at_another_revision_is_waited_for(tmp_path: Path) -> None:
    kube = healthy_kube()
    kube.put(kustomization(READY, applied="sha256:" + "0" * 64))
    assert state(tmp_path, kube) == (
        False,
        f"Kustomization applied sha256:{'0' * 64}, waiting for sha256:dddddddddddd…",
    )
    kube.put(kustomization(READY, applied=None))
    assert state(tmp_path / "2", kube) == (
        False,
        "Kustomization applied nothing, waiting for sha256:dddddddddddd…",
    )


def test_kustomization_ready_for_an_older_generation_is_waited_for(tmp_path: Path) -> None:
    kube = healthy_kube()
    kube.put(kustomization(READY, generation=3, observed=2))
    assert state(tmp_path, kube) == (
        False,
        "Kustomization: ReconciliationSucceeded: Applied revision",
    )


def test_a_source_not_ready_is_named_first(tmp_path: Path) -> None:
    kube = healthy_kube()
    kube.put(source(cond("Ready", "False", "OCIArtifactPullFailed", "unauthorized")))
    kube.put(kustomization(cond("Ready", "False", "Progressing", "waiting for source")))
    assert state(tmp_path, kube) == (False, "OCIRepository: OCIArtifactPullFailed: unauthorized")


def test_a_missing_source_does_not_hide_the_kustomizations_message(tmp_path: Path) -> None:
    kube = FakeKube()
    kube.put(kustomization(cond("Ready", "False", "DependencyNotReady", "source not found")))
    assert state(tmp_path, kube) == (False, "Kustomization: DependencyNotReady: source not found")


def test_a_ready_source_and_a_progressing_kustomization(tmp_path: Path) -> None:
    kube = healthy_kube()
    kube.put(kustomization(cond("Ready", "Unknown", "Progressing", "applying")))
    assert state(tmp_path, kube) == (False, "Kustomization: Progressing: applying")


def test_a_missing_kustomization_fails_the_step(tmp_path: Path) -> None:
    kube = healthy_kube()
    del kube.objects[(KUSTOMIZATIONS, "flux-system", manifests.SOURCE_NAME)]
    with pytest.raises(StepFailed) as caught:
        state(tmp_path, kube)
    assert str(caught.value) == "the Kustomization flux-system/alga-appliance is gone"
    assert caught.value.cause == "something deleted it after the source step applied it"
    assert caught.value.next_step == "submit setup again to re-apply it"


@pytest.mark.parametrize("reason", ["BuildFailed", "ArtifactFailed"])
def test_a_bundle_that_does_not_build_fails_at_once(tmp_path: Path, reason: str) -> None:
    kube = healthy_kube()
    kube.put(kustomization(cond("Ready", "False", reason, "accumulating resources: no file")))
    with pytest.raises(StepFailed) as caught:
        state(tmp_path, kube)
    failed = caught.value
    assert (
        str(failed) == f"Flux cannot apply the release: {reason}: accumulating resources: no file"
    )
    assert failed.cause == (
        "the config bundle does not build for this appliance (kustomize error or missing path)"
    )
    assert failed.next_step == "pin a different release, or report the release as broken"
    assert failed.output == (
        "OCIRepository flux-system/alga-appliance:\n"
        "  Ready=True Succeeded: stored artifact\n"
        "Kustomization flux-system/alga-appliance:\n"
        f"  Ready=False {reason}: accumulating resources: no file"
    )


def test_a_fatal_reason_that_is_not_false_is_not_fatal(tmp_path: Path) -> None:
    kube = healthy_kube()
    kube.put(kustomization(cond("Ready", "Unknown", "BuildFailed", "retrying"), applied=None))
    assert state(tmp_path, kube) == (False, "Kustomization: BuildFailed: retrying")


def test_a_failed_kustomization_for_a_healing_reason_is_waited_for(tmp_path: Path) -> None:
    kube = healthy_kube()
    kube.put(kustomization(cond("Ready", "False", "HealthCheckFailed", "timeout")))
    assert state(tmp_path, kube) == (False, "Kustomization: HealthCheckFailed: timeout")


# -- the recorded selection and probe ------------------------------------------------------


def record(ctx: StepContext, **fields: Any) -> None:
    selection = {"manifest_digest": MANIFEST, "app_url": ctx.intent.app_url, **fields}
    ctx.settings.paths.selection_file.parent.mkdir(parents=True, exist_ok=True)
    ctx.settings.paths.selection_file.write_text(json.dumps(selection))


def test_selection_recorded_needs_this_manifest_and_this_app_url(tmp_path: Path) -> None:
    ctx, _ = reconcile_context(tmp_path, healthy_kube())
    assert reconcile._selection_recorded(ctx, MANIFEST) is False  # no file
    ctx.settings.paths.selection_file.parent.mkdir(parents=True, exist_ok=True)
    ctx.settings.paths.selection_file.write_text("{not json")
    assert reconcile._selection_recorded(ctx, MANIFEST) is False
    for other in ("null", "[]", '"x"', "5"):  # another JSON type: damaged, not an error
        ctx.settings.paths.selection_file.write_text(other)
        assert reconcile._selection_recorded(ctx, MANIFEST) is False
    record(ctx)
    assert reconcile._selection_recorded(ctx, MANIFEST) is True
    assert reconcile._selection_recorded(ctx, "sha256:" + "1" * 64) is False
    record(ctx, app_url="https://old.example.com")
    assert reconcile._selection_recorded(ctx, MANIFEST) is False


@pytest.mark.usefixtures("ascii_locale")
def test_a_selection_edited_by_hand_is_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    # The step writes ASCII (JSON escapes); an editor writes what was typed.
    ctx, _ = reconcile_context(tmp_path, healthy_kube())
    selection = {"manifest_digest": MANIFEST, "app_url": ctx.intent.app_url, "note": "José"}
    ctx.settings.paths.selection_file.parent.mkdir(parents=True, exist_ok=True)
    ctx.settings.paths.selection_file.write_bytes(
        json.dumps(selection, ensure_ascii=False).encode("utf-8")
    )
    assert reconcile._selection_recorded(ctx, MANIFEST) is True


def test_probe_is_true_only_when_recorded_applied_and_every_release_ready(tmp_path: Path) -> None:
    kube = healthy_kube()
    ctx, _ = reconcile_context(tmp_path, kube)
    assert reconcile.probe(ctx) is False  # nothing recorded yet
    record(ctx)
    assert reconcile.probe(ctx) is True
    kube.put(helmrelease("redis", cond("Ready", "False", "UpgradeFailed")))
    assert reconcile.probe(ctx) is False
    kube.put(helmrelease("redis", READY))
    kube.put(kustomization(READY, applied="sha256:" + "0" * 64))
    assert reconcile.probe(ctx) is False


def test_probe_with_no_helmreleases_is_not_done(tmp_path: Path) -> None:
    kube = healthy_kube()
    for name in ("alga-core", "redis"):
        del kube.objects[(HELMRELEASES, "alga-system", name)]
    ctx, _ = reconcile_context(tmp_path, kube)
    record(ctx)
    assert reconcile.probe(ctx) is False


def test_probe_is_false_when_the_api_fails_or_the_kustomization_is_gone(tmp_path: Path) -> None:
    kube = healthy_kube()
    ctx, _ = reconcile_context(tmp_path, kube)
    record(ctx)
    kube.deny("list", HELMRELEASES, times=1)
    assert reconcile.probe(ctx) is False
    assert reconcile.probe(ctx) is True
    del kube.objects[(KUSTOMIZATIONS, "flux-system", manifests.SOURCE_NAME)]
    assert reconcile.probe(ctx) is False


# -- run -------------------------------------------------------------------------------------


def test_run_reports_each_release_records_the_selection_and_shows_the_url(tmp_path: Path) -> None:
    kube = healthy_kube()
    kube.put(helmrelease("foreign", cond("Stalled", "True", "RetriesExceeded"), labels={}))
    ctx, reports = reconcile_context(tmp_path, kube)
    reconcile.run(ctx)
    assert reports == [
        ("Kustomization applied sha256:dddddddddddd…", f"Kustomization Ready at {CONFIG}"),
        ("HelmRelease alga-core Ready", "HelmRelease alga-core Ready"),
        ("HelmRelease redis Ready", "HelmRelease redis Ready"),
        ("release 1.4.0 reconciled", "release 1.4.0 live"),
    ]
    path = ctx.settings.paths.selection_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    selection = json.loads(path.read_text())
    assert selection.pop("reconciled_at") > 1_000_000_000
    assert selection == {
        "ref": "stable",
        "repository": selection["repository"],
        "manifest_digest": MANIFEST,
        "config_digest": "sha256:" + "f" * 64,
        "version": "1.4.0",
        "sha256": selection["sha256"],
        "config_repository": "ghcr.io/nine-minds/alga-appliance-config",
        "config_digest_pinned": CONFIG,
        "app_url": "https://psa.example.com",
    }
    assert reconcile.probe(ctx) is True
    assert "https://psa.example.com" in ctx.settings.paths.issue.read_text()


def test_run_when_the_banner_cannot_be_written_still_reconciles(tmp_path: Path) -> None:
    ctx, reports = reconcile_context(tmp_path, healthy_kube())
    ctx.settings.paths.issue.parent.mkdir(parents=True, exist_ok=True)
    ctx.settings.paths.issue.mkdir()  # a directory where the banner file goes
    reconcile.run(ctx)
    banner = [m for m, _ in reports if m.startswith("console banner")]
    assert len(banner) == 1
    assert banner[0].startswith("console banner not updated: [Errno 21] Is a directory")
    assert reports[-1] == ("release 1.4.0 reconciled", "release 1.4.0 live")


def test_run_times_out_waiting_for_the_kustomization(tmp_path: Path) -> None:
    kube = healthy_kube()
    kube.put(kustomization(cond("Ready", "Unknown", "Progressing", "applying")))
    ctx, reports = reconcile_context(tmp_path, kube, timeout=0)
    with pytest.raises(StepFailed) as caught:
        reconcile.run(ctx)
    failed = caught.value
    assert str(failed) == "Flux did not apply release 1.4.0 (Kustomization: Progressing: applying)"
    assert failed.cause == "Flux or Helm is still failing: see the conditions below"
    assert failed.next_step == (
        "read the conditions and the workloads' logs, fix the cause, then retry"
    )
    assert failed.output == (
        "OCIRepository flux-system/alga-appliance:\n"
        "  Ready=True Succeeded: stored artifact\n"
        "Kustomization flux-system/alga-appliance:\n"
        "  Ready=Unknown Progressing: applying\n"
        "HelmRelease alga-system/alga-core:\n"
        "  Ready=True ReconciliationSucceeded: Applied revision\n"
        "HelmRelease alga-system/redis:\n"
        "  Ready=True ReconciliationSucceeded: Applied revision"
    )
    assert reports == [("Kustomization: Progressing: applying", None)]


def test_run_timeout_when_the_api_fails_keeps_kubectls_output(tmp_path: Path) -> None:
    kube = healthy_kube()
    kube.deny("get", KUSTOMIZATIONS, message="kustomizations are forbidden")
    ctx, reports = reconcile_context(tmp_path, kube, timeout=0)
    with pytest.raises(StepFailed) as caught:
        reconcile.run(ctx)
    error = "Error from server (Forbidden): kustomizations are forbidden"
    assert str(caught.value) == f"Flux did not apply release 1.4.0 (asking the API: {error})"
    assert caught.value.output == error
    assert reports == [(f"asking the API: {error}", None)]


def test_run_times_out_waiting_for_helmreleases(tmp_path: Path) -> None:
    kube = healthy_kube()
    for name in ("a", "b", "c", "d"):
        kube.put(helmrelease(f"w-{name}", cond("Ready", "Unknown", "Progressing", "installing")))
    kube.put(helmrelease("x-old", READY, generation=2, observed=1))
    ctx, reports = reconcile_context(tmp_path, kube, timeout=0)
    with pytest.raises(StepFailed) as caught:
        reconcile.run(ctx)
    waiting = (
        "waiting for 5 HelmRelease(s): w-a (Progressing: installing), "
        "w-b (Progressing: installing), w-c (Progressing: installing)"
    )
    assert str(caught.value) == f"HelmReleases did not become Ready ({waiting})"
    assert "HelmRelease alga-system/w-d:\n  Ready=Unknown Progressing: installing" in (
        caught.value.output
    )
    assert reports[-1] == (waiting, None)
    assert ("HelmRelease alga-core Ready", "HelmRelease alga-core Ready") in reports


def test_run_with_no_helmreleases_says_where_it_looks(tmp_path: Path) -> None:
    kube = healthy_kube()
    for name in ("alga-core", "redis"):
        del kube.objects[(HELMRELEASES, "alga-system", name)]
    ctx, reports = reconcile_context(tmp_path, kube, timeout=0)
    with pytest.raises(StepFailed) as caught:
        reconcile.run(ctx)
    waiting = "no HelmRelease of the Kustomization alga-appliance in namespace alga-system yet"
    assert str(caught.value) == f"HelmReleases did not become Ready ({waiting})"
    assert reports[-1] == (waiting, None)


def test_run_helmrelease_list_failing_is_waited_out(tmp_path: Path) -> None:
    kube = healthy_kube()
    kube.deny("list", HELMRELEASES, message="the server is busy")
    ctx, _ = reconcile_context(tmp_path, kube, timeout=0)
    with pytest.raises(StepFailed) as caught:
        reconcile.run(ctx)
    error = "Error from server (Forbidden): the server is busy"
    assert str(caught.value) == f"HelmReleases did not become Ready (asking the API: {error})"
    assert caught.value.output == error


def test_a_stalled_helmrelease_fails_the_step_with_its_conditions(tmp_path: Path) -> None:
    kube = healthy_kube()
    kube.put(
        helmrelease(
            "redis",
            cond("Ready", "False", "UpgradeFailed", "timed out"),
            cond("Stalled", "True", "RetriesExceeded", "upgrade retries exhausted"),
        )
    )
    ctx, _ = reconcile_context(tmp_path, kube)
    with pytest.raises(StepFailed) as caught:
        reconcile.run(ctx)
    failed = caught.value
    assert str(failed) == (
        "HelmRelease redis failed and Flux gave up: RetriesExceeded: upgrade retries exhausted"
    )
    assert failed.cause == (
        "the chart failed to install or upgrade and its remediation retries are exhausted"
    )
    assert failed.next_step == (
        "read the HelmRelease and pod logs (status page, `k3s kubectl -n alga-system describe "
        "helmrelease redis`), then retry or collect a support bundle"
    )
    assert failed.output == (
        "HelmRelease alga-system/redis:\n"
        "  Ready=False UpgradeFailed: timed out\n"
        "  Stalled=True RetriesExceeded: upgrade retries exhausted"
    )


class Healing(FakeKube):
    """A cluster whose HelmReleases turn Ready after a few lists (Flux at work)."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def list(
        self, resource: str, namespace: str | None = None, *, selector: str | None = None
    ) -> list[dict[str, Any]]:
        found = super().list(resource, namespace, selector=selector)
        if resource == HELMRELEASES:
            self.after -= 1
            if self.after <= 0:
                for key in [k for k in self.objects if k[0] == HELMRELEASES]:
                    self.objects[key] = helmrelease(key[2], READY)
        return found


def test_run_reports_each_release_once_as_it_becomes_ready(tmp_path: Path) -> None:
    kube = Healing(after=3)
    kube.put(source(cond("Ready", "True")))
    kube.put(kustomization(READY))
    kube.put(helmrelease("alga-core", READY))
    kube.put(helmrelease("redis", cond("Ready", "Unknown", "Progressing", "installing")))
    ctx, reports = reconcile_context(tmp_path, kube)
    reconcile.run(ctx)
    assert [m for m, _ in reports] == [
        "Kustomization applied sha256:dddddddddddd…",
        "HelmRelease alga-core Ready",
        "waiting for 1 HelmRelease(s): redis (Progressing: installing)",
        "HelmRelease redis Ready",
        "release 1.4.0 reconciled",
    ]


def test_a_message_ending_in_a_capital_x_keeps_it() -> None:
    obj = kustomization(cond("Ready", "False", "HealthCheckFailed", "timeout waiting for X"))
    assert reconcile._message(obj) == "HealthCheckFailed: timeout waiting for X"


def test_describe_an_object_without_metadata_or_conditions() -> None:
    assert reconcile._describe([{"kind": "HelmRelease", "status": {}}]) == "HelmRelease None/None:"


def test_the_console_banner_shows_the_address_token_and_app_url(tmp_path: Path) -> None:
    ctx, _ = reconcile_context(tmp_path, healthy_kube())
    reconcile.run(ctx)
    banner = ctx.settings.paths.issue.read_text()
    token = ctx.settings.paths.token_file.read_text().strip()
    assert token in banner
    assert "192.0.2.10" in banner
    assert "https://psa.example.com" in banner


def test_a_kustomization_just_created_has_no_status_yet(tmp_path: Path) -> None:
    kube = healthy_kube()
    kube.put({"kind": "Kustomization",
              "metadata": {"name": manifests.SOURCE_NAME, "namespace": "flux-system"}})  # fmt: skip
    assert state(tmp_path, kube) == (False, "Kustomization: no status yet")
