"""The service over real HTTP: full bootstrap to "reconciled" against the real registry and the
real kubectl driving the API stand-in, with systemd and k3s doubles that record their calls."""

from __future__ import annotations

from typing import Any

from tests.fixtures.host_service import (
    InProcessService,
    PublishedRelease,
    setup_body,
)
from tests.fixtures.kube_api import KubeApi


def test_full_bootstrap_reaches_reconciled(
    start_service: Any, kube_api: KubeApi, published_release: PublishedRelease
) -> None:
    kube_api.cluster.helm_releases = ("db", "alga-core")
    running: InProcessService = start_service()
    client = running.logged_in()
    response = client.post("/api/setup", setup_body())
    assert response.status_code == 202, response.text
    status = client.wait_phase("reconciled", "blocked", timeout=120)
    assert status["phase"] == "reconciled", status["blocker"]
