"""Runtime blockers and the overview document held to exact answers: each blocker's words and
evidence, when it starts and clears, every headline and what runs now (mutation testing found
these unprotected; docs/testing.md, "Operator views")."""

from __future__ import annotations

from typing import Any

from host_service.operate.overview import overview
from host_service.operate.runtime_blockers import (
    DISK,
    NODE,
    NOT_READY,
    Problem,
    RuntimeBlocker,
    RuntimeBlockers,
    problems,
)
from host_service.operate.snapshot import Reading

NOW = 1_796_454_000.0  # 2026-12-05T07:00:00Z
T0 = "2026-12-05T06:50:00Z"  # ten minutes before NOW
GIB = 2**30


def ok(value: Any) -> Reading:
    return Reading(value=value, read_at=NOW - 2, tried_at=NOW - 2, cycles=3)


def cond(kind: str, status: str, message: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "status": status, "message": message, "lastTransitionTime": T0, **extra}


# -- problems ------------------------------------------------------------------------------


def test_a_full_disk_in_full() -> None:
    disks = {
        "root": {"path": "/", "total": 40 * GIB, "free": 20 * GIB, "used_percent": 50.0},
        "state": {"path": "/var/lib/alga-appliance", "total": 100 * GIB, "free": 3 * GIB // 2,
                  "used_percent": 98.5},
        "edge": {"path": "/edge", "total": 10, "free": 1, "used_percent": 90.0},
    }  # fmt: skip
    (problem,) = problems({"host": ok({"disks": disks})}, threshold=900, after_bootstrap=True)
    assert problem == Problem(
        key="disk/state",
        layer="host",
        wording=DISK,
        fields={"name": "state", "percent": 98.5, "path": "/var/lib/alga-appliance",
                "free": "1.5 GiB"},
        evidence=f"/var/lib/alga-appliance: 98.5 % used, {3 * GIB // 2} of {100 * GIB} bytes free",
        since=None,
        after=0.0,
        fix="/status#layer-host",
    )  # fmt: skip
    (blocker,) = RuntimeBlockers().update([problem], NOW)
    assert blocker.to_json() == {
        "key": "disk/state",
        "layer": "host",
        "message": "the state volume is 98 % full",
        "cause": "/var/lib/alga-appliance has 1.5 GiB left; k3s evicts pods and the database "
        "stops writing when it fills",
        "next_step": DISK.next_step,
        "output": problem.evidence,
        "at": NOW,
        "fix": "/status#layer-host",
    }


def test_nothing_read_is_no_problem() -> None:
    assert problems({}, threshold=0, after_bootstrap=True) == []
    empty = {"host": ok(None), "nodes": ok(None), "kustomizations": ok(None), "helm": ok(None)}
    assert problems(empty, threshold=0, after_bootstrap=True) == []
    assert problems({"host": ok({})}, threshold=0, after_bootstrap=True) == []


def test_a_node_not_ready_in_full() -> None:
    node = {
        "metadata": {"name": "alga-appliance"},
        "status": {
            "conditions": [
                cond("MemoryPressure", "Unknown", "Kubelet stopped posting node status.",
                     reason="NodeStatusUnknown"),
                cond("Ready", "Unknown", "Kubelet stopped posting node status.",
                     reason="NodeStatusUnknown"),
                {"type": "DiskPressure", "status": "False"},
            ]
        },
    }  # fmt: skip
    healthy = {"metadata": {"name": "other"}, "status": {"conditions": [cond("Ready", "True")]}}
    (problem,) = problems({"nodes": ok([healthy, node])}, threshold=900, after_bootstrap=False)
    assert problem == Problem(
        key="node/alga-appliance",
        layer="k3s",
        wording=NODE,
        fields={"name": "alga-appliance", "message": "Kubelet stopped posting node status."},
        evidence="MemoryPressure=Unknown NodeStatusUnknown: Kubelet stopped posting node status.\n"
        "Ready=Unknown NodeStatusUnknown: Kubelet stopped posting node status.\n"
        "DiskPressure=False : ",
        since=NOW - 600,
        after=0.0,
        fix="/status#layer-k3s",
    )
    (blocker,) = RuntimeBlockers().update([problem], NOW)
    assert (blocker.message, blocker.cause, blocker.at) == (
        "node alga-appliance is NotReady",
        "the kubelet stopped reporting: Kubelet stopped posting node status.",
        NOW - 600,
    )
    silent = {"metadata": {"name": "n2"}, "status": {}}
    (problem,) = problems({"nodes": ok([silent])}, threshold=900, after_bootstrap=False)
    assert (problem.fields, problem.evidence, problem.since) == (
        {"name": "n2", "message": "no Ready"},
        "",
        None,
    )


def test_a_kustomization_not_ready_in_full() -> None:
    kustomization = {
        "metadata": {"name": "alga-appliance", "namespace": "flux-system"},
        "status": {
            "conditions": [cond("Ready", "False", "kustomize build failed")],
            "lastAppliedRevision": "latest@sha256:aa",
            "lastAttemptedRevision": "latest@sha256:bb",
        },
    }
    ready = {**kustomization, "status": {"conditions": [cond("Ready", "True")]}}
    readings = {"kustomizations": ok([ready, kustomization])}
    (problem,) = problems(readings, threshold=900, after_bootstrap=True)
    assert problem == Problem(
        key="Kustomization/flux-system/alga-appliance",
        layer="flux",
        wording=NOT_READY,
        fields={"kind": "Kustomization", "name": "alga-appliance",
                "message": "kustomize build failed"},
        evidence="Kustomization flux-system/alga-appliance: last applied latest@sha256:aa, "
        "last attempted latest@sha256:bb\nkustomize build failed",
        since=NOW - 600,
        after=900,
        fix="/update",
    )  # fmt: skip
    fresh = {"metadata": {"name": "k", "namespace": "flux-system"}}
    (problem,) = problems({"kustomizations": ok([fresh])}, threshold=60, after_bootstrap=True)
    assert problem.evidence == (
        "Kustomization flux-system/k: last applied ?, last attempted ?\n"
        "it has not reported a Ready condition"
    )
    assert (problem.since, problem.after) == (None, 60)


def test_a_helm_release_not_ready_names_what_it_knows() -> None:
    release = {"metadata": {"name": "db", "namespace": "alga-system"}, "status": {}}
    (problem,) = problems({"helm": ok([release])}, threshold=900, after_bootstrap=True)
    assert (problem.key, problem.layer, problem.fix) == (
        "HelmRelease/alga-system/db",
        "helm",
        "/update",
    )
    assert problem.evidence == (
        "HelmRelease alga-system/db: Ready=in progress, chart ?, last attempted ?, failures 0\n"
        "it has not reported a Ready condition"
    )


# -- the tracker ---------------------------------------------------------------------------


def problem(key: str, *, since: float | None = None, after: float = 0.0) -> Problem:
    return Problem(
        key=key,
        layer="helm",
        wording=NOT_READY,
        fields={"kind": "HelmRelease", "name": key, "message": "m"},
        evidence="e",
        since=since,
        after=after,
        fix="/update",
    )


def test_a_problem_blocks_once_it_lasted_its_threshold_and_counts_whole_minutes() -> None:
    tracker = RuntimeBlockers()
    p = problem("a", after=120)
    assert tracker.update([p], NOW) == []
    assert tracker.update([p], NOW + 119.9) == []
    (raised,) = tracker.update([p], NOW + 120)  # exactly the threshold blocks
    assert raised.message == "HelmRelease a has not been Ready for 2 minutes"
    assert raised.at == NOW
    (raised,) = tracker.update([p], NOW + 179)
    assert raised.message == "HelmRelease a has not been Ready for 2 minutes"
    (early,) = RuntimeBlockers().update([problem("b")], NOW)
    assert early.message == "HelmRelease b has not been Ready for 1 minutes"  # at least one


def test_blockers_come_oldest_first_then_by_key() -> None:
    tracker = RuntimeBlockers()
    found = tracker.update(
        [problem("c", since=NOW - 60), problem("b", since=NOW - 300), problem("a", since=NOW - 60)],
        NOW,
    )
    assert [(b.key, b.at) for b in found] == [("b", NOW - 300), ("a", NOW - 60), ("c", NOW - 60)]


def test_a_cleared_problem_is_forgotten_and_others_keep_their_start() -> None:
    tracker = RuntimeBlockers()
    tracker.update([problem("a"), problem("b")], NOW)
    (b,) = tracker.update([problem("b")], NOW + 60)
    assert b.at == NOW
    found = tracker.update([problem("a"), problem("b")], NOW + 120)
    assert [(x.key, x.at) for x in found] == [("b", NOW), ("a", NOW + 120)]


# -- overview ------------------------------------------------------------------------------

NAMES = ["preflight", "k3s", "storage", "flux", "release", "values", "apply", "source", "reconcile"]


def status(phase: str, done: int, **extra: Any) -> dict[str, Any]:
    steps = [
        {"name": n, "title": n.title(), "status": "done" if i < done else "pending", "message": ""}
        for i, n in enumerate(NAMES)
    ]
    if phase == "running" and done < len(steps):
        steps[done]["status"] = "running"
    return {"phase": phase, "steps": steps, "blocker": None, "running": phase == "running", **extra}


def blocker(key: str, message: str) -> RuntimeBlocker:
    return RuntimeBlocker(key=key, layer="helm", message=message, cause="c", next_step="n",
                          output="o", at=NOW - 60, fix="/update")  # fmt: skip


def test_the_overview_document_in_full() -> None:
    doc = overview(
        status("running", 3, release={"version": "1.4.2"}, setup={"done": True},
               app_url="https://psa.example.test"),
        [{"name": "host", "title": "Host", "health": "ok"}],
        [],
        {"host": 3.0, "helm": None},
        [{"reason": "BackOff", "object": "Pod msp/alga-core-1"}],
    )  # fmt: skip
    assert {k: v for k, v in doc.items() if k != "steps"} == {
        "state": "progress",
        "headline": "Setting up: step 4 of 9, Flux",
        "detail": "The appliance installs itself; this page follows it.",
        "running_now": "step 4 of 9, Flux",
        "phase": "running",
        "progress": {"done": 3, "total": 9, "at": "step 4 of 9, Flux"},
        "bootstrap_blocker": None,
        "blockers": [],
        "layers": [{"name": "host", "title": "Host", "health": "ok"}],
        "release": {"version": "1.4.2"},
        "setup": {"done": True},
        "app_url": "https://psa.example.test",
        "ages": {"host": 3.0, "helm": None},
        "warnings": [{"reason": "BackOff", "object": "Pod msp/alga-core-1"}],
    }
    assert [(s["status_text"], s["health"]) for s in doc["steps"][2:5]] == [
        ("Done", "ok"),
        ("In progress", "progress"),
        ("Waiting", "waiting"),
    ]
    assert doc["steps"][0] == {"name": "preflight", "title": "Preflight", "status": "done",
                               "message": "", "status_text": "Done", "health": "ok"}  # fmt: skip


def test_a_step_in_an_unknown_state_is_shown_as_it_is() -> None:
    odd = status("running", 0)
    odd["steps"][0]["status"] = "skipped"
    step = overview(odd, [], [], {})["steps"][0]
    assert (step["status_text"], step["health"]) == ("skipped", "unknown")


def test_the_running_step_says_what_it_does() -> None:
    running = status("running", 4)
    running["steps"][4]["message"] = "pulling the release"
    assert overview(running, [], [], {})["running_now"] == (
        "step 5 of 9, Release: pulling the release"
    )
    between = status("running", 4)
    between["steps"][4]["status"] = "pending"  # the worker is between two steps
    assert overview(between, [], [], {})["running_now"] == (
        "Nothing is being changed: the appliance is keeping the release running."
    )
    update = status("reconciled", 9, update={"run": {"phase": "running", "id": "u-7"}})
    assert overview(update, [], [], {})["running_now"] == "Update u-7 is running (see Updates)."


def test_nothing_runs_before_setup_or_while_blocked() -> None:
    waiting = status("awaiting-setup", 0, running=False)
    assert overview(waiting, [], [], {})["running_now"] == (
        "Nothing yet: the appliance waits for its setup inputs."
    )
    blocked = status("blocked", 3, running=False)
    assert overview(blocked, [], [], {})["running_now"] == (
        "Nothing: setup waits where it stopped until you retry."
    )
    finished = status("reconciled", 9, update={"run": {"phase": "done", "id": "u-7"}})
    assert overview(finished, [], [], {})["running_now"].startswith("Nothing is being changed")


def test_every_headline() -> None:
    def head(doc: dict[str, Any]) -> tuple[str, str, str]:
        return doc["state"], doc["headline"], doc["detail"]

    assert head(overview(status("awaiting-setup", 0), [], [], {})) == (
        "waiting",
        "Not set up yet",
        "Enter the app URL and the release in Setup to begin.",
    )
    blocked = status("blocked", 2)
    blocked["steps"][2]["status"] = "blocked"
    blocked["blocker"] = {"step": "storage", "message": "no default storage class"}
    doc = overview(blocked, [], [], {})
    assert head(doc) == ("bad", "Setup stopped at step 3 of 9, Storage", "no default storage class")
    assert doc["bootstrap_blocker"] == {
        "step": "storage",
        "message": "no default storage class",
        "title": "Storage",
        "fix": "/setup",
    }
    blocked["blocker"] = {"step": "gone"}
    doc = overview(blocked, [], [], {})
    assert head(doc) == ("bad", "Setup stopped at step 3 of 9, Storage", "")
    assert doc["bootstrap_blocker"]["title"] == ""
    done = status("reconciled", 9)
    one = [blocker("a", "HelmRelease db has not been Ready for 16 minutes")]
    assert head(overview(done, [], one, {})) == (
        "bad",
        "Needs attention",
        "HelmRelease db has not been Ready for 16 minutes",
    )
    two = [*one, blocker("b", "node n1 is NotReady")]
    doc = overview(done, [], two, {})
    assert head(doc) == (
        "bad",
        "Needs attention",
        "HelmRelease db has not been Ready for 16 minutes (and 1 more)",
    )
    assert doc["blockers"] == [b.to_json() for b in two]
    three = [*two, blocker("c", "x")]
    assert overview(done, [], three, {})["detail"].endswith("(and 2 more)")
    troubled = [
        {"title": "Host", "health": "warn"},
        {"title": "Flux", "health": "ok"},
        {"title": "Helm releases", "health": "unknown"},
        {"title": "Workloads", "health": "bad"},
        {"title": "k3s", "health": "progress"},
    ]
    assert head(overview(done, troubled, [], {})) == (
        "warn",
        "Running, with problems",
        "See Host, Helm releases, Workloads below.",
    )
    for health in ("progress", "waiting"):
        assert head(overview(done, [{"title": "Helm", "health": health}], [], {})) == (
            "progress",
            "Applying the release",
            "Flux and Helm are rolling it out.",
        )
    assert head(overview(done, [], [], {})) == ("ok", "Running normally", "Every layer is healthy.")


def test_progress_at_the_end_and_without_steps() -> None:
    done = overview(status("reconciled", 9), [], [], {})
    assert done["progress"] == {"done": 9, "total": 9, "at": "step 9 of 9, Reconcile"}
    empty = overview({"phase": "reconciled", "steps": []}, [], [], {})
    assert empty["progress"] == {"done": 0, "total": 0, "at": ""}
    assert (empty["release"], empty["setup"], empty["app_url"]) == (None, None, None)


def test_a_problem_not_due_yet_does_not_hide_the_next_one() -> None:
    tracker = RuntimeBlockers()
    found = tracker.update([problem("slow", after=900), problem("now")], NOW)
    assert [b.key for b in found] == ["now"]
