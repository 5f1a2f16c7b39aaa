"""The log viewer in headless Chromium (system browser): live lines arrive, scrolling up
pauses following, counts new lines and loads older ones, scrolling down follows again; the
page fits a 390 px phone. Screenshots at 1280 px and 390 px are kept as test artifacts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import require_module, require_tool
from tests.fixtures.host_service import PROJECT, Appliance, InProcessService
from tests.fixtures.kube_api import KubeApi

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
POD = "alga-core-7c9d5b-x2x4q"
LOGS = "/logs?" + urlencode({"namespace": "msp", "pod": POD, "container": "app"})
ARTIFACTS = Path(os.environ.get("ISOBUILD_TEST_ARTIFACTS", PROJECT / "test-artifacts")) / "logs"


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    chromium = require_tool("chromium")
    sync_api = require_module("playwright.sync_api", "playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.set_default_timeout(30_000)
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on(
            "console",
            lambda msg: problems.append(msg.text) if msg.type == "error" else None,
        )
        page.problems = problems
        try:
            yield page
        finally:
            page.screenshot(path=str(tmp_path / "last-page.png"), full_page=True)
            context.close()
            browser.close()


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    """``full_page`` resizes the window for the shot: the log box (65vh) grows with it."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / name
    page.screenshot(path=str(target), full_page=full_page)
    print(f"screenshot: {target}")  # where the artifact is, for whoever runs it


def box(page: Any, script: str) -> Any:
    return page.eval_on_selector("#log-box", script)


def test_follow_pause_older_lines_resume_and_a_phone_width(
    page: Any, start_service: Any, kube_api: KubeApi, appliance: Appliance
) -> None:
    cluster = kube_api.cluster
    cluster.put({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": POD, "namespace": "msp"},
                 "spec": {"containers": [{"name": "app", "image": "x"}]},
                 "status": {"phase": "Running", "pinned": True}})  # fmt: skip
    kubeconfig = appliance.settings().paths.kubeconfig
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    kubeconfig.write_text(kube_api.kubeconfig())
    kubeconfig.chmod(0o600)
    cluster.add_log("msp", POD, *(f"line {i} GET /api/tickets 200" for i in range(1500)))
    running: InProcessService = start_service()

    page.goto(running.url + LOGS)
    assert page.url.endswith("/login")
    page.fill("#token", running.appliance.token())
    page.click("#login-form button[type=submit]")
    page.wait_for_load_state()
    page.goto(running.url + LOGS)
    page.wait_for_selector("#logs[data-following='1']")
    assert page.locator("#log-lines .line").count() == 500  # the recent tail first
    assert page.inner_text("#log-lines .line >> nth=0").endswith("line 1000 GET /api/tickets 200")

    # live lines arrive at the bottom while following
    cluster.add_log("msp", POD, "live 1: worker connected", "live 2: job 42 done")
    # selectors, not wait_for_function: the page's CSP refuses the eval that polling needs
    page.wait_for_selector("#log-lines .line >> text=live 2: job 42 done")
    assert box(page, "b => b.scrollHeight - b.scrollTop - b.clientHeight") < 24
    screenshot(page, "logs-1280.png")

    # scrolling up pauses following and loads the older chunk above
    box(page, "b => { b.scrollTop = 0; }")
    page.wait_for_selector("#logs[data-following='0']")
    page.wait_for_selector("#logs[data-older='500']")
    assert "line 500 GET" in page.inner_text("#log-lines .line >> nth=0")
    assert box(page, "b => b.scrollTop") > 40  # the line being read stays in place
    cluster.add_log("msp", POD, *(f"paused {i}" for i in range(1, 5)))
    page.wait_for_selector("#new-lines[data-count='4']")
    assert page.is_visible("#new-lines")
    assert page.inner_text("#new-lines").startswith("4 new lines")
    assert "paused 1" not in page.inner_text("#log-lines")  # held back: the reader's place stays
    assert "Paused" in page.inner_text("#log-state")
    screenshot(page, "logs-1280-paused.png", full_page=False)  # the reader's place stays

    # back at the bottom: following resumes with the held lines
    box(page, "b => { b.scrollTop = b.scrollHeight; }")
    page.wait_for_selector("#logs[data-following='1']")
    assert page.inner_text("#log-lines .line >> nth=-1").endswith("paused 4")
    assert page.is_hidden("#new-lines")
    cluster.add_log("msp", POD, "after resume")
    page.wait_for_selector("#log-lines .line >> text=after resume")

    # the text filter and the timestamp switch act on what is loaded
    page.fill("#opt-filter", "paused")
    assert page.locator("#log-lines .line:visible").count() == 4
    page.fill("#opt-filter", "")
    page.uncheck("#opt-timestamps")
    assert page.locator("#log-lines time:visible").count() == 0
    page.check("#opt-timestamps")
    with page.expect_download() as download:
        page.click("#download-loaded")
    saved = Path(download.value.path()).read_text().splitlines()
    loaded = page.locator("#log-lines .line").all_inner_texts()
    assert len(saved) == len(loaded) == 1007  # 1,000 from the log, 7 live
    assert saved[-1] == loaded[-1].replace("\xa0", " ")
    assert saved[-1].endswith(" after resume")

    # the page keeps 5,000 lines: the far end goes, and the page says so
    cluster.add_log("msp", POD, *(f"bulk {i}" for i in range(5_000)))
    page.wait_for_selector("#log-lines .line >> text=bulk 4999")
    assert page.locator("#log-lines .line").count() == 5_000
    assert page.inner_text("#log-lines .line >> nth=0").endswith("bulk 0")
    note = page.inner_text("#log-note")
    assert "older lines left the view to keep the page fast (it keeps 5000)" in note

    # a phone: the page never scrolls sideways, long lines stay inside the log box
    cluster.add_log("msp", POD, "a-very-long-token-without-spaces-" * 20)
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_selector("#logs[data-following='1']")
    for wrap in (True, False):
        page.set_checked("#opt-wrap", wrap)
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"the page is {width[0]} px wide in a {width[1]} px window"
    page.set_checked("#opt-wrap", True)
    screenshot(page, "logs-390.png")
    assert page.problems == []  # no script errors, no CSP violations
