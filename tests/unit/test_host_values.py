"""Runtime values: profile values < pinned images < operator intent, on every render."""

from __future__ import annotations

from typing import Any

import yaml

from host_service.intent import SetupIntent
from host_service.release import SERVICES, parse_release, profile_values_file
from host_service.values import SECRET_NAME, deep_merge, render_all, render_service
from tests.unit.test_release import sample


def release_with(values: dict[str, str], **changes: Any) -> Any:
    document = sample()
    document["profileValues"] = {
        profile_values_file(s, "single-node"): values.get(s, f"name: {s}\n") for s in SERVICES
    }
    document.update(changes)
    return parse_release(document, source="test")


INTENT = SetupIntent(app_url="https://psa.example.com", channel="stable")


def test_deep_merge_prefers_the_override_and_keeps_the_rest() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert deep_merge(base, {"a": {"b": 2, "c": [3]}, "e": 5}) == {
        "a": {"b": 2, "c": [3]}, "d": 1, "e": 5}  # fmt: skip
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # not mutated


def test_pinned_image_overrides_the_profile() -> None:
    release = release_with({"alga-core": "image:\n  repository: old\n  tag: '0.1'\n  pull: x\n"})
    values = render_service(release, INTENT, "alga-core", workloads="msp")
    image = release.images["algaCore"]
    assert values["image"] == {
        "repository": image.repository,
        "tag": image.tag,
        "digest": image.digest,
        "pull": "x",
    }
    assert "image" not in render_service(release, INTENT, "db", workloads="msp")


def test_operator_intent_wins_over_profile_values() -> None:
    release = release_with(
        {"alga-core": "global:\n  appUrl: https://default.invalid\n  keep: me\n"}
    )
    values = render_service(release, INTENT, "alga-core", workloads="msp")
    assert values["global"]["appUrl"] == "https://psa.example.com"
    assert values["global"]["appHost"] == "psa.example.com"
    assert values["global"]["keep"] == "me"
    assert values["global"]["secretName"] == SECRET_NAME


def test_operator_intent_survives_a_new_release() -> None:
    """An update renders from the new release; the operator's app URL is applied again."""
    first = render_all(release_with({}), INTENT, workloads="msp")
    newer = release_with(
        dict.fromkeys(SERVICES, "global:\n  appUrl: https://changed-by-release.invalid\n"),
        version="1.5.0",
    )
    second = render_all(newer, INTENT, workloads="msp")
    for service in SERVICES:
        assert yaml.safe_load(first[service])["global"]["appUrl"] == "https://psa.example.com"
        rendered = yaml.safe_load(second[service])
        assert rendered["global"]["appUrl"] == "https://psa.example.com"
        assert rendered["global"]["applianceRelease"] == "1.5.0"


def test_rendering_is_deterministic_and_secret_free() -> None:
    release = release_with({})
    once = render_all(release, INTENT, workloads="msp")
    assert once == render_all(release, INTENT, workloads="msp")
    assert list(once) == list(SERVICES)
    proxied = SetupIntent(
        app_url="https://psa.example.com", channel="stable", proxy="http://u:pw-secret@proxy:3128"
    )
    assert all(
        "pw-secret" not in text for text in render_all(release, proxied, workloads="msp").values()
    )


def test_merged_values_share_nothing_with_their_inputs() -> None:
    base = {"a": {"list": [1]}, "keep": {"deep": [1]}}
    override = {"a": {"list": [2], "new": {"x": [3]}}}
    merged = deep_merge(base, override)
    merged["keep"]["deep"].append(9)
    merged["a"]["new"]["x"].append(9)
    assert base == {"a": {"list": [1]}, "keep": {"deep": [1]}}
    assert override == {"a": {"list": [2], "new": {"x": [3]}}}


def test_the_global_block_is_every_operator_value_under_its_chart_name() -> None:
    release = release_with({})
    values = render_service(release, INTENT, "redis", workloads="tenant-a")
    assert values["global"] == {
        "appUrl": "https://psa.example.com",
        "appHost": "psa.example.com",
        "appScheme": "https",
        "applianceRelease": release.version,
        "valuesProfile": "single-node",
        "secretName": SECRET_NAME,
        "namespace": "tenant-a",
    }
    rendered = yaml.safe_load(render_all(release, INTENT, workloads="tenant-a")["redis"])
    assert rendered["global"]["namespace"] == "tenant-a"


def test_an_app_url_without_a_host_renders_an_empty_host() -> None:
    # Setup validation refuses such a URL; rendering still must not write a placeholder.
    intent = SetupIntent(app_url="https:///path", channel="stable")
    values = render_service(release_with({}), intent, "redis", workloads="msp")
    assert values["global"]["appHost"] == ""
    assert values["global"]["appScheme"] == "https"


def test_values_text_is_block_style_with_sorted_keys() -> None:
    release = release_with({"redis": "zeta: 1\nalpha:\n  - b\n  - a\n"})
    text = render_all(release, INTENT, workloads="msp")["redis"]
    assert text.startswith("alpha:\n- b\n- a\nglobal:\n  appHost: psa.example.com\n")
    assert text.endswith("zeta: 1\n")
