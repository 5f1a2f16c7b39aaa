"""The Flux step against FakeKube: what install.yaml holds, what readiness waits for (CRDs
Established, each controller Available with the pinned images), reports and failures."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from host_service.settings import Timeouts
from host_service.steps import flux
from host_service.steps.context import StepContext, StepFailed
from tests.fixtures.host_service import FakeKube
from tests.unit.test_host_steps import context

CRDS = "customresourcedefinitions.apiextensions.k8s.io"
KUSTOMIZATIONS_CRD = "kustomizations.kustomize.toolkit.fluxcd.io"
SOURCES_CRD = "ocirepositories.source.toolkit.fluxcd.io"


def deployment(name: str, image: str, namespace: str | None = "flux-system") -> dict[str, Any]:
    meta = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {"template": {"spec": {"containers": [{"name": "manager", "image": image}]}}},
    }


def crd(name: str) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name}}  # fmt: skip


def install_yaml() -> str:
    docs: list[Any] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}},
        crd(SOURCES_CRD),
        crd(KUSTOMIZATIONS_CRD),
        deployment("source-controller", "ghcr.io/fluxcd/source-controller:v1"),
        deployment("kustomize-controller", "ghcr.io/fluxcd/kustomize-controller:v1"),
        None,
    ]
    return "---\n".join(yaml.safe_dump(d) for d in docs)


class Flux(FakeKube):
    """Controllers that come up: after ``after`` readiness checks, every CRD is Established
    and every Deployment Available."""

    def __init__(self, after: int | None = 1, *, controllers_after: int = 0) -> None:
        super().__init__()
        self.after = after
        self.controllers_after = controllers_after  # further checks until they are Available
        self.field_managers: list[str] = []

    def apply_file(self, path: Path, *, field_manager: str) -> None:
        self.field_managers.append(field_manager)
        super().apply_file(path, field_manager=field_manager)

    def list(
        self, resource: str, namespace: str | None = None, *, selector: str | None = None
    ) -> list[dict[str, Any]]:
        if resource == CRDS and self.after is not None:
            self.after -= 1
            if self.after < 0:
                for (_kind, _, _), obj in self.objects.items():
                    condition = {"CustomResourceDefinition": "Established",
                                 "Deployment": "Available"}.get(obj["kind"])  # fmt: skip
                    if condition == "Available" and self.after + self.controllers_after >= 0:
                        continue
                    if condition:
                        obj["status"] = {"conditions": [{"type": condition, "status": "True"}]}
        return super().list(resource, namespace, selector=selector)


def flux_context(
    tmp_path: Path, kube: FakeKube, *, timeout: float = 60.0
) -> tuple[StepContext, list[tuple[str, str | None]]]:
    ctx, reports = context(tmp_path, kube=kube)
    settings = dataclasses.replace(
        ctx.settings, timeouts=Timeouts(poll_interval=0.0, flux_ready=timeout)
    )
    settings.paths.flux_install.parent.mkdir(parents=True, exist_ok=True)
    settings.paths.flux_install.write_text(install_yaml())
    return dataclasses.replace(ctx, settings=settings), reports


def test_read_install_finds_crds_and_controllers_with_their_images(tmp_path: Path) -> None:
    path = tmp_path / "install.yaml"
    extra = [deployment("x", "img", None), "a stray scalar"]
    path.write_text(install_yaml() + "".join("---\n" + yaml.safe_dump(d) for d in extra))
    install = flux.read_install(path)
    assert install.crds == (SOURCES_CRD, KUSTOMIZATIONS_CRD)
    assert install.deployments == {
        ("flux-system", "source-controller"): ("ghcr.io/fluxcd/source-controller:v1",),
        ("flux-system", "kustomize-controller"): ("ghcr.io/fluxcd/kustomize-controller:v1",),
        ("default", "x"): ("img",),
    }


@pytest.mark.parametrize(
    ("text", "message", "cause", "next_step"),
    [
        (None, "Flux install manifests are missing from the payload ({path})",
         "the installation did not copy the appliance payload completely",
         "reinstall from the appliance ISO, then retry"),
        ("a: [", "{path} is not valid YAML", "the payload file is damaged",
         "reinstall from the appliance ISO, then retry"),
        (yaml.safe_dump(crd("x")),
         "{path} does not look like Flux's install.yaml (no CRDs or controllers)",
         "the payload carries the wrong file",
         "rebuild the ISO with the pinned Flux install.yaml, then retry"),
        (yaml.safe_dump(deployment("d", "i")),
         "{path} does not look like Flux's install.yaml (no CRDs or controllers)",
         "the payload carries the wrong file",
         "rebuild the ISO with the pinned Flux install.yaml, then retry"),
    ],
)  # fmt: skip
def test_an_unusable_install_yaml_says_why(
    tmp_path: Path, text: str | None, message: str, cause: str, next_step: str
) -> None:
    path = tmp_path / "install.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(StepFailed) as caught:
        flux.read_install(path)
    failed = caught.value
    assert (str(failed), failed.cause, failed.next_step) == (
        message.format(path=path), cause, next_step)  # fmt: skip
    if text == "a: [":
        assert "expected" in failed.output or "end of stream" in failed.output


def test_run_applies_then_reports_each_piece_once_as_it_becomes_ready(tmp_path: Path) -> None:
    kube = Flux(after=2)
    ctx, reports = flux_context(tmp_path, kube)
    assert flux.probe(ctx) is False
    flux.run(ctx)
    path = ctx.settings.paths.flux_install
    assert ("apply_file", str(path)) in kube.calls
    assert reports == [
        ("applying install.yaml (2 CRDs, 2 controllers)", None),
        ("Flux manifests applied", "install.yaml applied server-side"),
        (
            f"waiting for CRD {SOURCES_CRD}, CRD {KUSTOMIZATIONS_CRD}, "
            "flux-system/source-controller, flux-system/kustomize-controller",
            None,
        ),
        (f"CRD {SOURCES_CRD} ready", f"CRD {SOURCES_CRD} ready"),
        (f"CRD {KUSTOMIZATIONS_CRD} ready", f"CRD {KUSTOMIZATIONS_CRD} ready"),
        ("flux-system/source-controller ready", "flux-system/source-controller ready"),
        ("flux-system/kustomize-controller ready", "flux-system/kustomize-controller ready"),
    ]
    assert flux.probe(ctx) is True


def test_a_controller_running_other_images_is_not_ready(tmp_path: Path) -> None:
    kube = Flux(after=0)
    ctx, _reports = flux_context(tmp_path, kube)
    flux.run(ctx)
    key = ("deployments.apps", "flux-system", "source-controller")
    kube.objects[key]["spec"]["template"]["spec"]["containers"][0]["image"] = "old:v0"
    assert flux.probe(ctx) is False
    del kube.objects[key]
    assert flux.probe(ctx) is False


def test_waiting_lists_at_most_four_and_times_out_naming_them(tmp_path: Path) -> None:
    kube = Flux(after=None)  # never ready
    ctx, reports = flux_context(tmp_path, kube, timeout=0)
    text = install_yaml() + "---\n" + yaml.safe_dump(deployment("helm-controller", "h:v1"))
    ctx.settings.paths.flux_install.write_text(text)
    with pytest.raises(StepFailed) as caught:
        flux.run(ctx)
    failed = caught.value
    waiting = (
        f"waiting for CRD {SOURCES_CRD}, CRD {KUSTOMIZATIONS_CRD}, "
        "flux-system/source-controller, flux-system/kustomize-controller"
    )
    assert str(failed) == f"Flux did not become ready ({waiting})"
    assert failed.cause == (
        "a controller image is missing from the airgap images or a controller crashes"
    )
    assert failed.next_step == (
        "check `k3s kubectl -n flux-system get pods` and their logs, then retry"
    )
    assert reports[-1] == (waiting, None)


def test_a_failing_api_is_waited_out(tmp_path: Path) -> None:
    kube = Flux(after=None)
    kube.deny("list", CRDS, message="the server is busy")
    ctx, _reports = flux_context(tmp_path, kube, timeout=0)
    with pytest.raises(StepFailed) as caught:
        flux.run(ctx)
    error = "Error from server (Forbidden): the server is busy"
    assert str(caught.value) == f"Flux did not become ready (asking the API: {error})"
    assert flux.probe(ctx) is False


def test_a_rejected_apply_fails_the_step(tmp_path: Path) -> None:
    class Rejecting(FakeKube):
        def apply_file(self, path: Path, *, field_manager: str) -> None:
            raise self._error("Invalid", "CustomResourceDefinition is invalid", "apply")

    ctx, _ = flux_context(tmp_path, Rejecting())
    with pytest.raises(StepFailed) as caught:
        flux.run(ctx)
    failed = caught.value
    error = "Error from server (Invalid): CustomResourceDefinition is invalid"
    assert str(failed) == f"applying the Flux manifests failed: {error}"
    assert failed.cause == (
        "the API server rejected the manifests (version skew between Flux and k3s?)"
    )
    assert failed.next_step == "check the Flux and k3s versions pinned in the payload, then retry"
    assert failed.output == error


def test_waiting_for_lists_only_the_install_namespaces(tmp_path: Path) -> None:
    kube = Flux(after=0)
    ctx, _ = flux_context(tmp_path, kube)
    install = flux.read_install(ctx.settings.paths.flux_install)
    assert flux._waiting_for(ctx, install) == [
        f"CRD {SOURCES_CRD}",
        f"CRD {KUSTOMIZATIONS_CRD}",
        "flux-system/source-controller",
        "flux-system/kustomize-controller",
    ]
    lists = [c for c in kube.calls if c[0] == "list"]
    assert lists == [("list", CRDS, "", ""), ("list", "deployments.apps", "flux-system", "")]


def test_crds_ready_before_the_controllers_are_reported_once(tmp_path: Path) -> None:
    kube = Flux(after=0, controllers_after=3)
    ctx, reports = flux_context(tmp_path, kube)
    flux.run(ctx)
    messages = [m for m, _ in reports]
    assert messages.count(f"CRD {SOURCES_CRD} ready") == 1
    assert messages.count("flux-system/source-controller ready") == 1
    assert messages.index(f"CRD {SOURCES_CRD} ready") < messages.index(
        "waiting for flux-system/source-controller, flux-system/kustomize-controller"
    )
    assert kube.field_managers == ["alga-appliance"]


def test_a_crd_listed_without_metadata_is_no_crd_of_ours(tmp_path: Path) -> None:
    kube = Flux(after=0)
    ctx, _ = flux_context(tmp_path, kube)
    flux.run(ctx)
    kube.objects[(CRDS, "", "odd")] = {"kind": "CustomResourceDefinition"}
    assert flux.probe(ctx) is True


@pytest.mark.usefixtures("ascii_locale")
def test_install_yaml_is_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    path = tmp_path / "install.yaml"
    path.write_bytes("# Flux exported by José\n".encode() + install_yaml().encode())
    assert flux.read_install(path).crds == (SOURCES_CRD, KUSTOMIZATIONS_CRD)
