"""What a log request names: every parameter validated, with a message naming what to send."""

from __future__ import annotations

import pytest

from host_service.logs.target import (
    InvalidLogRequest,
    LogTarget,
    NoSuchLog,
    count,
    cursor,
    parse_target,
    pick_container,
)

OURS = ("flux-system", "alga-system", "msp")


def problems(args: dict[str, str]) -> dict[str, str]:
    with pytest.raises(InvalidLogRequest) as caught:
        parse_target(args, OURS)
    return caught.value.fields


def test_a_valid_request_names_the_container_and_its_instance() -> None:
    target = parse_target(
        {"namespace": "msp", "pod": "alga-core-6d9f-x2x4", "container": "app", "previous": "1"},
        OURS,
    )
    assert target == LogTarget(
        namespace="msp", pod="alga-core-6d9f-x2x4", container="app", previous=True
    )
    assert target.key == ("msp", "alga-core-6d9f-x2x4", "app")
    assert target.query() == "namespace=msp&pod=alga-core-6d9f-x2x4&container=app&previous=1"


def test_pod_and_container_names_must_be_kubernetes_names() -> None:
    found = problems({"namespace": "msp", "pod": "Bad_Pod", "container": "-x"})
    assert "DNS-1123 subdomain" in found["pod"]
    assert "DNS-1123 label" in found["container"]
    assert problems({"namespace": "msp", "pod": "a" * 254})["pod"] == (
        "at most 253 characters, got 254"
    )
    assert problems({"namespace": "msp"})["pod"] == "required"
    assert problems({"namespace": "msp", "pod": "p", "container": "c" * 64})["container"] == (
        "at most 63 characters, got 64"
    )
    # a pod name may have dots (a subdomain); a container name may not
    assert parse_target({"namespace": "msp", "pod": "web.v2"}, OURS).pod == "web.v2"
    assert "label" in problems({"namespace": "msp", "pod": "p", "container": "a.b"})["container"]


def test_only_the_appliances_namespaces_unless_all_is_asked_for() -> None:
    message = problems({"namespace": "kube-system", "pod": "coredns-1"})["namespace"]
    assert "not one of the appliance's namespaces (flux-system, alga-system, msp)" in message
    assert "all=1" in message
    target = parse_target({"namespace": "kube-system", "pod": "coredns-1", "all": "1"}, OURS)
    assert target.all_namespaces
    assert target.query().endswith("&all=1")
    assert (
        "DNS-1123 label"
        in problems({"namespace": "Kube System", "pod": "p", "all": "1"})["namespace"]
    )


def test_flags_are_one_or_zero_and_every_problem_is_named_at_once() -> None:
    found = problems({"namespace": "", "pod": "", "previous": "maybe", "all": "2"})
    assert set(found) == {"namespace", "pod", "previous", "all"}
    assert found["previous"] == "expected 1 or 0, got 'maybe'"


def test_line_counts_and_cursors() -> None:
    assert count({}, "tail", default=500, most=5000) == 500
    assert count({"tail": "20"}, "tail", default=500, most=5000) == 20
    for bad in ("0", "-1", "5001", "ten", "1e3", "\u00b2", "\u00b9\u00b2", "\uff11\uff12"):
        with pytest.raises(InvalidLogRequest, match="whole number from 1 to 5000"):
            count({"tail": bad}, "tail", default=500, most=5000)
    assert cursor({}, "before") is None
    assert cursor({"before": "2026-12-05T07:00:00Z"}, "before") is not None
    with pytest.raises(InvalidLogRequest) as caught:
        cursor({"before": "last tuesday"}, "before")
    assert "RFC 3339" in caught.value.fields["before"]


def pod(*containers: str, init: tuple[str, ...] = ()) -> dict[str, object]:
    return {
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": c} for c in containers],
            "initContainers": [{"name": c} for c in init],
        },
    }


def test_the_container_is_checked_against_the_pod() -> None:
    target = parse_target({"namespace": "msp", "pod": "p"}, OURS)
    assert pick_container(pod("app"), target).container == "app"  # the only one
    with pytest.raises(InvalidLogRequest) as caught:
        pick_container(pod("app", "sidecar"), target)
    assert caught.value.fields["container"] == (
        "required: pod 'p' in namespace 'msp' has containers app, sidecar"
    )
    named = parse_target({"namespace": "msp", "pod": "p", "container": "migrate"}, OURS)
    assert pick_container(pod("app", init=("migrate",)), named) == named
    with pytest.raises(NoSuchLog, match="has no container 'migrate'; its containers: app"):
        pick_container(pod("app"), named)
    with pytest.raises(NoSuchLog, match="pod 'p' in namespace 'msp' does not exist"):
        pick_container(None, named)
