"""The pages in headless Chromium (system browser, no download): log in with the token, submit
setup, watch the steps progress live, see a blocker, retry, reach "reconciled"; then see an
update available, view its diff, run it and watch it, and download a support bundle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_module, require_tool
from tests.fixtures.host_service import (
    Appliance,
    ConnectProxy,
    InProcessService,
    publish_release,
    setup_body,
)
from tests.fixtures.kube_api import KubeApi
from tests.fixtures.support import bundle_layers, members
from tests.fixtures.updates import APP_URL, newer, own_repository

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    chromium = require_tool("chromium")
    sync_api = require_module("playwright.sync_api", "playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(60_000)
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

        def console(msg: Any) -> None:
            # The wrong token (401) and the bad URL (400) are answered with an error status
            # on purpose; anything else logged as an error is a problem.
            expected = "status of 401" in msg.text or "status of 400" in msg.text
            if msg.type == "error" and not expected:
                problems.append(f"console {msg.type}: {msg.text}")

        page.on("console", console)
        page.problems = problems
        try:
            yield page
        finally:
            page.screenshot(path=str(tmp_path / "last-page.png"), full_page=True)
            context.close()
            browser.close()


@pytest.mark.usefixtures("published_release")
def test_login_setup_progress_blocker_retry(
    page: Any, start_service: Any, kube_api: KubeApi
) -> None:
    cluster = kube_api.cluster
    cluster.helm_releases = ("db", "alga-core")
    cluster.helm_release_delay = 1.0
    cluster.deny(
        "apply",
        "configmaps",
        name="alga-release-selection",
        times=1,
        message='admission webhook "quota.example" denied the request',
    )
    running: InProcessService = start_service()

    page.goto(running.url + "/status")
    assert page.url.endswith("/login")  # no session: sent to the login page
    page.fill("#token", "WRONG-TOKEN")
    page.click("#login-form button[type=submit]")
    assert "wrong setup token" in page.inner_text("#login-error")
    page.fill("#token", running.appliance.token().lower().replace("-", " "))
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/setup")

    page.fill("#app_url", "psa.example.com")
    page.click("#setup-form button[type=submit]")
    assert "https" in page.inner_text("[data-field=app_url]")
    page.fill("#app_url", "https://psa.example.com")
    page.fill("#channel", "stable")
    page.click("#setup-form button[type=submit]")
    page.wait_for_url("**/status")
    page.evaluate("window.__sameDocument = true")  # lost if the page reloads

    # Live progress: steps turn done one by one, then the blocker appears, all without reload.
    page.wait_for_selector("#step-k3s[data-status=done]")
    page.wait_for_selector("#summary[data-phase=blocked]")
    assert page.is_visible("#blocker")
    assert page.inner_text("#blocker-step") == "Apply configuration"  # words, not step ids
    assert page.get_attribute("#blocker", "data-step") == "apply"
    assert "applying the appliance configuration failed" in page.inner_text("#blocker-message")
    assert page.inner_text("#blocker-cause")
    assert page.inner_text("#blocker-next")
    assert "quota.example" in page.inner_text("#blocker-output")
    assert page.get_attribute("#step-apply", "data-status") == "blocked"
    assert page.get_attribute("#step-source", "data-status") == "pending"
    assert page.evaluate("window.__sameDocument") is True

    page.click("#retry")
    page.wait_for_url("**/status")
    page.evaluate("window.__sameDocument = true")
    page.wait_for_selector("#step-reconcile[data-status=running]")
    page.wait_for_selector("#summary[data-phase=reconciled]")
    assert page.evaluate("window.__sameDocument") is True
    for step in (
        "preflight",
        "k3s",
        "storage",
        "flux",
        "release",
        "values",
        "apply",
        "source",
        "reconcile",
    ):
        assert page.get_attribute(f"#step-{step}", "data-status") == "done", step
    assert page.is_hidden("#blocker")
    assert page.inner_text("#app-link") == "https://psa.example.com"
    assert "HelmRelease alga-core Ready" in page.inner_text("#step-reconcile")
    assert page.problems == []  # no script errors, no CSP violations


def test_a_proxy_login_blocker_is_readable_in_a_narrow_window(
    page: Any, start_service: Any, connect_proxy: ConnectProxy
) -> None:
    """The 407 blocker on a console-sized window: the advice is there and no line of the
    output box runs off to the right (the reason is at the end of a long line)."""
    running: InProcessService = start_service()
    client = running.logged_in()
    proxy = connect_proxy.url()  # no login: the proxy answers 407
    assert client.post("/api/setup", setup_body(proxy=proxy)).status_code == 202
    assert client.wait_phase("blocked", "reconciled", timeout=60)["phase"] == "blocked"

    page.set_viewport_size({"width": 480, "height": 800})
    page.goto(running.url + "/login")
    page.fill("#token", running.appliance.token())
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/status")  # setup was submitted: login leads to the status
    page.wait_for_selector("#summary[data-phase=blocked]")
    assert "requires authentication (HTTP 407)" in page.inner_text("#blocker-message")
    assert "set user:password in the proxy URL" in page.inner_text("#blocker-next")
    output = page.locator("#blocker-output")
    assert "answered 407 Proxy Authentication Required" in output.inner_text()
    overflow = output.evaluate("box => box.scrollWidth - box.clientWidth")
    assert overflow <= 0, f"the output box scrolls sideways by {overflow} px"
    assert page.problems == []


def test_update_available_diff_run_watch_and_support_bundle(
    page: Any, appliance: Appliance, start_service: Any, kube_api: KubeApi, registry: Any
) -> None:
    """After the install: the check shows an update, the diff is viewed, the update is started
    and watched live step by step, and a support bundle downloads with one click."""
    repository = own_repository(appliance)
    publish_release(registry, "3.0.0", "stable", repository=repository)
    cluster = kube_api.cluster
    cluster.helm_releases = ("db", "alga-core")
    running: InProcessService = start_service()
    api = running.logged_in()
    assert api.post("/api/setup", setup_body(app_url=APP_URL)).status_code == 202
    assert api.wait_phase("reconciled", "blocked", timeout=120)["phase"] == "reconciled"
    publish_release(registry, "3.1.0", "stable", repository=repository, change=newer)

    page.goto(running.url + "/login")
    page.fill("#token", running.appliance.token())
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/status")
    page.click("nav a[href='/update']")
    page.wait_for_url("**/update")
    assert page.inner_text("#selected-version") == "3.0.0"
    page.click("#check-now")
    page.wait_for_selector("#update-available")
    assert page.inner_text("#update-available") == "Update available: 3.1.0"
    page.click("#view-changes")
    page.wait_for_selector("#diff")
    assert page.inner_text("#preview-version") == "3.1.0"
    assert page.inner_text("#preview > p.muted").startswith("Update on the followed channel · ")
    assert page.get_attribute("[data-name='charts/alga-core']", "class") == "changed"
    assert page.get_attribute("[data-name='charts/db']", "class") == "same"
    assert "1.1.0" in page.inner_text("[data-name='charts/alga-core']")
    changed_file = "[data-name='alga-core.single-node.yaml']"
    assert page.get_attribute(changed_file, "data-changed") == "yes"
    assert "workers: 4" in page.inner_text(changed_file)

    # Watch it: alga-core's upgrade hangs until the test lets it finish.
    cluster.stuck_helm_releases = {"alga-core"}
    page.click("#start-update")
    page.wait_for_url("**/update")
    page.wait_for_selector("#run[data-phase=running]")
    page.evaluate("window.__sameDocument = true")
    page.wait_for_selector("#ustep-source[data-status=done]")
    page.wait_for_selector("#ustep-reconcile[data-status=running]")
    page.wait_for_selector("#ustep-reconcile li:has-text('HelmRelease db Ready')")
    # Worded as the status page words its steps, with the same icons.
    assert page.inner_text("#ustep-source .state").strip() == "Done"
    assert page.inner_text("#ustep-reconcile .state").strip() == "In progress"
    assert page.get_attribute("#ustep-reconcile .state .icon", "aria-label") == "In progress"
    assert page.inner_text("#run-phase") == "In progress"
    assert page.evaluate("window.__sameDocument") is True  # progress arrived without a reload
    cluster.stuck_helm_releases = set()
    page.wait_for_selector("#run[data-phase=succeeded]")
    assert page.inner_text("#run-phase") == "Done"
    assert page.inner_text("#selected-version") == "3.1.0"
    assert page.get_attribute("#history tbody tr:first-child", "data-outcome") == "succeeded"
    assert "3.1.0" in page.inner_text("#history tbody tr:first-child")
    assert page.inner_text("#history tbody tr:first-child td:last-child") == "Done"

    page.click("nav a[href='/status']")
    page.wait_for_url("**/status")
    assert page.inner_text("#app-link") == APP_URL  # the app URL survived the update
    with page.expect_download() as info:
        page.click("#support-bundle")
    bundle = Path(info.value.path())
    assert bundle.read_bytes()[:2] == b"\x1f\x8b"
    files = members(bundle)
    assert "manifest.json" in files
    assert "helm/helmreleases.json" in files
    assert running.appliance.token().encode() not in bundle_layers(bundle)["<tar stream>"]
    assert page.problems == []
