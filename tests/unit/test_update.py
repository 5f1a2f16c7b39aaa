"""Updates, pure parts and the manager against in-memory fakes: version order, the diff, the
run's transitions and history entry, the history put back after a crash, the scheduled check,
and every way a start is refused."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from host_service.intent import InputErrors, IntentStore, SetupIntent
from host_service.oci import Manifest, sha256_digest
from host_service.release import (
    RELEASE_MEDIA_TYPE,
    canonical_json,
    parse_release,
)
from host_service.runtime import Runtime
from host_service.settings import Settings, default_settings
from host_service.state import Phase
from host_service.steps import resolved
from host_service.steps.context import StepContext
from host_service.update import state as us
from host_service.update.diff import release_diff, side_by_side
from host_service.update.manager import UpdateConflict, UpdateManager
from host_service.update.state import Blocker, RunPhase, Selection, UpdateRun, UpdateStep
from host_service.update.steps import IMPLEMENTATIONS, UpdateContext
from host_service.update.store import Candidate, UpdateKeeper, UpdatePaths
from host_service.update.versions import compare
from tests.fixtures.host_service import FakeHost, FakeKube, release_document
from tests.unit.test_host_worker import UnusedSystemd
from tests.waiting import wait_until

INTENT = SetupIntent(app_url="https://psa.example.com", channel="stable")


# -- versions and the diff ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        ("1.4.2", "1.5.0", -1),
        ("1.10.0", "1.9.9", 1),
        ("1.5.0-rc1", "1.5.0", -1),
        ("1.5.0-rc.2", "1.5.0-rc.10", -1),
        ("v2.0.0", "2.0.0", 0),
        ("2.0.0+build7", "2.0.0", 0),
        ("1.9.9", "2.0.0", -1),
        ("1.0.0-rc.1", "1.0.0-rc.beta", -1),  # numeric identifiers sort before alphanumeric
        ("1.0.0~rc1", "1.0.0-rc1", 0),
        (" 1.0.0 ", "1.0.0", 0),
    ],
)
def test_version_order(a: str, b: str, order: int) -> None:
    assert compare(a, b) == order
    assert compare(b, a) == -order


def test_unorderable_versions_are_none() -> None:
    assert compare("nightly-2025", "1.0.0") is None


def test_side_by_side_pairs_lines() -> None:
    rows = side_by_side("a\nb\nc\n", "a\nB\nc\nd\n")
    assert rows == [
        ["equal", 1, "a", 1, "a"],
        ["replace", 2, "b", 2, "B"],
        ["equal", 3, "c", 3, "c"],
        ["insert", None, "", 4, "d"],
    ]


def release(version: str, **changes: Any) -> Any:
    document = release_document(version, "stable", "ghcr.io/alga/config", "sha256:" + "a" * 64)
    for key, value in changes.items():
        document[key] = value
    return parse_release(document, source="test")


def test_release_diff_names_every_change_and_keeps_operator_values() -> None:
    a = release("1.4.0")
    charts = {name: ref.to_json() for name, ref in a.charts.items()}
    charts["alga-core"] = {
        **charts["alga-core"],
        "version": "1.1.0",
        "digest": "sha256:" + "c" * 64,
    }
    b = release("1.5.0", charts=charts)
    diff = release_diff(
        a,
        b,
        running_digest="sha256:" + "1" * 64,
        candidate_digest="sha256:" + "2" * 64,
        intent=INTENT,
        workloads="msp",
    )
    rows = {(s, r["name"]): r for s, rs in diff["sections"].items() for r in rs}
    assert rows[("release", "version")] == {
        "name": "version", "running": "1.4.0", "candidate": "1.5.0", "changed": True
    }  # fmt: skip
    assert rows[("charts", "alga-core")]["changed"]
    assert not rows[("charts", "db")]["changed"]
    assert rows[("images", "algaCore")]["candidate"] == "ghcr.io/nine-minds/alga-psa:1.5.0"
    assert not rows[("config bundle", "digest")]["changed"]
    assert not any(v["changed"] for v in diff["profile_values"])
    # applianceRelease is in every service's values: every ConfigMap changes.
    assert all(cm["changed"] for cm in diff["configmaps"])
    assert diff["changes"] == 1 + 1 + 4 + 1  # version, digest, four images, one chart


# -- the run ---------------------------------------------------------------------------------


def selection(version: str, n: str) -> Selection:
    return Selection(
        ref="stable",
        version=version,
        manifest_digest="sha256:" + n * 64,
        config_digest="sha256:" + n * 64,
    )


def new_run(**changes: Any) -> UpdateRun:
    run = UpdateRun(
        id="u2-1",
        kind="update",
        target=selection("1.5.0", "2"),
        previous=selection("1.4.0", "1"),
        requested_by="session ab12cd34 from 192.0.2.9",
        requested_at=100.0,
    )
    return replace(run, **changes)


def test_a_run_goes_step_by_step_to_succeeded() -> None:
    run = new_run()
    for step in UpdateStep:
        run = us.begin(run, step, 1.0)
        run = us.report(run, step, "working", 2.0, detail="a detail")
        run = us.finish(run, step, 3.0, already_done=False)
    assert run.phase is RunPhase.SUCCEEDED
    assert run.finished_at == 3.0
    entry = run.history_entry()
    assert entry["outcome"] == "succeeded"
    assert entry["from"]["version"] == "1.4.0"
    assert entry["to"]["version"] == "1.5.0"
    assert UpdateRun.from_json(json.loads(json.dumps(run.to_json()))) == run


def test_block_retry_interrupt_and_supersede() -> None:
    run = us.begin(new_run(), UpdateStep.RESOLVE, 1.0)
    blocker = Blocker(step=UpdateStep.RESOLVE, message="m", cause="c", next_step="n")
    run = us.block(run, blocker, 2.0)
    assert run.phase is RunPhase.BLOCKED
    assert run.history_entry()["blocked_at"] == "resolve"
    with pytest.raises(us.TransitionError):
        us.begin(run, UpdateStep.RESOLVE, 3.0)
    run = us.retry(run, 3.0)
    assert run.phase is RunPhase.RUNNING
    assert run.current is UpdateStep.RESOLVE
    run = us.begin(run, UpdateStep.RESOLVE, 4.0)
    resumed = us.interrupted(run, 5.0)
    assert resumed.record(UpdateStep.RESOLVE).status == "pending"
    assert resumed.record(UpdateStep.RESOLVE).attempts == 2
    blocked = us.block(run, blocker, 6.0)
    assert us.supersede(blocked, 7.0).phase is RunPhase.SUPERSEDED
    with pytest.raises(us.TransitionError):
        us.supersede(new_run(), 1.0)
    assert new_run().token == "update-u2-1"


def test_a_history_entry_lost_in_a_crash_is_put_back(tmp_path: Path) -> None:
    paths = UpdatePaths(tmp_path / "update")
    keeper = UpdateKeeper(paths)
    keeper.replace(new_run())
    paths.history.unlink()  # the crash came between run.json and history.json
    again = UpdateKeeper(paths)
    assert again.load() == new_run()
    assert [e["id"] for e in again.history.entries()] == ["u2-1"]


def test_a_damaged_history_is_kept_aside_not_trusted(tmp_path: Path) -> None:
    paths = UpdatePaths(tmp_path / "update")
    paths.directory.mkdir(parents=True)
    paths.history.write_text("{not json")
    keeper = UpdateKeeper(paths)
    assert keeper.history.entries() == []
    assert list(paths.directory.glob("history.json.corrupt-*"))


# -- the manager -----------------------------------------------------------------------------


@dataclass
class FakeRegistry:
    """Serves release manifests by tag or digest like RegistryClient (digests real)."""

    registry: str = "ghcr.io"
    tags: dict[str, str] = field(default_factory=dict)
    manifests: dict[str, Manifest] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def publish(self, document: dict[str, Any], *tags: str) -> str:
        blob = canonical_json(document)
        config = sha256_digest(blob)
        self.blobs[config] = blob
        manifest_doc = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": RELEASE_MEDIA_TYPE, "digest": config, "size": len(blob)},
            "layers": [],
        }
        data = json.dumps(manifest_doc).encode()
        digest = sha256_digest(data)
        self.manifests[digest] = Manifest(digest, manifest_doc["mediaType"], data, manifest_doc)
        for tag in tags:
            self.tags[tag] = digest
        return digest

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        self.asked.append(reference)
        return self.manifests[self.tags.get(reference, reference)]

    def get_blob(self, repository: str, digest: str, *, max_bytes: int = 0) -> bytes:
        return self.blobs[digest]

    def __enter__(self) -> FakeRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def resolved_by_bootstrap(settings: Settings, registry: FakeRegistry) -> str:
    """An appliance as its bootstrap leaves it: INTENT stored, release 1.4.0 published on
    ``stable`` and resolved. Returns its manifest digest."""
    IntentStore(settings.paths.intent_file).save(INTENT)
    running = registry.publish(
        release_document("1.4.0", "stable", "ghcr.io/c", "sha256:" + "c" * 64), "stable"
    )
    ctx = StepContext(
        settings=settings, intent=INTENT, kube=FakeKube(), systemd=UnusedSystemd(),
        k3s=UnusedSystemd(), host=FakeHost(), registry=lambda: registry,  # type: ignore[arg-type]
        reporter=lambda m, d: None,
    )  # fmt: skip
    resolved.resolve(ctx)
    return running


@dataclass
class Scene:
    settings: Settings
    registry: FakeRegistry
    manager: UpdateManager
    phase: list[Phase]
    running: str


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    settings = default_settings(tmp_path)
    settings.paths.state.mkdir(parents=True)
    registry = FakeRegistry()
    runtime = Runtime(
        kube=FakeKube(),
        systemd=UnusedSystemd(),
        k3s=UnusedSystemd(),
        host=FakeHost(),
        registry=lambda s, i: lambda: registry,  # type: ignore[arg-type,return-value]
    )
    running = resolved_by_bootstrap(settings, registry)
    intents = IntentStore(settings.paths.intent_file)
    registry.asked.clear()
    phase = [Phase.RECONCILED]
    manager = UpdateManager(
        settings,
        runtime,
        intents=intents,
        bootstrap_phase=lambda: phase[0],
        first_check=0.01,
        check_interval=3600,
    )
    yield Scene(settings, registry, manager, phase, running)
    manager.stop()


def test_the_scheduled_check_finds_a_newer_release(scene: Scene) -> None:
    newer = scene.registry.publish(
        release_document("1.5.0", "stable", "ghcr.io/c", "sha256:" + "d" * 64), "stable"
    )
    keeper = scene.manager.keeper
    scene.manager.start()
    version = [keeper.snapshot()[0]]

    def pause(left: float) -> None:  # wakes at the next change of the update view
        version[0] = keeper.wait_for_change(version[0], min(left, 1.0))[0]

    check = wait_until(scene.manager.last_check, 10, "the scheduled check", pause=pause)
    assert check is not None
    assert check["requested_by"] == "schedule"
    assert check["available"] is True
    assert check["latest"]["manifest_digest"] == newer
    assert scene.registry.asked == ["stable"]


def test_the_schedule_checks_only_an_installed_idle_appliance(scene: Scene) -> None:
    assert scene.manager.check_due()
    for phase in (Phase.AWAITING_SETUP, Phase.RUNNING, Phase.BLOCKED):
        scene.phase[0] = phase
        assert not scene.manager.check_due(), phase
    scene.phase[0] = Phase.RECONCILED
    scene.manager.keeper.replace(
        UpdateRun(
            id="u1-1",
            kind="update",
            target=selection("1.5.0", "2"),
            previous=selection("1.4.0", "1"),
            requested_by="t",
            requested_at=1.0,
        )
    )
    assert not scene.manager.check_due()  # an update is running


def test_start_is_refused_with_reasons(scene: Scene) -> None:
    older = scene.registry.publish(
        release_document("1.3.0", "stable", "ghcr.io/c", "sha256:" + "e" * 64), "1.3.0"
    )
    manager = scene.manager
    with pytest.raises(UpdateConflict, match="not checked or previewed"):
        manager.start_update(ref="1.3.0", manifest_digest=older, force=False, requested_by="t")
    preview = manager.preview("1.3.0")
    assert preview["kind"] == "pin"
    assert preview["downgrade"] is True
    with pytest.raises(UpdateConflict, match=r"older than the running 1\.4\.0.*force"):
        manager.start_update(ref="1.3.0", manifest_digest=older, force=False, requested_by="t")
    manager.preview("stable")
    with pytest.raises(UpdateConflict, match="already selected"):
        manager.start_update(
            ref="stable", manifest_digest=scene.running, force=False, requested_by="t"
        )
    scene.phase[0] = Phase.BLOCKED
    with pytest.raises(UpdateConflict, match="the bootstrap is blocked"):
        manager.start_update(ref="1.3.0", manifest_digest=older, force=True, requested_by="t")
    assert manager.keeper.run is None
    assert manager.history() == []


def test_candidates_are_cached_with_their_digests(scene: Scene) -> None:
    preview = scene.manager.preview("stable")
    assert preview["relation"] == "same"
    cached = scene.manager.cache.load(scene.running)
    assert isinstance(cached, Candidate)
    assert cached.release.version == "1.4.0"
    assert scene.manager.cache.load("sha256:" + "9" * 64) is None


def test_a_start_needs_the_ref_its_candidate_was_checked_or_previewed_as(scene: Scene) -> None:
    newer = scene.registry.publish(
        release_document("1.5.0", "stable", "ghcr.io/c", "sha256:" + "d" * 64), "1.5.0", "nightly"
    )
    manager = scene.manager
    manager.preview("1.5.0")
    # Each of these names another release, or none of the registry's: starting 1.5.0's
    # digest under it would record a choice the operator never saw resolve to it.
    for ref in ("stable", "nightly", "1.5.1", scene.running, newer):
        with pytest.raises(UpdateConflict, match=re.escape(f"not checked or previewed as {ref!r}")):
            manager.start_update(ref=ref, manifest_digest=newer, force=False, requested_by="t")
        assert manager.describe_cached(ref, newer) is None
    assert manager.keeper.run is None
    shown = manager.describe_cached("1.5.0", newer)
    assert shown is not None
    assert shown["target"]["manifest_digest"] == newer
    manager.preview("nightly")  # the same manifest by another name: both are known now
    assert manager.describe_cached("1.5.0", newer) is not None
    run = manager.start_update(ref="nightly", manifest_digest=newer, force=False, requested_by="t")
    assert (run.kind, run.target.ref, run.target.version) == ("channel", "nightly", "1.5.0")


def test_the_check_pairs_the_followed_channel_with_what_it_found(scene: Scene) -> None:
    newer = scene.registry.publish(
        release_document("1.5.0", "stable", "ghcr.io/c", "sha256:" + "d" * 64), "stable"
    )
    manager = scene.manager
    assert manager.check(requested_by="t")["latest"]["manifest_digest"] == newer
    assert manager.describe_cached("stable", newer) is not None
    run = manager.start_update(ref="stable", manifest_digest=newer, force=False, requested_by="t")
    assert (run.kind, run.target.ref) == ("update", "stable")


@pytest.mark.parametrize("ref", ["Not A Channel/../x", "", "stable\n", "Stable", "sha256:abc"])
def test_the_manager_refuses_a_ref_that_is_not_a_channel_version_or_digest(
    scene: Scene, ref: str
) -> None:
    manager = scene.manager
    digest = manager.preview("stable")["target"]["manifest_digest"]
    for call in (
        lambda: manager.preview(ref),
        lambda: manager.describe_cached(ref, digest),
        lambda: manager.start_update(ref=ref, manifest_digest=digest, force=True, requested_by="t"),
    ):
        with pytest.raises(InputErrors) as caught:
            call()
        assert set(caught.value.errors) == {"ref"}
        assert caught.value.errors["ref"].startswith("expected a channel")
    assert manager.keeper.run is None
    assert scene.registry.asked == ["stable"]
    assert IntentStore(scene.settings.paths.intent_file).load() == INTENT


@pytest.mark.parametrize("digest", ["/etc/passwd", "../../release-selection", "sha256:" + "A" * 64])
def test_the_manager_refuses_a_manifest_digest_that_is_not_one(scene: Scene, digest: str) -> None:
    manager = scene.manager
    for call in (
        lambda: manager.describe_cached("stable", digest),
        lambda: manager.start_update(
            ref="stable", manifest_digest=digest, force=True, requested_by="t"
        ),
    ):
        with pytest.raises(InputErrors) as caught:
            call()
        assert set(caught.value.errors) == {"manifest_digest"}
    assert manager.keeper.run is None


@pytest.mark.parametrize("content", ["null", "[]", '"x"', "{broken"])
def test_a_damaged_selection_file_leaves_the_history_readable(
    scene: Scene, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    selection = scene.settings.paths.selection_file
    selection.write_text(content)
    assert scene.manager.history() == []
    assert scene.manager.history() == []
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"{selection}: ")
    assert warning.endswith("; ignored")
    assert selection.read_text() == content  # the bootstrap's file: left for it to rewrite
    selection.write_text(json.dumps({"manifest_digest": scene.running, "version": "1.4.0"}))
    assert [e["kind"] for e in scene.manager.history()] == ["install"]


@pytest.mark.parametrize("content", ["null", "[]", '"x"', "{broken"])
def test_the_reconcile_probe_reads_a_damaged_selection_file_as_not_done(
    scene: Scene, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    scene.settings.paths.selection_file.write_text(content)
    manager = scene.manager
    u = UpdateContext(
        manager._context(INTENT), new_run(), manager.cache, manager.intents, lambda c: None
    )
    assert IMPLEMENTATIONS[UpdateStep.RECONCILE].probe(u) is False
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"{scene.settings.paths.selection_file}: ")


def _blocked(scene: Scene) -> UpdateRun:
    keeper = scene.manager.keeper
    version = [keeper.snapshot()[0]]

    def pause(left: float) -> None:
        version[0] = keeper.wait_for_change(version[0], min(left, 1.0))[0]

    def blocked() -> UpdateRun | None:
        run = keeper.run
        return run if run is not None and run.phase is RunPhase.BLOCKED else None

    return wait_until(blocked, 10, "the run to stop at a blocker", pause=pause)


def test_a_run_whose_ref_setup_would_refuse_stops_before_it_changes_anything(
    scene: Scene,
) -> None:
    newer = scene.registry.publish(
        release_document("1.5.0", "stable", "ghcr.io/c", "sha256:" + "d" * 64), "1.5.0"
    )
    inputs = scene.settings.paths.intent_file.read_bytes()
    hostile = replace(  # a run file edited by hand, or written before refs were checked
        new_run(),
        kind="channel",
        target=Selection(
            ref="Not A Channel/../x",
            version="1.5.0",
            manifest_digest=newer,
            config_digest="sha256:" + "d" * 64,
        ),
    )
    scene.manager.keeper.replace(hostile)
    scene.manager.start()  # resumes the run
    run = _blocked(scene)
    assert run.blocker is not None
    assert run.blocker.step is UpdateStep.RESOLVE
    assert run.blocker.message.startswith(
        "update u2-1 selects 'Not A Channel/../x' (channel), which setup would refuse: channel: "
    )
    assert "choose the release again" in run.blocker.next_step
    assert scene.settings.paths.intent_file.read_bytes() == inputs


def test_a_run_with_unreadable_inputs_stops_at_a_blocker_not_in_progress(scene: Scene) -> None:
    scene.manager.keeper.replace(new_run())
    scene.settings.paths.intent_file.write_text("[]")
    scene.manager.start()
    run = _blocked(scene)
    assert run.blocker is not None
    assert run.blocker.step is UpdateStep.RESOLVE
    assert str(scene.settings.paths.intent_file) in run.blocker.message
