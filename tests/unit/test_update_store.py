"""Update state on disk: the run and its history entry written on every change (0600), an
unchanged transition writes nothing, a damaged file is set aside, candidates by digest."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from host_service.errors import InternalError
from host_service.settings import default_settings
from host_service.update import state as us
from host_service.update.store import (
    HISTORY_LIMIT,
    Candidate,
    CandidateCache,
    History,
    UpdateKeeper,
    UpdatePaths,
    read_selection,
)
from tests.unit.test_update_state import new_run
from tests.waiting import wait_until


def json_error(text: str) -> str:
    """What ``json.loads`` says about ``text``."""
    try:
        json.loads(text)
    except ValueError as exc:
        return str(exc)
    raise AssertionError(f"{text!r} is valid JSON")


def keeper(tmp_path: Path) -> UpdateKeeper:
    return UpdateKeeper(UpdatePaths(tmp_path / "update"))


def test_the_paths_under_the_state_directory(tmp_path: Path) -> None:
    paths = UpdatePaths.of(default_settings(tmp_path).paths)
    base = tmp_path / "var/lib/alga-appliance/update"
    assert (paths.run, paths.history, paths.check) == (
        base / "run.json", base / "history.json", base / "check.json")  # fmt: skip
    assert paths.manifest("sha256:" + "a" * 64) == base / "manifests" / ("a" * 64 + ".json")


def test_an_update_without_a_run_is_a_bug() -> None:
    with pytest.raises(RuntimeError, match=r"^no update run$"):
        UpdateKeeper(UpdatePaths(Path("/nonexistent"))).update(lambda run: run)


def test_each_change_is_written_with_its_history_entry(tmp_path: Path) -> None:
    store = keeper(tmp_path)
    run = new_run()
    store.replace(run)
    version, _ = store.snapshot()
    assert json.loads(store.paths.run.read_text()) == run.to_json()
    assert store.paths.run.stat().st_mode & 0o777 == 0o600
    begun = store.update(lambda r: us.begin(r, us.UpdateStep.RESOLVE, 5.0))
    assert store.run == begun
    assert UpdateKeeper(store.paths).load() == begun
    assert store.snapshot()[0] > version
    assert store.history.entries() == [begun.history_entry()]
    assert store.paths.history.stat().st_mode & 0o777 == 0o600


def test_a_transition_that_changes_nothing_writes_nothing(tmp_path: Path) -> None:
    store = keeper(tmp_path)
    store.replace(new_run())
    store.paths.run.unlink()
    version, _ = store.snapshot()
    same = store.update(lambda r: r)
    assert same == new_run()
    assert not store.paths.run.exists()
    assert store.snapshot()[0] == version


def test_the_history_entry_is_rewritten_only_when_it_changes(tmp_path: Path) -> None:
    store = keeper(tmp_path)
    store.replace(new_run())
    store.paths.history.write_text("[]")
    store.update(lambda r: us.begin(r, us.UpdateStep.RESOLVE, 5.0))  # same entry
    assert store.history.entries() == []
    blocker = us.Blocker(step=us.UpdateStep.RESOLVE, message="m", cause="c", next_step="n")
    blocked = store.update(lambda r: us.block(r, blocker, 6.0))
    assert store.history.entries() == [blocked.history_entry()]


def test_history_replaces_by_id_and_keeps_the_last_entries(tmp_path: Path) -> None:
    history = History(tmp_path / "history.json")
    history.upsert({"id": "a", "n": 1})
    history.upsert({"id": "b", "n": 1})
    history.upsert({"id": "a", "n": 2})
    assert history.entries() == [{"id": "a", "n": 2}, {"id": "b", "n": 1}]
    for n in range(HISTORY_LIMIT + 3):
        history.upsert({"id": f"x{n}"})
    entries = history.entries()
    assert len(entries) == HISTORY_LIMIT
    assert entries[-1] == {"id": f"x{HISTORY_LIMIT + 2}"}


def test_a_damaged_file_is_set_aside_and_reads_as_nothing(tmp_path: Path) -> None:
    history = History(tmp_path / "history.json")
    history.path.write_text("{broken")
    assert history.entries() == []
    aside = [p.name for p in tmp_path.iterdir() if p.name.startswith("history.json.corrupt-")]
    assert len(aside) == 1
    assert not history.path.exists()
    history.path.write_text('[{"id": "a"}, 3, "x"]')
    assert history.entries() == [{"id": "a"}]
    history.path.write_text('{"id": "a"}')
    assert history.entries() == []


def test_a_run_file_that_is_not_a_run_is_ignored(tmp_path: Path) -> None:
    store = keeper(tmp_path)
    store.paths.directory.mkdir(parents=True)
    store.paths.run.write_text('{"id": "x"}')
    assert store.load() is None
    assert store.run is None
    store.paths.run.write_text("[]")
    assert store.load() is None


def test_load_puts_back_a_history_entry_a_crash_lost(tmp_path: Path) -> None:
    store = keeper(tmp_path)
    store.replace(new_run())
    store.paths.history.unlink()
    again = keeper(tmp_path)
    assert again.load() == new_run()
    assert again.history.entries() == [new_run().history_entry()]


def test_candidates_are_kept_by_digest(tmp_path: Path) -> None:
    from tests.unit.test_update_diff import release

    cache = CandidateCache(UpdatePaths(tmp_path))
    digest = "sha256:" + "b" * 64
    candidate = Candidate(digest, "sha256:" + "c" * 64, release("1.5.0"))
    cache.save(candidate)
    path = UpdatePaths(tmp_path).manifest(digest)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = cache.load(digest)
    assert loaded is not None
    assert (loaded.manifest_digest, loaded.config_digest) == (digest, "sha256:" + "c" * 64)
    assert loaded.release.version == "1.5.0"
    assert cache.load("sha256:" + "d" * 64) is None
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "manifest_digest": "sha256:" + "e" * 64}))
    assert cache.load(digest) is None  # a file under the wrong name
    path.write_text(json.dumps({**data, "release": {"schema": "nope"}}))
    assert cache.load(digest) is None
    del data["release"]
    path.write_text(json.dumps(data))
    assert cache.load(digest) is None
    del data["config_digest"]
    data["release"] = json.loads(json.dumps(release("1.5.0").document))
    path.write_text(json.dumps(data))
    found = cache.load(digest)
    assert found is not None
    assert found.config_digest == ""


def waited(store: UpdateKeeper, version: int, timeout: float) -> tuple[int, object]:
    """``wait_for_change`` in a thread: a wait that does not end as it should fails the test
    at the bound instead of hanging it."""
    done: list[tuple[int, object]] = []
    threading.Thread(
        target=lambda: done.append(store.wait_for_change(version, timeout)), daemon=True
    ).start()
    return wait_until(lambda: done, timeout=10, what="wait_for_change to return")[0]


def test_touch_wakes_a_waiter_with_the_new_version(tmp_path: Path) -> None:
    store = keeper(tmp_path)
    store.replace(new_run())
    version, run = store.snapshot()
    store.touch()
    assert store.snapshot() == (version + 1, run)
    # Already changed: no wait at all, whatever the timeout.
    assert waited(store, version, timeout=3600) == (version + 1, run)
    # Nothing changed: the wait times out and says so with the same version.
    assert waited(store, version + 1, timeout=0) == (version + 1, run)
    woken: list[tuple[int, object]] = []
    waiter = threading.Thread(
        target=lambda: woken.append(store.wait_for_change(version + 1, 60)), daemon=True
    )
    waiter.start()
    store.touch()  # before or during the wait: either way the waiter sees version + 2
    wait_until(lambda: woken, timeout=30, what="the waiter to wake")
    assert woken == [(version + 2, run)]


def test_load_warns_about_a_file_that_is_not_json_or_not_a_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = keeper(tmp_path)
    store.paths.directory.mkdir(parents=True)
    store.paths.run.write_text("{broken")
    try:
        json.loads("{broken")
    except ValueError as exc:
        why = str(exc)
    assert store.load() is None
    [aside] = [p.name for p in store.paths.directory.iterdir() if ".corrupt-" in p.name]
    assert caplog.messages == [f"{store.paths.run}: unreadable ({why}); kept as {aside}"]
    caplog.clear()
    store.paths.run.write_text('{"id": "x"}')
    assert store.load() is None
    assert caplog.messages == [f"{store.paths.run}: not a run ('steps'); ignored"]


def test_each_load_is_a_change_waiters_see(tmp_path: Path) -> None:
    store = keeper(tmp_path)
    store.replace(new_run())
    again = keeper(tmp_path)
    before = again.snapshot()[0]
    again.load()
    middle = again.snapshot()[0]
    again.load()
    assert before < middle < again.snapshot()[0]
    assert again.run == new_run()


@pytest.mark.parametrize(
    "name",
    [
        "/etc/passwd",
        "../../release-selection",
        "sha256:../../release-selection",
        "sha256:" + "a" * 63 + "\x00",
        "sha256:" + "A" * 64,
        "a" * 64,
    ],
)
def test_the_cache_refuses_a_name_that_is_not_a_manifest_digest(tmp_path: Path, name: str) -> None:
    from tests.unit.test_update_diff import release

    victim = tmp_path / "release-selection.json"
    victim.write_text("not the cache's")
    cache = CandidateCache(UpdatePaths(tmp_path / "state" / "update"))
    with pytest.raises(InternalError, match=r"not a manifest digest \(sha256:<64 hex>\)"):
        cache.load(name)
    with pytest.raises(InternalError, match="not a manifest digest"):
        cache.save(Candidate(name, "sha256:" + "c" * 64, release("1.5.0")))
    assert victim.read_text() == "not the cache's"
    assert [p.name for p in tmp_path.rglob("*")] == ["release-selection.json"]


def test_a_damaged_file_is_set_aside_only_inside_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "update"
    store.mkdir()
    from host_service.update.store import read_document

    outside = tmp_path / "outside.json"
    for path in (outside, store / "inside.json"):
        path.write_text("{broken")
    assert read_document(outside, dict, directory=store) is None
    assert outside.read_text() == "{broken"
    assert caplog.messages[-1] == (
        f"{outside}: unreadable ({json_error('{broken')}); left in place: it is not in {store}"
    )
    assert read_document(store / "inside.json", dict, directory=store) is None
    assert [p.name.split("-")[0] for p in store.iterdir()] == ["inside.json.corrupt"]


def test_a_path_through_a_symlink_loop_reads_as_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Path.resolve() raises RuntimeError for a loop on Python 3.11: it escaped read_document.
    from host_service.update.store import read_document

    (tmp_path / "loop").symlink_to("loop")
    path = tmp_path / "loop" / "run.json"
    assert read_document(path, dict, directory=tmp_path) is None
    assert "left in place: it is not in" in caplog.messages[-1]
    assert (tmp_path / "loop").is_symlink()


@pytest.mark.parametrize(
    ("content", "kind"),
    [("null", "null"), ("[]", "a list"), ('"x"', "a string"), ("3", "a number"),
     ("true", "true or false"), ("{}", "an object")],
)  # fmt: skip
def test_a_state_file_of_another_type_is_set_aside_like_a_damaged_one(
    tmp_path: Path, content: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.unit.test_update_diff import release

    store = keeper(tmp_path)
    paths = store.paths
    cache = CandidateCache(paths)
    digest = "sha256:" + "b" * 64
    cache.save(Candidate(digest, "sha256:" + "c" * 64, release("1.5.0")))
    wanted = {paths.history: "list", paths.run: "object", paths.manifest(digest): "object"}
    for path, expected in wanted.items():
        if kind.endswith(f" {expected}"):
            continue
        path.write_text(content)
        caplog.clear()
        read = {
            paths.history: store.history.entries,
            paths.run: store.load,
            paths.manifest(digest): lambda: cache.load(digest),
        }[path]()
        assert not read
        [aside] = [
            p.name for p in path.parent.iterdir() if p.name.startswith(f"{path.name}.corrupt-")
        ]
        assert caplog.messages == [
            f"{path}: expected a JSON {expected}, got {kind}; kept as {aside}"
        ]
        assert (path.parent / aside).read_text() == content
        (path.parent / aside).unlink()


@pytest.mark.parametrize("field", ["release", "refs", "config_digest"])
@pytest.mark.parametrize("value", [[1], "x", 3, None, {"schema": "nope"}])
def test_a_candidate_with_a_field_of_another_type_is_not_a_candidate(
    tmp_path: Path, field: str, value: object
) -> None:
    from tests.unit.test_update_diff import release

    cache = CandidateCache(UpdatePaths(tmp_path))
    digest = "sha256:" + "b" * 64
    cache.save(Candidate(digest, "sha256:" + "c" * 64, release("1.5.0")))
    path = UpdatePaths(tmp_path).manifest(digest)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, field: value}))
    assert cache.load(digest) is None


def test_a_candidate_keeps_every_ref_it_was_seen_under(tmp_path: Path) -> None:
    from tests.unit.test_update_diff import release

    cache = CandidateCache(UpdatePaths(tmp_path))
    digest = "sha256:" + "b" * 64
    for ref in ("stable", "1.5.0", "stable", digest):
        cache.save(Candidate(digest, "sha256:" + "c" * 64, release("1.5.0"), refs=(ref,)))
    loaded = cache.load(digest)
    assert loaded is not None
    assert loaded.refs == ("stable", "1.5.0", digest)
    assert json.loads(UpdatePaths(tmp_path).manifest(digest).read_text())["refs"] == [
        "stable", "1.5.0", digest]  # fmt: skip


def test_a_path_that_cannot_be_resolved_is_never_renamed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from host_service.update.store import read_document

    path = tmp_path / "up\x00date" / "run.json"  # a NUL byte: no such file, nowhere to move it
    assert read_document(path, dict, directory=tmp_path) is None
    assert caplog.messages == [
        f"{path}: unreadable (embedded null byte); left in place: it is not in {tmp_path}"
    ]


def test_a_candidate_saved_before_refs_were_kept_loads_without_refs(tmp_path: Path) -> None:
    from tests.unit.test_update_diff import release

    cache = CandidateCache(UpdatePaths(tmp_path))
    digest = "sha256:" + "b" * 64
    cache.save(Candidate(digest, "sha256:" + "c" * 64, release("1.5.0"), refs=("stable",)))
    path = UpdatePaths(tmp_path).manifest(digest)
    data = json.loads(path.read_text())
    del data["refs"]
    path.write_text(json.dumps(data))
    loaded = cache.load(digest)
    assert loaded is not None
    assert (loaded.manifest_digest, loaded.release.version, loaded.refs) == (digest, "1.5.0", ())


def test_the_recorded_selection_is_read_or_said_why_not(tmp_path: Path) -> None:
    path = tmp_path / "release-selection.json"
    assert read_selection(path) == (None, None)  # nothing recorded yet
    path.write_text('{"manifest_digest": "sha256:' + "e" * 64 + '"}')
    assert read_selection(path) == ({"manifest_digest": "sha256:" + "e" * 64}, None)
    path.write_text("{broken")
    assert read_selection(path) == (None, f"{path}: unreadable ({json_error('{broken')}); ignored")
    path.write_text("[]")
    assert read_selection(path) == (None, f"{path}: expected a JSON object, got a list; ignored")
    assert path.read_text() == "[]"  # the bootstrap's file: left for its reconcile step


@pytest.mark.usefixtures("ascii_locale")
def test_files_edited_by_hand_are_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    # The service writes ASCII (JSON escapes); an editor writes what was typed.
    entries = [{"id": "a", "from": None, "to": None, "note": "rolled back by José"}]
    history = History(tmp_path / "history.json")
    history.path.write_bytes(json.dumps(entries, ensure_ascii=False).encode("utf-8"))
    assert history.entries() == entries
    selection = tmp_path / "release-selection.json"
    selection.write_bytes(json.dumps(entries[0], ensure_ascii=False).encode("utf-8"))
    assert read_selection(selection) == (entries[0], None)
