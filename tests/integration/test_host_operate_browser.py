"""The status and workloads pages in headless Chromium: log in, every layer from the API
stand-in on the status page, open workloads, a pod that starts crash-looping turns red without
a reload; no page scrolls sideways at 390 px; screenshots at 1280 and 390 px are kept; and
without JavaScript the pages still show everything, with a Refresh link."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_module, require_tool
from tests.fixtures.host_service import Appliance, InProcessService, setup_body
from tests.fixtures.kube_api import KubeApi
from tests.fixtures.pods import pod, with_state
from tests.integration.test_host_browser import CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("published_release")]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WIDTHS = {"desktop": 1280, "phone": 390}


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """Screenshots land here (``$ISOBUILD_TEST_ARTIFACTS/operate`` or test-artifacts/operate)."""
    explicit = os.environ.get("ISOBUILD_TEST_ARTIFACTS")
    path = Path(explicit) / "operate" if explicit else PROJECT_ROOT / "test-artifacts" / "operate"
    path.mkdir(parents=True, exist_ok=True)
    print(f"screenshots of the status and workloads pages: {path}")
    return path


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium = require_tool("chromium")
    sync_api = require_module("playwright.sync_api", "playwright")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: Any, *, javascript: bool = True) -> Any:
    context = browser.new_context(java_script_enabled=javascript)
    page = context.new_page()
    page.set_default_timeout(60_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    page.problems = problems
    return page


def log_in(page: Any, running: InProcessService) -> None:
    page.goto(running.url + "/login")
    page.fill("#token", running.appliance.token())
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/status")


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{page.url} is {width[0]} px wide in a {width[1]} px window"


def shoot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def reconciled(appliance: Appliance, start_service: Any, kube_api: KubeApi) -> InProcessService:
    appliance.set_timeouts(status_poll=0.5)
    cluster = kube_api.cluster
    cluster.helm_releases = ("db", "redis", "pgbouncer", "alga-core")
    cluster.workload_pods = True
    running: InProcessService = start_service()
    client = running.logged_in()
    assert client.post("/api/setup", setup_body()).status_code == 202
    assert client.wait_phase("reconciled", "blocked", timeout=120)["phase"] == "reconciled"
    return running


def test_status_and_workloads_live_at_desktop_and_phone_width(
    browser: Any, appliance: Appliance, start_service: Any, kube_api: KubeApi, artifacts: Path
) -> None:
    cluster = kube_api.cluster
    running = reconciled(appliance, start_service, kube_api)
    cluster.put(pod("db-0", "pending-unschedulable", workload="db", owner_kind="StatefulSet"))
    worker = cluster.put(pod("email-service-7f9-q2w3e", workload="email-service"))
    cluster.put(pod("temporal-migrate-1-zx8", "completed", workload="temporal", owner_kind="Job"))

    page = open_page(browser)
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})
    log_in(page, running)
    page.evaluate("window.__sameDocument = true")
    for name in ("host", "k3s", "flux", "helm", "workloads"):
        page.wait_for_selector(f"#layer-{name}")
    page.wait_for_selector("#layer-helm[data-health=ok]")
    page.wait_for_selector("#layer-k3s[data-health=ok]")
    assert "Node alga-appliance: Ready" in page.inner_text("#layer-k3s")
    assert "4 of 4 releases Ready" in page.inner_text("#layer-helm")
    headline = page.inner_text("#headline")
    assert headline in ("Running normally", "Applying the release", "Running, with problems")
    assert "reconciled" not in page.inner_text("#summary")  # words, not phase names
    assert page.get_attribute("#bootstrap-progress", "data-done") == "9"
    assert page.evaluate("window.__sameDocument") is True
    shoot(page, artifacts, "status-1280")

    page.click("nav a[href='/workloads']")
    page.wait_for_url("**/workloads")
    page.evaluate("window.__sameDocument = true")
    page.wait_for_selector("#pod-msp-email-service-7f9-q2w3e[data-status=Running]")
    assert "Unschedulable" in page.inner_text("#pod-msp-db-0")
    assert "0/1 nodes are available" in page.inner_text("#pod-msp-db-0")
    assert page.get_attribute("#wl-temporal", "data-health") == "done"

    # The pod starts crash-looping: the open page shows it at its next refresh.
    cluster.put(with_state(worker, "crashloop", restarts=3))
    row = "#pod-msp-email-service-7f9-q2w3e"
    page.wait_for_selector(f"{row}[data-status=CrashLoopBackOff]")
    assert page.evaluate("window.__sameDocument") is True  # no reload
    assert page.get_attribute("#wl-email-service", "data-health") == "bad"
    assert "last: Error (exit 1)" in page.inner_text(row)
    logs = page.get_attribute(f"{row} a.logs-previous", "href")
    assert logs == "/logs?namespace=msp&pod=email-service-7f9-q2w3e&container=app&previous=1"
    shoot(page, artifacts, "workloads-1280")

    page.set_viewport_size({"width": WIDTHS["phone"], "height": 844})
    for path, name in (("/workloads", "workloads"), ("/status", "status"), ("/setup", "setup"),
                       ("/update", "update")):  # fmt: skip
        page.goto(running.url + path)
        page.wait_for_selector("main")
        no_sideways_scroll(page)
        if name in ("status", "workloads"):
            shoot(page, artifacts, f"{name}-390")
    assert page.problems == []  # no script errors, no CSP violations


def test_without_javascript_the_pages_show_everything_and_a_refresh_link(
    browser: Any, appliance: Appliance, start_service: Any, kube_api: KubeApi
) -> None:
    running = reconciled(appliance, start_service, kube_api)
    kube_api.cluster.put(pod("coredns-6799fbcd5-abcde", namespace="kube-system"))
    page = open_page(browser, javascript=False)
    log_in(page, running)
    page.wait_for_selector("#layer-helm")
    running.service.monitor.pollers["helm"].wait_cycles(2, 30)
    page.click("#refresh")
    page.wait_for_selector("#layer-helm[data-health=ok]")
    page.goto(running.url + "/workloads?all=1")
    assert page.is_checked("#all-namespaces")
    assert page.inner_text("h1") == "Workloads in every namespace"
    page.wait_for_selector("#wl-alga-core")
    page.select_option("#namespace", "kube-system")
    page.uncheck("#all-namespaces")
    page.click("#show-namespace")
    page.wait_for_url("**/workloads?namespace=kube-system")
    assert "in namespace kube-system" in page.inner_text("h1")
    page.goto(running.url + "/workloads?namespace=Not_A_Namespace")
    assert "invalid namespace" in page.inner_text("#workloads-error")
    assert [p for p in page.problems if "status of 400" not in p] == []  # that page is a 400
