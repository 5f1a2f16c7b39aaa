"""The source step against FakeKube: the objects it wants (proxy and CA Secrets in both source
namespaces, a chart source per chart, the bundle's source and Kustomization), what it reports,
how it removes a dropped proxy's credentials, and when its probe says done."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from host_service import manifests
from host_service.intent import SetupIntent
from host_service.manifests import KUSTOMIZATIONS, OCI_REPOSITORIES
from host_service.settings import Registry
from host_service.steps import source
from host_service.steps.context import StepContext, StepFailed
from tests.fixtures.host_service import FakeKube
from tests.unit.test_host_steps import context, store_release
from tests.unit.test_step_apply import Managed

CONFIG = "sha256:" + "d" * 64
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PROXY = "http://user:secret@proxy.example.com:3128"


def source_context(
    tmp_path: Path, *, proxy: str | None = None, ca: bool = False, kube: FakeKube | None = None
) -> tuple[StepContext, FakeKube, list[tuple[str, str | None]]]:
    kube = kube or Managed()
    intent = SetupIntent(app_url="https://psa.example.com", channel="stable", proxy=proxy)
    ctx, reports = context(tmp_path, kube=kube, intent=intent)
    if ca:
        bundle = tmp_path / "site-ca.pem"
        bundle.write_text(PEM)
        registry = Registry(ca_bundle=bundle)
        ctx = dataclasses.replace(
            ctx, settings=dataclasses.replace(ctx.settings, registry=registry)
        )
    store_release(ctx)
    return ctx, kube, reports


def kinds_and_places(ctx: StepContext) -> list[tuple[str, str, str]]:
    return [
        (o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in source.desired(ctx)
    ]


def test_without_proxy_or_ca_only_sources_and_the_kustomization(tmp_path: Path) -> None:
    ctx, _, _ = source_context(tmp_path)
    wanted = kinds_and_places(ctx)
    assert all(kind == "OCIRepository" for kind, ns, _ in wanted if ns == "alga-system")
    assert [w for w in wanted if w[1] == "flux-system"] == [
        ("OCIRepository", "flux-system", "alga-appliance"),
        ("Kustomization", "flux-system", "alga-appliance"),
    ]
    assert wanted[-2:] == [
        ("OCIRepository", "flux-system", "alga-appliance"),
        ("Kustomization", "flux-system", "alga-appliance"),
    ]
    names = [n for _, ns, n in wanted if ns == "alga-system"]
    assert names == sorted(names)
    assert len(names) == 8
    for obj in source.desired(ctx):
        spec = obj["spec"]
        assert "proxySecretRef" not in spec
        assert "certSecretRef" not in spec


def test_a_proxy_and_a_site_ca_go_to_both_source_namespaces(tmp_path: Path) -> None:
    ctx, _, _ = source_context(tmp_path, proxy=PROXY, ca=True)
    objects = source.desired(ctx)
    assert kinds_and_places(ctx)[:4] == [
        ("Secret", "flux-system", manifests.PROXY_SECRET),
        ("Secret", "flux-system", manifests.CA_SECRET),
        ("Secret", "alga-system", manifests.PROXY_SECRET),
        ("Secret", "alga-system", manifests.CA_SECRET),
    ]
    assert manifests.secret_values(objects[1]) == {"ca.crt": PEM}
    assert manifests.secret_values(objects[0])["password"] == "secret"
    for obj in objects[4:-1]:
        assert obj["spec"]["proxySecretRef"] == {"name": manifests.PROXY_SECRET}
        assert obj["spec"]["certSecretRef"] == {"name": manifests.CA_SECRET}
    assert objects[-2]["spec"]["ref"] == {"digest": CONFIG}


def test_a_ca_without_a_proxy(tmp_path: Path) -> None:
    ctx, _, _ = source_context(tmp_path, ca=True)
    objects = source.desired(ctx)
    assert [o["metadata"]["name"] for o in objects[:2]] == [manifests.CA_SECRET] * 2
    assert all("proxySecretRef" not in o["spec"] for o in objects[2:])
    assert all(o["spec"]["certSecretRef"] == {"name": manifests.CA_SECRET} for o in objects[2:-1])


def test_a_ca_bundle_that_cannot_be_read(tmp_path: Path) -> None:
    ctx, _, _ = source_context(tmp_path, ca=True)
    bundle = ctx.settings.registry.ca_bundle
    assert bundle is not None
    bundle.unlink()
    with pytest.raises(StepFailed) as caught:
        source.desired(ctx)
    failed = caught.value
    assert (
        str(failed) == f"the registry CA bundle {bundle} cannot be read: No such file or directory"
    )
    assert failed.cause == "build-info.json names a CA bundle that is not on the system"
    assert failed.next_step == "restore the CA bundle file, then retry"


def test_run_applies_everything_and_reports_each_source(tmp_path: Path) -> None:
    ctx, kube, reports = source_context(tmp_path, ca=True)
    assert source.probe(ctx) is False
    source.run(ctx)
    assert reports[0] == ("applying the Flux source", None)
    assert ("OCIRepository alga-appliance applied",
            f"OCIRepository flux-system/alga-appliance @ {CONFIG}") in reports  # fmt: skip
    assert ("Kustomization alga-appliance applied",
            "Kustomization flux-system/alga-appliance") in reports  # fmt: skip
    assert not any(m.startswith("Secret") for m, _ in reports)
    charts = [d for m, d in reports if d and d.startswith("OCIRepository alga-system/")]
    assert len(charts) == 8
    assert all(" @ sha256:" in d for d in charts)
    assert len(reports) == 1 + 8 + 2
    assert kube.get(KUSTOMIZATIONS, "alga-appliance", "flux-system") is not None
    assert source.probe(ctx) is True
    assert isinstance(kube, Managed)
    assert kube.managers == ["alga-appliance"]


def test_run_removes_a_dropped_proxys_credentials(tmp_path: Path) -> None:
    ctx, kube, _ = source_context(tmp_path, proxy=PROXY)
    source.run(ctx)
    assert kube.get("secrets", manifests.PROXY_SECRET, "alga-system") is not None
    assert source.probe(ctx) is True
    plain, _, _ = source_context(tmp_path / "again", kube=kube)
    assert source.probe(plain) is False  # the proxy Secret still lingers
    source.run(plain)
    for namespace in ("flux-system", "alga-system"):
        assert kube.get("secrets", manifests.PROXY_SECRET, namespace) is None
    assert source.probe(plain) is True


def test_a_rejected_apply_fails_the_step(tmp_path: Path) -> None:
    ctx, kube, _ = source_context(tmp_path)
    kube.deny("apply", OCI_REPOSITORIES, message="no matches for kind OCIRepository")
    with pytest.raises(StepFailed) as caught:
        source.run(ctx)
    failed = caught.value
    error = "Error from server (Forbidden): no matches for kind OCIRepository"
    assert str(failed) == f"applying the Flux source failed: {error}"
    assert failed.cause == "the Flux CRDs are missing or the API server rejected the objects"
    assert failed.next_step == "check `k3s kubectl get crd | grep fluxcd`, then retry"
    assert failed.output == error


def test_a_refused_proxy_cleanup_fails_the_step(tmp_path: Path) -> None:
    ctx, kube, _ = source_context(tmp_path)
    kube.deny("delete", "secrets", message="secrets is forbidden")
    with pytest.raises(StepFailed, match=r"^applying the Flux source failed: Error from server"):
        source.run(ctx)


def test_probe_sees_a_changed_spec_or_secret_and_api_failures(tmp_path: Path) -> None:
    ctx, kube, _ = source_context(tmp_path, ca=True)
    source.run(ctx)
    key = (OCI_REPOSITORIES, "flux-system", "alga-appliance")
    kube.objects[key]["spec"]["ref"] = {"digest": "sha256:" + "0" * 64}
    assert source.probe(ctx) is False
    source.run(ctx)
    assert source.probe(ctx) is True
    kube.objects[key]["spec"]["extra"] = "set by someone else"  # fields we do not set are theirs
    kube.objects[key]["status"] = {"conditions": []}
    assert source.probe(ctx) is True
    ca_key = ("secrets", "alga-system", manifests.CA_SECRET)
    kube.objects[ca_key]["data"] = {"ca.crt": "b3RoZXI="}
    assert source.probe(ctx) is False
    del kube.objects[ca_key]
    assert source.probe(ctx) is False
    source.run(ctx)
    kube.deny("get", KUSTOMIZATIONS, times=1)
    assert source.probe(ctx) is False
    assert source.probe(ctx) is True


def test_matches_compares_the_wanted_spec_or_data() -> None:
    want = {"kind": "Secret", "data": {"a": "b"}}
    assert source._matches(None, want) is False
    assert source._matches({"data": {"a": "b"}}, want) is True
    assert source._matches({"data": {"a": "c"}}, want) is False
    assert source._matches({}, {"kind": "Secret"}) is True  # no data either side
    spec = {"kind": "Kustomization", "spec": {"path": "./x", "prune": True}}
    assert source._matches({"spec": {"path": "./x", "prune": True, "more": 1}}, spec) is True
    assert source._matches({"spec": {"path": "./x"}}, spec) is False
    assert source._matches({}, spec) is False


def test_each_kind_has_its_api_resource() -> None:
    assert source._resource({"kind": "Secret"}) == "secrets"
    assert source._resource({"kind": "OCIRepository"}) == OCI_REPOSITORIES
    assert source._resource({"kind": "Kustomization"}) == KUSTOMIZATIONS


def test_a_ca_bundle_with_text_beside_the_certificates_is_named_not_a_crash(
    tmp_path: Path,
) -> None:
    ctx, _, _ = source_context(tmp_path, ca=True)
    bundle = ctx.settings.registry.ca_bundle
    assert bundle is not None
    bundle.write_text("# Root CA\n# Főtanúsítvány\n" + PEM, encoding="utf-8")
    with pytest.raises(StepFailed) as caught:
        source.desired(ctx)
    failed = caught.value
    assert str(failed) == f"the registry CA bundle {bundle}: line 2 has a non-ASCII character"
    assert failed.cause == (
        "the file holds more than certificate blocks (a comment or a subject line)"
    )
    assert failed.next_step == (
        "keep only the -----BEGIN CERTIFICATE----- blocks in it, then retry"
    )
