"""The update routes through the WSGI app, with the update manager over in-memory fakes: every
request field is checked before the manager or the candidate cache sees it (a digest that is a
path never reaches the disk), each error names its field, and damaged state files never turn
a view into a 500."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from host_service.app import App
from host_service.intent import IntentStore
from host_service.runtime import Runtime
from host_service.service import Service
from host_service.settings import Settings, default_settings
from host_service.state import Phase
from tests.fixtures.host_service import FakeHost, FakeKube, release_document
from tests.unit.test_host_app import Browser, login
from tests.unit.test_host_worker import Script, UnusedSystemd
from tests.unit.test_update import INTENT, FakeRegistry, resolved_by_bootstrap
from tests.waiting import wait_until

BAD_REFS = ("Not A Channel/../x", "../../etc", "stable\x00", "Stable")


@dataclass
class Site:
    settings: Settings
    service: Service
    browser: Browser
    csrf: str
    registry: FakeRegistry
    running: str

    def reconciled(self) -> None:
        """The (scripted) bootstrap finishes, as on an installed appliance."""
        body = {"app_url": INTENT.app_url, "channel": "stable"}
        assert self.browser.json("POST", "/api/setup", body, csrf=self.csrf).code == 202
        keeper = self.service.state_keeper
        seen = [keeper.snapshot()[0]]

        def pause(left: float) -> None:
            seen[0] = keeper.wait_for_change(seen[0], min(left, 1.0))[0]

        wait_until(lambda: keeper.state.phase is Phase.RECONCILED, 30, "the bootstrap", pause=pause)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings = default_settings(tmp_path)
    settings.paths.state.mkdir(parents=True)
    registry = FakeRegistry()
    running = resolved_by_bootstrap(settings, registry)
    runtime = Runtime(
        kube=FakeKube(), systemd=UnusedSystemd(), k3s=UnusedSystemd(), host=FakeHost(),
        registry=lambda s, i: lambda: registry,  # type: ignore[arg-type,return-value]
    )  # fmt: skip
    service = Service(settings, runtime, implementations=Script().implementations())
    service.start()
    browser = Browser(App(service))
    csrf = login(browser, service)
    yield Site(settings, service, browser, csrf, registry, running)
    service.stop()


def victims(site: Site) -> list[Path]:
    """Files outside the candidate cache that a digest naming a path would reach; each holds
    text that is not JSON (what the cache sets aside when it finds it in its own directory)."""
    outside = site.settings.paths.state / "release-selection-copy.json"
    elsewhere = site.settings.paths.state.parent / "elsewhere.json"
    for path in (outside, elsewhere):
        path.write_text("not json, and not the cache's\n")
    return [outside, elsewhere]


def digests_naming(paths: list[Path]) -> list[str]:
    """What a hostile query or form gives as the digest: paths to each victim (the cache adds
    ``.json``), absolute and relative to the cache, and one with a NUL byte."""
    absolute = [str(p.with_suffix("")) for p in paths]
    relative = ["../../release-selection-copy", "sha256:../../release-selection-copy"]
    return [*absolute, *relative, "sha256:" + "a" * 63 + "\x00"]


def test_the_preview_page_refuses_a_digest_that_is_not_one_and_touches_no_file(
    site: Site,
) -> None:
    before = victims(site)
    for digest in digests_naming(before):
        answer = site.browser.call("GET", f"/update/preview?ref=stable&digest={quote(digest)}")
        assert answer.code == 400, digest
        assert "digest: expected sha256:&lt;64 hex&gt;" in answer.text, digest
        assert 'id="preview"' not in answer.text
    for path in before:
        assert path.read_text() == "not json, and not the cache's\n"
    assert not list(site.settings.paths.state.parent.rglob("*.corrupt-*"))


def test_the_start_form_refuses_a_digest_that_is_not_one_and_touches_no_file(
    site: Site,
) -> None:
    site.reconciled()
    before = victims(site)
    for digest in digests_naming(before):
        fields = {"csrf": site.csrf, "ref": "stable", "manifest_digest": digest}
        answer = site.browser.form("/update/start", fields)
        assert answer.code == 400, digest
        assert "manifest_digest: expected sha256:&lt;64 hex&gt;" in answer.text, digest
    for path in before:
        assert path.read_text() == "not json, and not the cache's\n"
    assert not list(site.settings.paths.state.parent.rglob("*.corrupt-*"))
    assert site.service.updates.keeper.run is None


@pytest.mark.parametrize("ref", BAD_REFS)
def test_a_ref_that_is_no_channel_version_or_digest_is_a_400_naming_ref(
    site: Site, ref: str
) -> None:
    site.reconciled()
    newer = site.registry.publish(
        release_document("1.5.0", "stable", "ghcr.io/c", "sha256:" + "d" * 64), "stable"
    )
    browser, csrf = site.browser, site.csrf
    assert browser.json("POST", "/api/update/preview", {"ref": "stable"}, csrf=csrf).code == 200
    answer = browser.json("POST", "/api/update/preview", {"ref": ref}, csrf=csrf)
    assert answer.code == 400
    assert set(answer.json()["fields"]) == {"ref"}
    assert "a channel" in answer.json()["fields"]["ref"]
    body = {"ref": ref, "manifest_digest": newer}
    answer = browser.json("POST", "/api/update", body, csrf=csrf)
    assert answer.code == 400
    assert set(answer.json()["fields"]) == {"ref"}
    page = browser.call("GET", f"/update/preview?ref={quote(ref)}&digest={newer}")
    assert page.code == 400
    assert "ref: expected a channel" in page.text
    form = browser.form("/update/start", {"csrf": csrf, "ref": ref, "manifest_digest": newer})
    assert form.code == 400
    assert "ref: expected a channel" in form.text
    # Nothing started, and the inputs still follow the channel the operator chose.
    assert site.service.updates.keeper.run is None
    stored = IntentStore(site.settings.paths.intent_file).load()
    assert stored is not None
    assert stored.channel == "stable"


def test_a_preview_with_an_unknown_field_names_that_field(site: Site) -> None:
    answer = site.browser.json(
        "POST", "/api/update/preview", {"ref": "stable", "x": 1}, csrf=site.csrf
    )
    assert answer.code == 400
    assert answer.json()["fields"] == {"x": "unknown field"}
    answer = site.browser.json("POST", "/api/update/preview", {"x": 1}, csrf=site.csrf)
    assert set(answer.json()["fields"]) == {"ref", "x"}


@pytest.mark.parametrize("path", ["/api/update", "/api/status"])
def test_a_long_poll_names_the_argument_that_is_not_a_number(site: Site, path: str) -> None:
    answer = site.browser.call("GET", f"{path}?wait=1&timeout=abc")
    assert answer.code == 400
    assert answer.json()["fields"] == {"timeout": "expected a number of seconds"}
    answer = site.browser.call("GET", f"{path}?wait=x&timeout=1")
    assert answer.code == 400
    assert answer.json()["fields"] == {
        "wait": "expected an integer: the version of the answer seen last"
    }
    answer = site.browser.call("GET", f"{path}?wait=x&timeout=abc")
    assert set(answer.json()["fields"]) == {"wait", "timeout"}
    # timeout=0 answers at once; in a thread, so a wait that ignores it fails here, not hangs.
    answered: list[int] = []
    threading.Thread(
        target=lambda: answered.append(site.browser.call("GET", f"{path}?wait=1&timeout=0").code),
        daemon=True,
    ).start()
    assert wait_until(lambda: answered, 10, "the long poll to answer") == [200]


@pytest.mark.parametrize("content", ["null", "[]", '"x"', "3"])
def test_a_selection_file_of_another_type_is_ignored_with_a_warning(
    site: Site, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    selection = site.settings.paths.selection_file
    selection.write_text(content)
    caplog.set_level(logging.WARNING)
    for path in ("/api/update", "/api/update/history", "/update"):
        answer = site.browser.call("GET", path)
        assert answer.code == 200, (path, answer.body[:200])
    assert site.browser.call("GET", "/api/update/history").json() == {"history": []}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{selection}: expected a JSON object, got {_kind(content)}; ignored"]
    assert json.loads(selection.read_text()) == json.loads(content)  # the bootstrap's file


def _kind(content: str) -> str:
    return {"null": "null", "[]": "a list", '"x"': "a string", "3": "a number"}[content]


def test_damaged_update_files_are_set_aside_and_every_view_still_answers(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    directory = site.settings.paths.state / "update"
    check = directory / "check.json"
    history = directory / "history.json"
    check.write_text(json.dumps({"available": True, "latest": "1.5.0", "channel": "stable"}))
    good = {"id": "u1", "kind": "pin", "from": None, "to": {"version": "1.5.0"},
            "requested_at": 1e300, "outcome": "succeeded"}  # fmt: skip
    history.write_text(json.dumps([good, {**good, "id": "u2", "from": "x"}, {**good, "to": 3}]))
    caplog.set_level(logging.WARNING)
    for path in ("/api/status", "/api/update", "/api/update/history", "/update"):
        answer = site.browser.call("GET", path)
        assert answer.code == 200, (path, answer.body[:300])
    view = site.browser.call("GET", "/api/update").json()
    assert view["check"] is None
    assert [entry["id"] for entry in view["history"]] == ["u1"]
    page = site.browser.call("GET", "/update").text
    assert '<tr data-id="u1" data-outcome="succeeded">' in page
    assert 'data-id="u2"' not in page
    [aside] = [p.name for p in directory.iterdir() if p.name.startswith("check.json.corrupt-")]
    assert f"{check}: latest: expected a JSON object or null, got a string; kept as {aside}" in [
        r.getMessage() for r in caplog.records
    ]
    history.write_text('{"id": "u1"}')
    assert site.browser.call("GET", "/api/update/history").json() == {"history": []}
    assert [p for p in directory.iterdir() if p.name.startswith("history.json.corrupt-")]
