"""Step logic against in-memory fakes of the host and the cluster (no processes)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import pytest
from requests.exceptions import ReadTimeout, SSLError

from host_service import k3s_files, manifests, resolution, values_store
from host_service.intent import SetupIntent
from host_service.oci import RegistryTLSError
from host_service.registry_access import bypasses_proxy, proxies_for, registry_access
from host_service.release import SERVICES, canonical_json
from host_service.settings import Settings, Timeouts, default_settings
from host_service.steps import apply, flux, preflight, reconcile, release, storage
from host_service.steps import values as values_step
from host_service.steps.context import StepContext, StepFailed
from host_service.values import GENERATED_SECRET_KEYS, SECRET_NAME
from host_service.values_store import RenderedFrom
from tests.fixtures.host_service import (
    FakeHost,
    FakeKube,
    FakeRegistryTransport,
    flux_install_yaml,
    release_document,
)

INTENT = SetupIntent(app_url="https://psa.example.com", channel="stable")


class NoSystemd:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(name)


def context(
    tmp_path: Path,
    *,
    host: FakeHost | None = None,
    kube: FakeKube | None = None,
    intent: SetupIntent = INTENT,
    settings: Settings | None = None,
    registry: FakeRegistryTransport | None = None,
) -> tuple[StepContext, list[tuple[str, str | None]]]:
    reports: list[tuple[str, str | None]] = []
    host = host or FakeHost()
    settings = settings or dataclasses.replace(
        default_settings(tmp_path), timeouts=Timeouts(poll_interval=0.0, storage=0.0)
    )
    transport = registry or FakeRegistryTransport(date=host.clock)
    ctx = StepContext(
        settings=settings,
        intent=intent,
        kube=kube or FakeKube(),
        systemd=NoSystemd(),
        k3s=NoSystemd(),
        host=host,
        registry=registry_access(settings, intent, session=transport.session),
        reporter=lambda message, detail: reports.append((message, detail)),
        clock=Ticks(),
    )
    return ctx, reports


class Ticks:
    """A step clock that moves one second per reading: a poll gives up after a bounded
    number of checks however its condition is broken (no wall time, no endless loop)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


# -- preflight ---------------------------------------------------------------------------

CLOCK = FakeHost().clock


def test_preflight_passes_and_reports_each_check(tmp_path: Path) -> None:
    ctx, reports = context(tmp_path)
    preflight.run(ctx)
    details = [d for _, d in reports if d]
    assert [d.split(":")[1].strip() for d in details] == [
        "DNS", "HTTPS", "network", "disk", "disk", "memory", "clock"]  # fmt: skip
    assert all(d.startswith("ok") for d in details)


@pytest.mark.parametrize(
    ("host", "registry", "message", "cause"),
    [
        (FakeHost(dns={}), None, "DNS lookup of the registry host ghcr.io failed", "DNS"),
        (
            None,
            FakeRegistryTransport(error=SSLError("certificate verify failed")),
            "cannot reach the registry",
            "CA",
        ),
        (
            None,
            FakeRegistryTransport(error=ReadTimeout("Read timed out")),
            "cannot reach the registry",
            "firewall",
        ),
        (
            None,
            FakeRegistryTransport(status=503),
            "HTTP 503 instead of 200 or 401",
            "captive portal",
        ),
        (FakeHost(route=None), None, "no default route", "node address"),
        (FakeHost(free=1024), None, "not enough free disk space", "disk"),
        (FakeHost(memory=1024), None, "not enough memory", "RAM"),
        (
            None,
            FakeRegistryTransport(date=CLOCK + 3600),
            "clock is 3600 s behind",
            "time synchronisation",
        ),
        (
            None,
            FakeRegistryTransport(date=CLOCK - 3600),
            "clock is 3600 s ahead",
            "time synchronisation",
        ),
    ],
)
def test_preflight_failures_name_cause_and_next_step(
    tmp_path: Path,
    host: FakeHost | None,
    registry: FakeRegistryTransport | None,
    message: str,
    cause: str,
) -> None:
    ctx, _ = context(tmp_path, host=host, registry=registry)
    with pytest.raises(StepFailed) as caught:
        preflight.run(ctx)
    assert message in caught.value.message
    assert cause in caught.value.cause
    assert caught.value.next_step
    assert "FAIL" in caught.value.output
    assert "ok" in caught.value.output


def test_every_problem_has_its_wording_filled_in() -> None:
    """The wording table is data: every placeholder of every entry is filled by the check
    that uses it (a typo in a field name would raise KeyError on a real blocker)."""
    fields = {
        "dns-registry": {"name": "ghcr.io"},
        "dns-proxy": {"name": "proxy"},
        "registry-status": {"status": 503, "url": "https://ghcr.io/v2/"},
        "proxy-login-missing": {"proxy": "proxy:3128"},
        "proxy-login-refused": {"proxy": "proxy:3128"},
        "no-route": {},
        "disk": {"path": "/var", "free": 1.0, "need": 20.0},
        "memory": {"memory": 1.0, "need": 4.0},
        "clock": {"seconds": 400.0, "direction": "behind"},
    }
    assert set(fields) == set(preflight.PROBLEMS)
    for key, wording in preflight.PROBLEMS.items():
        failed = wording.failed(**fields[key])
        assert "{" not in failed.message + failed.cause + failed.next_step, key


def assert_says_how_to_trust_the_site_ca(next_step: str, root: Path) -> None:
    etc = root / "etc/alga-appliance"
    build_config = (
        "set appliance.registry.ca_bundle to its PEM file in the build config, rebuild the ISO "
        "and reinstall"
    )
    on_appliance = (
        f"put the PEM file at {etc}/registry-ca.pem, set appliance.registry.ca_bundle to "
        f'"/etc/alga-appliance/registry-ca.pem" in {etc}/build-info.json and restart '
        "appliance-setup.service; then retry"
    )
    assert build_config in next_step
    assert on_appliance in next_step


def test_an_untrusted_registry_certificate_says_where_the_site_ca_goes(tmp_path: Path) -> None:
    registry = FakeRegistryTransport(error=SSLError("certificate verify failed"))
    ctx, _ = context(tmp_path, registry=registry)
    with pytest.raises(StepFailed) as caught:
        preflight.run(ctx)
    assert "CA the appliance does not trust" in caught.value.cause
    assert caught.value.next_step.startswith("trust the site CA: ")
    assert_says_how_to_trust_the_site_ca(caught.value.next_step, tmp_path)


def test_preflight_reports_every_problem(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path, host=FakeHost(route=None, memory=1, free=1))
    with pytest.raises(StepFailed) as caught:
        preflight.run(ctx)
    assert "and 2 more problem(s)" in caught.value.message
    assert caught.value.output.count("FAIL") == 3


def test_preflight_goes_through_the_proxy(tmp_path: Path) -> None:
    host = FakeHost(dns={"proxy.example.com": ["10.0.0.3"]})
    registry = FakeRegistryTransport(date=host.clock)
    intent = SetupIntent(
        app_url="https://a.example.com", channel="stable", proxy="http://proxy.example.com:3128"
    )
    ctx, reports = context(tmp_path, host=host, intent=intent, registry=registry)
    preflight.run(ctx)
    assert ("resolve", "proxy.example.com") in host.asked
    assert registry.asked == [("GET", "https://ghcr.io/v2/", "http://proxy.example.com:3128")]
    messages = [message for message, _ in reports]
    assert "HTTPS: https://ghcr.io/v2/ answers 401 via the proxy proxy.example.com:3128" in messages


def test_no_proxy_sends_the_registry_direct(tmp_path: Path) -> None:
    registry = FakeRegistryTransport(date=CLOCK)
    intent = SetupIntent(
        app_url="https://a.example.com",
        channel="stable",
        proxy="http://proxy.example.com:3128",
        no_proxy=(".ghcr.io",),
    )
    ctx, _ = context(tmp_path, intent=intent, registry=registry)
    preflight.run(ctx)
    assert registry.asked == [("GET", "https://ghcr.io/v2/", "")]


@pytest.mark.parametrize(
    ("host", "entries", "bypass"),
    [
        ("ghcr.io", ["ghcr.io"], True),
        ("pkg.ghcr.io", [".ghcr.io"], True),
        ("pkg.ghcr.io", ["ghcr.io"], True),
        ("notghcr.io", ["ghcr.io"], False),
        ("10.1.2.3", ["10.0.0.0/8"], True),
        ("11.1.2.3", ["10.0.0.0/8"], False),
        ("registry:5000", ["registry:5000"], False),  # the host here has no port part
        ("anything", ["*"], True),
        ("ghcr.io", [], False),
    ],
)
def test_no_proxy_rules(host: str, entries: list[str], bypass: bool) -> None:
    assert bypasses_proxy(host, entries) is bypass


def test_proxies_never_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy:1")
    assert proxies_for("https://ghcr.io/v2/", INTENT) == {}


# -- k3s files ---------------------------------------------------------------------------


def test_k3s_config_and_env(tmp_path: Path) -> None:
    settings = default_settings(tmp_path)
    assert k3s_files.render_config(settings).splitlines()[1:] == [
        'write-kubeconfig-mode: "0600"',
        "disable:",
        '  - "traefik"',
        '  - "servicelb"',
    ]
    assert "HTTP_PROXY" not in k3s_files.render_env(INTENT)
    env = k3s_files.render_env(
        SetupIntent(
            app_url="https://a.example.com", channel="s", proxy="http://p:3128", no_proxy=(".corp",)
        )
    )
    assert "HTTPS_PROXY=http://p:3128\n" in env
    assert "NO_PROXY=127.0.0.0/8,10.42.0.0/16,10.43.0.0/16,.svc,.cluster.local,.corp\n" in env
    unit = k3s_files.render_unit()
    assert "Type=notify" in unit
    assert "ExecStart=/usr/local/bin/k3s server" in unit
    assert "EnvironmentFile=-/etc/systemd/system/k3s.service.env" in unit


# -- storage -----------------------------------------------------------------------------


def provisioner(name: str, namespace: str = "kube-system") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"spec": {"containers": [
            {"image": "rancher/local-path-provisioner:v0.0.32"}]}}},
        "status": {"conditions": [{"type": "Available", "status": "True"}]},
    }  # fmt: skip


def storage_class(
    name: str, *, default: bool, provisioner: str = storage.PROVISIONER
) -> dict[str, Any]:
    annotations = {storage.DEFAULT_ANNOTATION: "true"} if default else {}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "annotations": annotations},
        "provisioner": provisioner,
    }


def test_two_provisioners_are_a_blocker_before_any_claim(tmp_path: Path) -> None:
    kube = FakeKube()
    kube.put(provisioner("local-path-provisioner"))
    kube.put(provisioner("my-local-path", "storage"))
    kube.put(storage_class("local-path", default=True))
    ctx, _ = context(tmp_path, kube=kube)
    with pytest.raises(StepFailed, match="2 local-path provisioners") as caught:
        storage.run(ctx)
    assert "race" in caught.value.cause
    assert not any(call[0] == "create" for call in kube.calls)


def test_another_default_class_is_a_blocker(tmp_path: Path) -> None:
    kube = FakeKube()
    kube.put(provisioner("local-path-provisioner"))
    kube.put(storage_class("local-path", default=True))
    kube.put(storage_class("nfs", default=True, provisioner="nfs"))
    ctx, _ = context(tmp_path, kube=kube)
    with pytest.raises(StepFailed, match=r"another default storage class is set \(nfs\)"):
        storage.run(ctx)


def test_local_path_is_made_default(tmp_path: Path) -> None:
    kube = FakeKube()
    kube.put(provisioner("local-path-provisioner"))
    kube.put(storage_class("local-path", default=False))
    ctx, _ = context(tmp_path, kube=kube)
    with pytest.raises(StepFailed, match="smoke test did not finish"):
        storage.run(ctx)  # no simulated provisioner here: the claim never binds
    sc = kube.objects[("storageclasses.storage.k8s.io", "", "local-path")]
    assert sc["metadata"]["annotations"][storage.DEFAULT_ANNOTATION] == "true"
    assert ("patch", "storageclasses.storage.k8s.io", "local-path") in kube.calls


# -- flux --------------------------------------------------------------------------------


def test_flux_install_yaml_is_read_for_readiness(tmp_path: Path) -> None:
    path = tmp_path / "install.yaml"
    path.write_text(flux_install_yaml("v2.9.4"))
    install = flux.read_install(path)
    assert "kustomizations.kustomize.toolkit.fluxcd.io" in install.crds
    assert install.deployments[("flux-system", "helm-controller")] == (
        "ghcr.io/fluxcd/helm-controller:v2.9.4",)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "missing from the payload"),
        ("a: [", "not valid YAML"),
        ("kind: ConfigMap\n", "does not look like Flux"),
    ],
)
def test_bad_flux_install_yaml(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "install.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(StepFailed, match=message):
        flux.read_install(path)


# -- release: the stored resolution --------------------------------------------------------


def test_the_resolution_is_written_and_read_in_one_place(tmp_path: Path) -> None:
    paths = default_settings(tmp_path).paths
    assert paths.resolution_file == tmp_path / "var/lib/alga-appliance/release/resolution.json"
    assert resolution.read_resolution(paths) is None
    stored = resolution.Resolution(
        ref="stable", repository="ghcr.io/o/r", manifest_digest="sha256:" + "a" * 64,
        config_digest="sha256:" + "b" * 64, version="1.4.0", sha256="c" * 64,
    )  # fmt: skip
    resolution.write_resolution(paths, stored)
    assert paths.resolution_file.stat().st_mode & 0o777 == 0o600
    assert resolution.read_resolution(paths) == stored


def test_release_tls_failure_says_where_the_site_ca_goes(tmp_path: Path) -> None:
    def untrusted() -> Any:
        raise RegistryTLSError(
            "TLS failed for ghcr.io: certificate verify failed", registry="ghcr.io"
        )

    ctx, _ = context(tmp_path)
    ctx.registry = untrusted
    with pytest.raises(StepFailed) as caught:
        release.run(ctx)
    assert caught.value.message.startswith("TLS to the registry failed: TLS failed for ghcr.io")
    assert caught.value.next_step.startswith(
        "exempt the registry from TLS inspection, or trust the site CA: "
    )
    assert_says_how_to_trust_the_site_ca(caught.value.next_step, tmp_path)


@pytest.mark.parametrize(
    "damaged",
    ["{", "[]", '{"ref": "stable"}', '{"ref": 1, "repository": "r", "manifest_digest": "d", '
     '"config_digest": "c", "version": "v", "sha256": "s"}'],
)  # fmt: skip
def test_a_damaged_resolution_reads_as_none(tmp_path: Path, damaged: str) -> None:
    paths = default_settings(tmp_path).paths
    paths.resolution_file.parent.mkdir(parents=True)
    paths.resolution_file.write_text(damaged)
    assert resolution.read_resolution(paths) is None


# -- values: rendered once, applied from the store -----------------------------------------


def store_release(ctx: StepContext) -> resolution.Resolution:
    """A resolved release on disk, as the release step leaves it."""
    document = release_document(
        "1.4.0", "stable", "ghcr.io/nine-minds/alga-appliance-config", "sha256:" + "d" * 64
    )
    data = canonical_json(document)
    stored = resolution.Resolution(
        ref=ctx.intent.release_ref,
        repository=resolution.repository(ctx.settings),
        manifest_digest="sha256:" + "e" * 64,
        config_digest="sha256:" + "f" * 64,
        version="1.4.0",
        sha256=hashlib.sha256(data).hexdigest(),
    )
    path = resolution.manifest_file(ctx.settings.paths, stored.manifest_digest)
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    resolution.write_resolution(ctx.settings.paths, stored)
    return stored


def applied_values(ctx: StepContext) -> dict[str, str]:
    return {
        obj["metadata"]["name"]: obj["data"]["values.yaml"]
        for obj in apply.desired(ctx)
        if obj["metadata"]["name"].startswith("alga-values-")
    }


def test_values_are_rendered_once_and_applied_from_the_store(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path)
    stored = store_release(ctx)
    assert values_step.probe(ctx) is False
    values_step.run(ctx)
    assert values_step.probe(ctx) is True
    directory = ctx.settings.paths.values_dir
    on_disk = {p.stem: p.read_text() for p in directory.glob("*.yaml")}
    assert sorted(on_disk) == sorted(SERVICES)
    assert "appUrl: https://psa.example.com" in on_disk["alga-core"]
    assert applied_values(ctx) == {f"alga-values-{s}": on_disk[s] for s in SERVICES}

    # apply takes what the store holds; it does not render the values again.
    source = RenderedFrom.of(stored, ctx.intent, ctx.settings)
    values_store.write(directory, source, {s: f"kept: {s}\n" for s in SERVICES})
    assert applied_values(ctx) == {f"alga-values-{s}": f"kept: {s}\n" for s in SERVICES}


def test_values_render_for_the_workloads_namespace_and_report_each_service(
    tmp_path: Path,
) -> None:
    ctx, reports = context(tmp_path)
    store_release(ctx)
    values_step.run(ctx)
    assert reports == [(f"values for {s}", f"{s}: values rendered") for s in SERVICES]
    on_disk = (ctx.settings.paths.values_dir / "alga-core.yaml").read_text()
    assert "  namespace: msp\n" in on_disk


def test_the_release_step_is_done_once_a_release_is_stored(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path)
    assert release.probe(ctx) is False
    store_release(ctx)
    assert release.probe(ctx) is True
    other, _ = context(
        tmp_path, intent=SetupIntent(app_url="https://psa.example.com", channel="nightly")
    )
    assert release.probe(other) is False  # stored for another channel


def test_stale_or_damaged_values_are_never_applied(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path)
    store_release(ctx)
    values_step.run(ctx)
    (ctx.settings.paths.values_dir / "redis.yaml").write_text("tampered: true\n")
    assert values_step.probe(ctx) is False
    with pytest.raises(StepFailed, match=r"rendered values .* missing, damaged or not for this"):
        apply.desired(ctx)
    values_step.run(ctx)
    other, _ = context(
        tmp_path, intent=SetupIntent(app_url="https://new.example.com", channel="stable")
    )
    assert values_step.probe(other) is False  # another app URL: render again
    with pytest.raises(StepFailed) as caught:
        apply.desired(other)
    assert caught.value.next_step.startswith("submit setup again")


# -- apply: generated secrets are created once -------------------------------------------


def test_generated_secret_is_created_once_and_kept(tmp_path: Path) -> None:
    kube = FakeKube()
    ctx, _ = context(tmp_path, kube=kube)
    apply._ensure_generated_secret(ctx)
    first = manifests.secret_values(kube.get("secrets", SECRET_NAME, "msp"))
    assert set(first) == set(GENERATED_SECRET_KEYS)
    apply._ensure_generated_secret(ctx)
    assert manifests.secret_values(kube.get("secrets", SECRET_NAME, "msp")) == first
    # A key added by a newer appliance is generated; the existing ones stay as they are.
    secret = kube.objects[("secrets", "msp", SECRET_NAME)]
    del secret["data"]["crypto-key"]
    apply._ensure_generated_secret(ctx)
    now = manifests.secret_values(kube.get("secrets", SECRET_NAME, "msp"))
    assert now["postgres-password"] == first["postgres-password"]
    assert now["crypto-key"]
    assert now["crypto-key"] != first["crypto-key"]


# -- reconcile ---------------------------------------------------------------------------


DIGEST = "sha256:" + "c" * 64


@pytest.mark.parametrize(
    ("revision", "matches"),
    [
        (DIGEST, True),
        (f"latest@{DIGEST}", True),
        ("sha256:" + "d" * 64, False),
        (None, False),
        ("", False),
    ],
)
def test_revision_matching(revision: str | None, matches: bool) -> None:
    assert reconcile.revision_matches(revision, DIGEST) is matches


# -- structure ---------------------------------------------------------------------------


def test_steps_never_import_each_other() -> None:
    """Each step depends on shared modules only (context, blockers, resolved, and the rest
    of host_service), never on another step."""
    import ast

    import host_service.steps as package
    from host_service.state import STEPS

    step_modules = {f"host_service.steps.{step.value}" for step in STEPS}
    directory = Path(package.__file__).parent
    found = []
    for step in STEPS:
        tree = ast.parse((directory / f"{step.value}.py").read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            found += [(step.value, n) for n in names if n in step_modules]
    assert found == []
