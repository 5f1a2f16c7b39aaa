"""FakeKube held to the Kubernetes API stand-in: the same cases against both.

The unit tests drive the steps with ``FakeKube``; the integration tests drive them with the
real kubectl against the stand-in (``Kubectl``, the service's kube seam). Each case here runs
against both, so a behaviour the steps rely on (label selectors, apply that merges, the
seam's error for a missing object, logs, a refused request) cannot differ between them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from host_service.kube import FIELD_MANAGER, Kube, Kubectl, KubeError
from host_service.logs.lines import parse_cursor
from tests.fixtures.host_service import KUBECTL, FakeKube
from tests.fixtures.kube_api import KubeApi

CODES = {"Forbidden": 403, "Invalid": 422, "InternalError": 500}
FLUX_LABEL = "kustomize.toolkit.fluxcd.io/name"


@dataclass
class Side:
    """One implementation of ``Kube`` and the controls a test sets its world with."""

    kube: Kube
    put: Callable[[dict[str, Any]], object]  # as a controller would: status included
    add_log: Callable[..., None]  # (namespace, pod, *lines, container="")
    previous_logs: dict[tuple[str, str], list[str]]  # the last terminated instance's lines
    deny: Callable[..., None]  # (verb, resource, *, message, reason="Forbidden", times=None)


def fake_side() -> Side:
    fake = FakeKube()
    return Side(
        kube=fake,
        put=fake.put,
        add_log=fake.add_log,
        previous_logs=fake.previous_logs,
        deny=fake.deny,
    )


def standin_side(api: KubeApi, tmp_path: Path) -> Side:
    config = api.write_kubeconfig(tmp_path / "kubeconfig")
    kubectl = Kubectl(
        [KUBECTL, "--cache-dir", str(tmp_path / "cache"), "--kubeconfig", str(config)], timeout=20
    )
    cluster = api.cluster

    def deny(
        verb: str,
        resource: str,
        *,
        message: str,
        reason: str = "Forbidden",
        times: int | None = None,
    ) -> None:
        plural = resource.split(".")[0]
        cluster.deny(verb, plural, message=message, reason=reason, code=CODES[reason], times=times)

    return Side(
        kube=kubectl,
        put=cluster.put,
        add_log=cluster.add_log,
        previous_logs=cluster.previous_logs,
        deny=deny,
    )


@pytest.fixture(params=["fake", "stand-in"])
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Side]:
    if request.param == "fake":
        yield fake_side()
    else:
        yield standin_side(request.getfixturevalue("kube_api"), tmp_path)


def configmap(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"name": name},
    }


def names(objects: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objects]


# -- label selectors ----------------------------------------------------------------------


def test_label_selectors_choose_what_a_list_returns(side: Side) -> None:
    kube = side.kube
    kube.apply(
        [
            configmap("ours-db", **{FLUX_LABEL: "alga", "tier": "db"}),
            configmap("ours-web", **{FLUX_LABEL: "alga", "tier": "web"}),
            configmap("foreign", **{FLUX_LABEL: "someone-else"}),
            configmap("unlabelled"),
            configmap("elsewhere", "kube-system", **{FLUX_LABEL: "alga"}),
        ],
        field_manager=FIELD_MANAGER,
    )
    ours = f"{FLUX_LABEL}=alga"

    def listed(selector: str | None, namespace: str | None = "default") -> list[str]:
        found = names(kube.list("configmaps", namespace, selector=selector))
        return [n for n in found if n != "kube-root-ca.crt"]

    assert listed(ours) == ["ours-db", "ours-web"]
    assert listed(f"{FLUX_LABEL}==alga") == ["ours-db", "ours-web"]
    assert listed(f"{FLUX_LABEL}!=alga") == ["foreign", "unlabelled"]
    assert listed("tier") == ["ours-db", "ours-web"]
    assert listed("!tier") == ["foreign", "unlabelled"]
    assert listed(f"{ours},tier=db") == ["ours-db"]
    assert listed("tier=none") == []
    assert listed(None) == ["foreign", "ours-db", "ours-web", "unlabelled"]
    assert listed(ours, None) == ["ours-db", "ours-web", "elsewhere"]  # namespaces in order


# -- server-side apply ----------------------------------------------------------------------


def deployment(image: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "web", "image": image}]}},
        },
    }


def test_apply_merges_into_what_is_there_and_keeps_the_status(side: Side) -> None:
    kube = side.kube
    status = {"pinned": True, "readyReplicas": 1, "observedGeneration": 1}
    side.put({**deployment("web:1", 1), "status": status})
    kube.apply([deployment("web:2", 2)], field_manager=FIELD_MANAGER)
    found = kube.get("deployments.apps", "web", "default")
    assert found is not None
    assert found["status"] == status  # a controller's status survives an apply
    assert found["spec"]["replicas"] == 2
    assert found["spec"]["template"]["spec"]["containers"] == [{"name": "web", "image": "web:2"}]
    # A configuration's own status is not applied either.
    kube.apply(
        [{**deployment("web:2", 2), "status": {"readyReplicas": 99}}], field_manager=FIELD_MANAGER
    )
    again = kube.get("deployments.apps", "web", "default")
    assert again is not None
    assert again["status"] == status


def test_apply_drops_what_it_stopped_applying_and_keeps_others_fields(side: Side) -> None:
    kube = side.kube
    first = configmap("c", tier="db", app="x")
    first["data"] = {"a": "1", "b": "2"}
    kube.apply([first], field_manager=FIELD_MANAGER)
    kube.patch("configmaps", "c", "default", {"data": {"theirs": "kept"}})
    second = configmap("c", tier="db")
    second["data"] = {"a": "2"}
    kube.apply([second], field_manager=FIELD_MANAGER)
    found = kube.get("configmaps", "c", "default")
    assert found is not None
    assert found["data"] == {"a": "2", "theirs": "kept"}
    assert found["metadata"]["labels"] == {"tier": "db"}


def test_apply_file_applies_every_document(side: Side, tmp_path: Path) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: one, namespace: default}\n"
        "data: {k: '1'}\n---\napiVersion: v1\nkind: ConfigMap\n"
        "metadata: {name: two, namespace: default}\ndata: {k: '2'}\n"
    )
    side.kube.apply_file(path, field_manager=FIELD_MANAGER)
    for name, value in (("one", "1"), ("two", "2")):
        found = side.kube.get("configmaps", name, "default")
        assert found is not None
        assert found["data"] == {"k": value}


# -- missing objects ------------------------------------------------------------------------


def test_a_missing_object_is_none_to_get_an_error_to_patch_and_fine_to_delete(
    side: Side,
) -> None:
    kube = side.kube
    assert kube.get("configmaps", "nope", "default") is None
    with pytest.raises(KubeError) as caught:  # the seam's error, not a KeyError
        kube.patch("configmaps", "nope", "default", {"data": {"a": "1"}})
    assert "(NotFound)" in caught.value.message
    assert 'configmaps "nope" not found' in caught.value.output
    kube.delete("configmaps", "nope", "default")  # absent: nothing to do
    assert kube.create(configmap("made")) is True
    assert kube.create({**configmap("made"), "data": {"name": "changed"}}) is False
    made = kube.get("configmaps", "made", "default")
    assert made is not None
    assert made["data"] == {"name": "made"}  # an existing object is left untouched
    kube.delete("configmaps", "made", "default")
    assert kube.get("configmaps", "made", "default") is None


# -- logs -----------------------------------------------------------------------------------


def pod(name: str, phase: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": phase, "pinned": True},
    }


def test_logs_tail_and_a_finished_pods_follow(side: Side) -> None:
    kube = side.kube
    side.put(pod("smoke", "Succeeded"))
    side.add_log("default", "smoke", "line 1", "line 2", "line 3")
    assert kube.logs("default", "smoke") == "line 1\nline 2\nline 3\n"
    assert kube.logs("default", "smoke", tail=2) == "line 2\nline 3\n"
    assert list(kube.follow_logs("default", "smoke", tail=2)) == ["line 2", "line 3"]
    side.put(pod("quiet", "Succeeded"))
    assert kube.logs("default", "quiet") == ""


def test_logs_of_the_previous_instance(side: Side) -> None:
    """The support bundle asks for the previous instance of a container that restarted."""
    side.put(pod("crashy", "Running"))
    side.add_log("default", "crashy", "now")
    side.previous_logs[("default", "crashy")] = ["before 1", "before 2"]
    assert side.kube.logs("default", "crashy", container="c", previous=True) == (
        "before 1\nbefore 2\n"
    )
    assert side.kube.logs("default", "crashy", container="c", tail=1, previous=True) == (
        "before 2\n"
    )
    assert side.kube.logs("default", "crashy", container="c") == "now\n"
    side.put(pod("fresh", "Running"))
    with pytest.raises(KubeError, match='previous terminated container "c" in pod "fresh"'):
        side.kube.logs("default", "fresh", container="c", previous=True)


def test_logs_per_container_with_timestamps_since_time_and_limits(side: Side) -> None:
    """What the log viewer reads: one container's lines, stamped as the kubelet stamps them
    (RFC 3339 with nanoseconds, in order), from a time on, the last few, cut at a size."""
    kube = side.kube
    two = pod("two", "Succeeded")
    two["spec"]["containers"] = [{"name": "app", "image": "x"}, {"name": "side", "image": "x"}]
    side.put(two)
    side.add_log("default", "two", "a 1", "a 2", "a 3", container="app")
    side.add_log("default", "two", "s 1", container="side")
    assert kube.logs("default", "two", container="app") == "a 1\na 2\na 3\n"
    assert kube.logs("default", "two", container="side") == "s 1\n"
    stamped = kube.logs("default", "two", container="app", timestamps=True, tail=2).splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["a 2", "a 3"]
    stamps = [parse_cursor(line.split(" ", 1)[0]) for line in stamped]
    assert stamps == sorted(stamps)
    followed = list(kube.follow_logs("default", "two", container="app", tail=1, timestamps=True))
    assert followed == stamped[1:]
    everything = kube.logs("default", "two", container="app", since_time="2000-01-01T00:00:00Z")
    assert everything == "a 1\na 2\na 3\n"
    assert kube.logs("default", "two", container="app", since_time="2999-01-01T00:00:00Z") == ""
    assert kube.logs("default", "two", container="app", limit_bytes=5) == "a 1\na"
    with pytest.raises(KubeError, match="container web is not valid for pod two"):
        kube.logs("default", "two", container="web")


def test_logs_of_a_missing_pod_are_the_seams_error(side: Side) -> None:
    with pytest.raises(KubeError, match=r'pods "ghost" not found') as caught:
        side.kube.logs("default", "ghost", tail=50)
    assert "not found" in caught.value.output  # what a blocker shows
    with pytest.raises(KubeError, match="not found"):
        list(side.kube.follow_logs("default", "ghost"))


# -- refused requests -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "call"),
    [
        ("apply", lambda k: k.apply([configmap("c")], field_manager=FIELD_MANAGER)),
        ("create", lambda k: k.create(configmap("c"))),
        ("get", lambda k: k.get("configmaps", "c", "default")),
        ("list", lambda k: k.list("configmaps", "default")),
        ("patch", lambda k: k.patch("configmaps", "c", "default", {"data": {"a": "1"}})),
        ("delete", lambda k: k.delete("configmaps", "c", "default")),
    ],
)
def test_a_refused_request_is_the_seams_error_with_the_servers_reason_and_message(
    side: Side, verb: str, call: Callable[[Kube], object]
) -> None:
    side.put(configmap("c"))
    side.deny(verb, "configmaps", message="denied by the quota policy", reason="Forbidden")
    with pytest.raises(KubeError) as caught:
        call(side.kube)
    assert "(Forbidden)" in caught.value.message
    assert "denied by the quota policy" in caught.value.output


def test_a_refusal_for_a_number_of_times_then_the_request_goes_through(side: Side) -> None:
    side.put(configmap("c"))
    side.deny("patch", "configmaps", message="webhook unavailable", reason="InternalError", times=1)
    with pytest.raises(KubeError, match=r"\(InternalError\)"):
        side.kube.patch("configmaps", "c", "default", {"data": {"a": "1"}})
    side.kube.patch("configmaps", "c", "default", {"data": {"a": "1"}})
    found = side.kube.get("configmaps", "c", "default")
    assert found is not None
    assert found["data"] == {"name": "c", "a": "1"}


def test_readiness(side: Side) -> None:
    assert side.kube.readyz() == "ok"
