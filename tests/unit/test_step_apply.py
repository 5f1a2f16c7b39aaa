"""The apply step against FakeKube: namespaces first, the generated Secret created once, the
stored values and the release selection applied, what it reports, when probe says done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from host_service import manifests
from host_service.release import SERVICES
from host_service.steps import apply
from host_service.steps import values as values_step
from host_service.steps.context import StepContext, StepFailed
from host_service.values import GENERATED_SECRET_KEYS, SECRET_NAME
from tests.fixtures.host_service import FakeKube
from tests.unit.test_host_steps import context, store_release

NAMESPACES = ["flux-system", "alga-system", "msp"]


class Managed(FakeKube):
    """Records the field manager of every server-side apply."""

    def __init__(self) -> None:
        super().__init__()
        self.managers: list[str] = []

    def apply(self, objects: Any, *, field_manager: str) -> None:
        self.managers.append(field_manager)
        super().apply(objects, field_manager=field_manager)


def apply_context(tmp_path: Path) -> tuple[StepContext, Managed, list[tuple[str, str | None]]]:
    kube = Managed()
    ctx, reports = context(tmp_path, kube=kube)
    store_release(ctx)
    values_step.run(ctx)
    reports.clear()
    return ctx, kube, reports


def test_desired_is_namespaces_then_values_then_the_selection(tmp_path: Path) -> None:
    ctx, _, _ = apply_context(tmp_path)
    objects = apply.desired(ctx)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects[:3]] == [
        ("Namespace", n) for n in NAMESPACES
    ]
    assert [o["metadata"]["name"] for o in objects[3:-1]] == [
        f"alga-values-{s}" for s in sorted(SERVICES)
    ]
    assert all(o["metadata"]["namespace"] == "alga-system" for o in objects[3:])
    selection = objects[-1]
    assert selection["metadata"]["name"] == manifests.SELECTION_CONFIGMAP
    assert selection["data"] == {
        "version": "1.4.0",
        "channel": "stable",
        "requested": "stable",
        "releaseRepository": "ghcr.io/nine-minds/alga-appliance-release",
        "manifestDigest": "sha256:" + "e" * 64,
        "configRepository": "ghcr.io/nine-minds/alga-appliance-config",
        "configDigest": "sha256:" + "d" * 64,
        "valuesProfile": "single-node",
    }


def test_missing_values_fail_with_what_to_do(tmp_path: Path) -> None:
    ctx, _, _ = apply_context(tmp_path)
    directory = ctx.settings.paths.values_dir
    (directory / "redis.yaml").unlink()
    with pytest.raises(StepFailed) as caught:
        apply.desired(ctx)
    failed = caught.value
    assert str(failed) == (
        f"the rendered values in {directory} are missing, damaged or not for this release"
    )
    assert failed.cause == (
        "they were removed or changed after the values step, or the release was resolved "
        "again since"
    )
    assert failed.next_step == (
        "submit setup again: the run renders the values before it applies them"
    )


def test_run_applies_in_order_and_reports_each_object(tmp_path: Path) -> None:
    ctx, kube, reports = apply_context(tmp_path)
    assert apply.probe(ctx) is False
    apply.run(ctx)
    assert reports[:4] == [
        ("applying namespaces", None),
        ("namespaces applied", "flux-system, alga-system, msp"),
        (f"secret {SECRET_NAME} created", f"Secret msp/{SECRET_NAME} generated"),
        ("applying values and release selection", None),
    ]
    assert reports[4:] == [
        (f"ConfigMap {name} applied", f"ConfigMap alga-system/{name}")
        for name in [*(f"alga-values-{s}" for s in sorted(SERVICES)), manifests.SELECTION_CONFIGMAP]
    ]
    applies = [c for c in kube.calls if c[0] in ("apply", "create")]
    assert applies[:4] == [
        ("apply", "Namespace", "flux-system"),
        ("apply", "Namespace", "alga-system"),
        ("apply", "Namespace", "msp"),
        ("create", "Secret", SECRET_NAME),
    ]
    assert apply.probe(ctx) is True
    assert kube.managers == ["alga-appliance", "alga-appliance"]


def test_probe_sees_changed_data_lost_labels_and_a_missing_secret_key(tmp_path: Path) -> None:
    ctx, kube, _ = apply_context(tmp_path)
    apply.run(ctx)
    key = ("configmaps", "alga-system", "alga-values-redis")
    kube.objects[key]["data"] = {"values.yaml": "edited: true\n"}
    assert apply.probe(ctx) is False
    apply.run(ctx)
    assert apply.probe(ctx) is True
    kube.objects[key]["metadata"]["labels"] = {"other": "label"}
    assert apply.probe(ctx) is False
    kube.objects[key]["metadata"]["labels"] = {**manifests.MANAGED_BY, "other": "label"}
    assert apply.probe(ctx) is True  # labels someone else adds are theirs
    del kube.objects[("namespaces", "", "msp")]["metadata"]["labels"]
    assert apply.probe(ctx) is False
    apply.run(ctx)
    secret = kube.objects[("secrets", "msp", SECRET_NAME)]
    del secret["data"]["auth-key"]
    assert apply.probe(ctx) is False
    kube.deny("get", "configmaps", times=1)
    apply.run(ctx)
    assert apply.probe(ctx) is False  # the API failed once
    assert apply.probe(ctx) is True


def test_a_rejected_apply_fails_the_step(tmp_path: Path) -> None:
    ctx, kube, _ = apply_context(tmp_path)
    kube.deny("apply", "configmaps", message="exceeded quota: configmaps")
    with pytest.raises(StepFailed) as caught:
        apply.run(ctx)
    failed = caught.value
    error = "Error from server (Forbidden): exceeded quota: configmaps"
    assert str(failed) == f"applying the appliance configuration failed: {error}"
    assert failed.cause == (
        "the API server rejected an object (admission, quota or a conflicting owner)"
    )
    assert failed.next_step == "read the output below, fix the cause, then retry"
    assert failed.output == error


def test_the_generated_secret_gains_missing_keys_and_keeps_the_rest(tmp_path: Path) -> None:
    ctx, kube, reports = apply_context(tmp_path)
    apply._ensure_generated_secret(ctx)
    first = manifests.secret_values(kube.get("secrets", SECRET_NAME, "msp"))
    assert sorted(first) == sorted(GENERATED_SECRET_KEYS)
    assert all(len(v) == 43 for v in first.values())  # 32 random bytes, base64url
    assert len(set(first.values())) == len(first)
    reports.clear()
    apply._ensure_generated_secret(ctx)
    assert reports == [(f"secret {SECRET_NAME} kept", f"Secret msp/{SECRET_NAME} kept")]
    assert not any(c[0] == "patch" for c in kube.calls)
    secret = kube.objects[("secrets", "msp", SECRET_NAME)]
    del secret["data"]["redis-password"]
    del secret["data"]["crypto-key"]
    reports.clear()
    apply._ensure_generated_secret(ctx)
    assert reports == [
        (f"secret {SECRET_NAME}: added redis-password, crypto-key", None),
        (f"secret {SECRET_NAME} kept", f"Secret msp/{SECRET_NAME} kept"),
    ]
    now = manifests.secret_values(kube.get("secrets", SECRET_NAME, "msp"))
    assert sorted(now) == sorted(GENERATED_SECRET_KEYS)
    assert {k: v for k, v in now.items() if k not in ("redis-password", "crypto-key")} == {
        k: v for k, v in first.items() if k not in ("redis-password", "crypto-key")
    }
    assert now["redis-password"] != first["redis-password"]
    assert len(now["crypto-key"]) == len(now["redis-password"]) == 43


class Racing(FakeKube):
    """Another writer creates the Secret between our get and our create."""

    def create(self, obj: dict[str, object]) -> bool:  # type: ignore[override]
        partial = manifests.secret(SECRET_NAME, "msp", {"app-secret": "theirs"})
        self.objects[("secrets", "msp", SECRET_NAME)] = partial
        return super().create(obj)


def test_a_secret_created_by_someone_else_meanwhile_is_kept_and_completed(
    tmp_path: Path,
) -> None:
    kube = Racing()
    ctx, reports = context(tmp_path, kube=kube)
    apply._ensure_generated_secret(ctx)
    assert reports[0] == (
        f"secret {SECRET_NAME} kept",
        f"Secret msp/{SECRET_NAME} already present, kept",
    )
    values = manifests.secret_values(kube.get("secrets", SECRET_NAME, "msp"))
    assert values["app-secret"] == "theirs"
    assert sorted(values) == sorted(GENERATED_SECRET_KEYS)


def test_each_kind_has_its_api_resource() -> None:
    assert apply._resource({"kind": "Namespace"}) == "namespaces"
    assert apply._resource({"kind": "ConfigMap"}) == "configmaps"
    assert apply._resource({"kind": "Secret"}) == "secrets"


def test_matches_needs_the_object_our_labels_and_our_data() -> None:
    want = {"metadata": {"labels": {"a": "1"}}, "data": {"k": "v"}}
    assert apply._matches(None, want) is False
    assert apply._matches({"metadata": {"labels": {"a": "1"}}, "data": {"k": "v"}}, want) is True
    assert apply._matches({"metadata": {"labels": None}, "data": {"k": "v"}}, want) is False
    assert apply._matches({"data": {"k": "v"}}, want) is False
    assert apply._matches({"metadata": {"labels": {"a": "1"}}}, want) is False
    no_data = {"metadata": {"labels": {"a": "1"}}}
    assert apply._matches({"metadata": {"labels": {"a": "1"}}, "data": {"x": "y"}}, no_data)
    assert apply._matches({"metadata": {}}, {"metadata": {}}) is True
