"""flux_check's pure parts: origin paths, schemas for the bootstrap kinds, references, policy."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from isobuild.release.flux_check import (
    BuiltObject,
    Overlay,
    SchemaChecker,
    _has_path,
    _origin_path,
    policy_problems,
    reference_problems,
    source_policy_problems,
)

DIGEST = "sha256:" + "c" * 64

# What the host service applies to point Flux at a release's config bundle (docs/release.md).
OCI_REPOSITORY: dict[str, Any] = {
    "apiVersion": "source.toolkit.fluxcd.io/v1",
    "kind": "OCIRepository",
    "metadata": {"name": "alga-appliance-config", "namespace": "flux-system"},
    "spec": {
        "url": "oci://ghcr.io/nine-minds/alga-appliance-config",
        "ref": {"digest": DIGEST},
        "interval": "10m",
        "layerSelector": {
            "mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip",
            "operation": "extract",
        },
    },
}
KUSTOMIZATION: dict[str, Any] = {
    "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
    "kind": "Kustomization",
    "metadata": {"name": "alga-appliance", "namespace": "flux-system"},
    "spec": {
        "interval": "10m",
        "retryInterval": "2m",
        "timeout": "30m",
        "path": "./profiles/single-node",
        "prune": True,
        "wait": True,
        "sourceRef": {"kind": "OCIRepository", "name": "alga-appliance-config"},
    },
}


def _obj(document: dict[str, Any], origin: str = "base/x.yaml") -> BuiltObject:
    return BuiltObject(document, origin)


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _messages(problems: list[Any]) -> list[str]:
    return [str(p) for p in problems]


@pytest.fixture(scope="module")
def schemas(flux_schemas: SchemaChecker) -> SchemaChecker:
    """The CRD schemas of the payload's Flux install.yaml (tests/fixtures/flux_crds.py)."""
    return flux_schemas


@pytest.mark.parametrize(
    ("origin", "overlay", "expected"),
    [
        ("path: ../../base/releases/db.yaml\n", "profiles/single-node", "base/releases/db.yaml"),
        ("path: namespaces.yaml\n", "base", "base/namespaces.yaml"),
        ({"configuredIn": "kustomization.yaml"}, "base", "base/kustomization.yaml"),
        ("nonsense", "base", None),
    ],
)
def test_origin_path(origin: Any, overlay: str, expected: str | None) -> None:
    assert _origin_path(origin, overlay) == expected


def test_has_path() -> None:
    document = {"spec": {"valuesFrom": [{"name": "x"}], "timeout": "1m"}}
    assert _has_path(document, "spec.valuesFrom[0].name")
    assert _has_path(document, "spec.timeout")
    assert not _has_path(document, "spec.valuesFrom[1].name")
    assert not _has_path(document, "spec.interval")


def test_bootstrap_objects_are_valid(schemas: SchemaChecker) -> None:
    for document in (OCI_REPOSITORY, KUSTOMIZATION):
        assert schemas.problems(_obj(document), "bootstrap.yaml") == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["spec"]["ref"].update(digest="sha256:abc"),
            "bootstrap.yaml: OCIRepository flux-system/alga-appliance-config: spec.ref.digest: "
            "expected a digest sha256:<64 hex>",
        ),
        (
            lambda d: d["spec"].update(url="oci://ghcr.io/nine-minds/alga-appliance-config:1.0"),
            "bootstrap.yaml: OCIRepository flux-system/alga-appliance-config: spec.url: "
            "expected oci://host/repository without tag or digest",
        ),
        (
            lambda d: d["spec"]["layerSelector"].update(operation="unpack"),
            "bootstrap.yaml: OCIRepository flux-system/alga-appliance-config: "
            "spec.layerSelector.operation: expected one of 'extract', 'copy'",
        ),
        (
            lambda d: d.update(apiVersion="source.toolkit.fluxcd.io/v9"),
            "bootstrap.yaml: OCIRepository flux-system/alga-appliance-config: apiVersion: "
            "expected 'source.toolkit.fluxcd.io/v1' or 'source.toolkit.fluxcd.io/v1beta2', "
            "got 'source.toolkit.fluxcd.io/v9'",
        ),
        (
            # The CRD's own pattern: a source's timeout has no hours (issue 12: the
            # hand-written schema accepted it, the API server refuses it).
            lambda d: d["spec"].update(timeout="1h"),
            "bootstrap.yaml: OCIRepository flux-system/alga-appliance-config: spec.timeout: "
            "expected a string matching ^([0-9]+(\\.[0-9]+)?(ms|s|m))+$, got '1h'",
        ),
        (
            lambda d: d["spec"].update(verison="1"),
            "bootstrap.yaml: OCIRepository flux-system/alga-appliance-config: spec.verison: "
            "unknown key",
        ),
    ],
)
def test_oci_repository_mistakes(schemas: SchemaChecker, edit: Any, expected: str) -> None:
    document = copy.deepcopy(OCI_REPOSITORY)
    edit(document)
    obj = _obj(document)
    problems = _messages(schemas.problems(obj, "bootstrap.yaml"))
    problems += _messages(source_policy_problems(obj, "bootstrap.yaml"))
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["spec"].pop("prune"),
            "spec.prune: required key is missing",
        ),
        (
            lambda d: d["spec"].update(path="profiles/single-node"),
            "spec.path: expected a path like ./profiles/single-node",
        ),
        (
            lambda d: d["spec"].update(healthcheck=[]),
            "spec.healthcheck: unknown key (did you mean 'healthChecks'?)",
        ),
        (
            lambda d: d["spec"]["sourceRef"].update(kind="HelmRepository"),
            "spec.sourceRef.kind: expected one of 'OCIRepository', 'GitRepository', 'Bucket'",
        ),
    ],
)
def test_kustomization_mistakes(schemas: SchemaChecker, edit: Any, expected: str) -> None:
    document = copy.deepcopy(KUSTOMIZATION)
    edit(document)
    obj = _obj(document)
    problems = _messages(schemas.problems(obj, "bootstrap.yaml"))
    problems += _messages(source_policy_problems(obj, "bootstrap.yaml"))
    wanted = f"bootstrap.yaml: Kustomization flux-system/alga-appliance: {expected}"
    assert any(p.startswith(wanted) for p in problems), problems


def test_bootstrap_references() -> None:
    overlay = Overlay(
        "bootstrap",
        [
            _obj(_namespace("flux-system")),
            _obj(OCI_REPOSITORY, "bootstrap/source.yaml"),
            _obj(KUSTOMIZATION, "bootstrap/kustomization.yaml"),
        ],
    )
    assert reference_problems(overlay) == []
    broken = copy.deepcopy(KUSTOMIZATION)
    broken["spec"]["sourceRef"]["name"] = "alga-config"
    broken["spec"]["postBuild"] = {"substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]}
    overlay.objects[2] = _obj(broken, "bootstrap/kustomization.yaml")
    assert _messages(reference_problems(overlay)) == [
        "bootstrap/kustomization.yaml: Kustomization flux-system/alga-appliance: "
        "spec.sourceRef: OCIRepository flux-system/alga-config does not exist",
        "bootstrap/kustomization.yaml: Kustomization flux-system/alga-appliance: "
        "spec.postBuild.substituteFrom[0].name: ConfigMap flux-system/vars does not exist",
    ]


def _release(name: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "timeout": "5m",
        "install": {"remediation": {"retries": 1}},
        "upgrade": {"remediation": {"retries": 0}},
        "valuesFrom": [{"kind": "ConfigMap", "name": f"alga-values-{name}"}],
    }
    base.update(spec)
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": "alga-system"},
        "spec": base,
    }


def test_policy_requires_bounded_remediation_and_own_values() -> None:
    overlay = Overlay(
        "base",
        [
            _obj(_release("db"), "base/db.yaml"),
            _obj(_release("redis", install={}, timeout=None), "base/redis.yaml"),
            _obj(
                _release("pgbouncer", valuesFrom=[{"kind": "ConfigMap", "name": "alga-values-db"}]),
                "base/pgbouncer.yaml",
            ),
        ],
    )
    del overlay.objects[1].document["spec"]["timeout"]  # type: ignore[attr-defined]
    assert _messages(policy_problems(overlay)) == [
        "base/redis.yaml: HelmRelease alga-system/redis: spec.install.remediation.retries: "
        "must be set (a number >= 0)",
        "base/redis.yaml: HelmRelease alga-system/redis: spec.timeout: must be set: it bounds "
        "the Helm readiness wait",
        "base/pgbouncer.yaml: HelmRelease alga-system/pgbouncer: spec.valuesFrom: must read "
        "ConfigMap alga-values-pgbouncer (key values.yaml)",
    ]


def test_external_values_configmaps_are_known_but_others_dangle() -> None:
    release = _release("db")
    release["spec"]["valuesFrom"].append({"kind": "Secret", "name": "db-credentials"})
    overlay = Overlay("base", [_obj(_namespace("alga-system")), _obj(release, "base/db.yaml")])
    assert _messages(reference_problems(overlay)) == [
        "base/db.yaml: HelmRelease alga-system/db: spec.valuesFrom[1].name: "
        "Secret alga-system/db-credentials does not exist"
    ]
