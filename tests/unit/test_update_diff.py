"""What an update changes, row by row: a first release (nothing running), every section's
rows with both sides, profile values line by line, and which values ConfigMaps change."""

from __future__ import annotations

from typing import Any

from host_service.intent import SetupIntent
from host_service.release import SERVICES, parse_release, profile_values_file
from host_service.update.diff import release_diff, side_by_side
from tests.fixtures.host_service import release_document

INTENT = SetupIntent(app_url="https://psa.example.com", channel="stable")
DIGEST = "sha256:" + "2" * 64


def release(version: str, **changes: Any) -> Any:
    document = release_document(version, "stable", "ghcr.io/alga/config", "sha256:" + "a" * 64)
    document.update(changes)
    return parse_release(document, source="test")


def test_side_by_side_rows_for_each_kind_of_change() -> None:
    assert side_by_side("a\nb\nc\nx\n", "a\nc\ny\nz\n") == [
        ["equal", 1, "a", 1, "a"],
        ["delete", 2, "b", None, ""],
        ["equal", 3, "c", 2, "c"],
        ["replace", 4, "x", 3, "y"],
        ["replace", None, "", 4, "z"],
    ]
    assert side_by_side("", "") == []
    assert side_by_side("a\nb\n", "") == [
        ["delete", 1, "a", None, ""],
        ["delete", 2, "b", None, ""],
    ]
    # Over 200 lines, difflib's autojunk takes a frequent line for junk and would show
    # one changed line as the whole rest of the file replaced.
    before = "x\n" * 150 + "y\n" + "x\n" * 150
    rows = side_by_side(before, before.replace("y", "z"))
    assert [row for row in rows if row[0] != "equal"] == [["replace", 151, "y", 151, "z"]]


def test_a_first_release_has_nothing_on_the_running_side() -> None:
    candidate = release("1.5.0")
    diff = release_diff(None, candidate, running_digest=None, candidate_digest=DIGEST,
                        intent=INTENT, workloads="msp")  # fmt: skip
    release_rows = diff["sections"]["release"]
    assert release_rows == [
        {"name": "version", "running": None, "candidate": "1.5.0", "changed": True},
        {"name": "channel", "running": None, "candidate": "stable", "changed": True},
        {"name": "manifest digest", "running": None, "candidate": DIGEST, "changed": True},
        {"name": "values profile", "running": None, "candidate": "single-node", "changed": True},
    ]
    images = {r["name"]: r for r in diff["sections"]["images"]}
    assert sorted(images) == ["algaCore", "control plane", "emailService", "temporalWorker",
                              "workflowWorker"]  # fmt: skip
    assert images["control plane"] == {
        "name": "control plane", "running": None,
        "candidate": "ghcr.io/nine-minds/appliance-control:0.3.1", "changed": True,
    }  # fmt: skip
    assert diff["sections"]["config bundle"] == [
        {"name": "repository", "running": None, "candidate": "ghcr.io/alga/config",
         "changed": True},
        {"name": "digest", "running": None, "candidate": "sha256:" + "a" * 64, "changed": True},
    ]  # fmt: skip
    charts = {r["name"]: r for r in diff["sections"]["charts"]}
    assert sorted(charts) == sorted(SERVICES)
    ref = candidate.charts["redis"]
    assert charts["redis"]["candidate"] == f"1.0.0 ({ref.digest})"
    values = diff["profile_values"]
    assert [v["name"] for v in values] == sorted(candidate.profile_values)
    assert all(v["changed"] for v in values)
    assert values[0]["lines"][0] == ["insert", None, "", 1, "replicaCount: 1"]
    assert [c["name"] for c in diff["configmaps"]] == [f"alga-values-{s}" for s in SERVICES]
    assert all(c["changed"] for c in diff["configmaps"])
    assert diff["changes"] == 4 + 5 + 2 + 8 + 8


def test_the_same_release_changes_nothing() -> None:
    a = release("1.4.0")
    diff = release_diff(a, a, running_digest=DIGEST, candidate_digest=DIGEST, intent=INTENT,
                        workloads="msp")  # fmt: skip
    assert diff["changes"] == 0
    assert not any(c["changed"] for c in diff["configmaps"])
    assert all(row[0] == "equal" for v in diff["profile_values"] for row in v["lines"])


def test_without_an_intent_no_configmaps_are_compared() -> None:
    diff = release_diff(None, release("1.4.0"), running_digest=None, candidate_digest=DIGEST,
                        intent=None, workloads="msp")  # fmt: skip
    assert diff["configmaps"] == []


def test_a_values_change_is_counted_once_per_file_and_shows_the_lines() -> None:
    a = release("1.4.0")
    values = dict(a.profile_values)
    name = profile_values_file("redis", "single-node")
    values[name] = values[name].replace("replicaCount: 1", "replicaCount: 2")
    b = release("1.4.0", profileValues=values)
    diff = release_diff(a, b, running_digest=DIGEST, candidate_digest=DIGEST, intent=INTENT,
                        workloads="msp")  # fmt: skip
    assert diff["changes"] == 1
    [changed] = [v for v in diff["profile_values"] if v["changed"]]
    assert changed["name"] == name
    assert ["replace", 1, "replicaCount: 1", 1, "replicaCount: 2"] in changed["lines"]
    by_name = {c["name"]: c["changed"] for c in diff["configmaps"]}
    assert by_name == {f"alga-values-{s}": s == "redis" for s in SERVICES}


def test_a_replace_of_more_lines_by_fewer_leaves_the_right_side_empty() -> None:
    assert side_by_side("a\nb\nc\nd\n", "a\nX\nd\n") == [
        ["equal", 1, "a", 1, "a"],
        ["replace", 2, "b", 2, "X"],
        ["replace", 3, "c", None, ""],
        ["equal", 4, "d", 3, "d"],
    ]


def test_a_profile_change_shows_the_old_files_removed_and_the_new_ones_added() -> None:
    a = release("1.4.0")
    values = {profile_values_file(s, "multi-node"): f"name: {s}\n" for s in SERVICES}
    b = release("1.5.0", valuesProfile="multi-node", profileValues=values)
    diff = release_diff(a, b, running_digest=DIGEST, candidate_digest=DIGEST, intent=None,
                        workloads="msp")  # fmt: skip
    rows = {v["name"]: v for v in diff["profile_values"]}
    old = rows[profile_values_file("db", "single-node")]
    assert old["changed"]
    assert all(row[0] == "delete" and row[3] is None and row[4] == "" for row in old["lines"])
    new = rows[profile_values_file("db", "multi-node")]
    assert new["lines"] == [["insert", None, "", 1, "name: db"]]
