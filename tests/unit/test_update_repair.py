"""``repair-release`` over in-memory fakes: whatever stops it (a blocker, an error from the
API server, an interrupt), its history entry ends with that outcome, never "running"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from host_service.intent import IntentStore
from host_service.kube import KubeError
from host_service.manifests import OCI_REPOSITORIES
from host_service.runtime import Runtime
from host_service.settings import Settings, default_settings
from host_service.steps import resolved
from host_service.steps.context import StepContext
from host_service.support.repair import repair_release
from host_service.update.manager import history_view
from host_service.update.store import History, UpdatePaths
from tests.fixtures.host_service import FakeHost, FakeKube, release_document
from tests.unit.test_host_worker import UnusedSystemd
from tests.unit.test_update import INTENT, FakeRegistry


class InterruptingKube(FakeKube):
    """A FakeKube whose ``patch`` of the source raises what a Ctrl-C raises mid-call."""

    def patch(self, resource: str, name: str, namespace: str | None, patch: Any) -> None:
        if resource == OCI_REPOSITORIES:
            raise KeyboardInterrupt
        super().patch(resource, name, namespace, patch)


def installed(tmp_path: Path, kube: FakeKube) -> tuple[Settings, Runtime]:
    settings = default_settings(tmp_path)
    settings.paths.state.mkdir(parents=True)
    registry = FakeRegistry()
    registry.publish(
        release_document("1.4.0", "stable", "ghcr.io/c", "sha256:" + "c" * 64), "stable"
    )
    IntentStore(settings.paths.intent_file).save(INTENT)
    ctx = StepContext(
        settings=settings, intent=INTENT, kube=kube, systemd=UnusedSystemd(),
        k3s=UnusedSystemd(), host=FakeHost(), registry=lambda: registry,  # type: ignore[arg-type]
        reporter=lambda m, d: None,
    )  # fmt: skip
    resolved.resolve(ctx)
    runtime = Runtime(
        kube=kube, systemd=UnusedSystemd(), k3s=UnusedSystemd(), host=FakeHost(),
        registry=lambda s, i: lambda: registry,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    return settings, runtime


def denied(kube: FakeKube) -> None:
    kube.deny("patch", OCI_REPOSITORIES, message="the API server is shutting down")


@pytest.mark.parametrize(
    ("make", "prepare", "raised", "message"),
    [
        (
            FakeKube,
            denied,
            KubeError,
            "Error from server (Forbidden): the API server is shutting down",
        ),
        (
            InterruptingKube,
            lambda kube: None,
            KeyboardInterrupt,
            "interrupted (KeyboardInterrupt) before it finished; run repair-release again",
        ),
    ],
    ids=["kube-error", "interrupt"],
)
def test_a_repair_stopped_by_any_exception_is_recorded_as_blocked(
    tmp_path: Path,
    make: Callable[[], FakeKube],
    prepare: Callable[[FakeKube], None],
    raised: type[BaseException],
    message: str,
) -> None:
    kube = make()
    settings, runtime = installed(tmp_path, kube)
    prepare(kube)
    said: list[str] = []
    clock = iter(float(n) for n in range(100, 200))
    with pytest.raises(raised):
        repair_release(
            settings, runtime, say=said.append, requested_by="cli (root)", clock=lambda: next(clock)
        )
    assert any("asking Flux to reconcile" in line for line in said)  # it got that far
    [entry] = History(UpdatePaths.of(settings.paths).history).entries()
    assert entry["kind"] == "repair"
    assert entry["outcome"] == "blocked"
    assert entry["message"] == message
    assert isinstance(entry["finished_at"], float)
    assert entry["finished_at"] > entry["requested_at"]
    assert history_view(entry)["outcome_text"] == "Stopped"
