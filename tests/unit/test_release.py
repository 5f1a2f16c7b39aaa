"""Release manifest schema and loader: valid input, and every class of mistake named by path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from host_service.release import (
    SCHEMA_V1,
    SERVICES,
    ChartRef,
    ReleaseError,
    canonical_json,
    load_release,
    parse_release,
    profile_values_file,
    values_configmap_name,
)

DIGEST = "sha256:" + "a" * 64


def sample() -> dict[str, Any]:
    image = {"repository": "ghcr.io/nine-minds/alga-psa", "tag": "1.4.0", "digest": DIGEST}
    return {
        "schema": SCHEMA_V1,
        "version": "1.4.0",
        "channel": "stable",
        "valuesProfile": "single-node",
        "images": {
            "algaCore": image,
            "workflowWorker": {**image, "repository": "ghcr.io/nine-minds/workflow-worker"},
            "emailService": {"repository": "ghcr.io/nine-minds/email-service", "tag": "1.4.0"},
            "temporalWorker": {
                "repository": "ghcr.io/nine-minds/temporal-worker",
                "digest": DIGEST,
            },
        },
        "controlPlane": {"repository": "ghcr.io/nine-minds/appliance-control", "tag": "0.3.1"},
        "config": {"repository": "ghcr.io/nine-minds/alga-appliance-config", "digest": DIGEST},
        "charts": {
            "alga-core": {
                "repository": "ghcr.io/nine-minds/alga-appliance-charts/alga-core",
                "version": "1.4.0",
                "digest": DIGEST,
            },
            "db": {
                "repository": "ghcr.io/nine-minds/alga-appliance-charts/db",
                "version": "15.5.2",
                "digest": DIGEST,
            },
        },
        "profileValues": {
            profile_values_file(s, "single-node"): f"replicaCount: 1\nname: {s}\n" for s in SERVICES
        },
    }


def problems_of(document: Any) -> list[str]:
    with pytest.raises(ReleaseError) as caught:
        parse_release(document, source="release.json")
    return caught.value.problems


def test_valid_release_parses() -> None:
    release = parse_release(json.dumps(sample()), source="release.json")
    assert release.version == "1.4.0"
    assert release.images["algaCore"].reference == f"ghcr.io/nine-minds/alga-psa:1.4.0@{DIGEST}"
    assert release.images["emailService"].reference == "ghcr.io/nine-minds/email-service:1.4.0"
    assert release.config.url == "oci://ghcr.io/nine-minds/alga-appliance-config"
    assert release.values_for("db") == "replicaCount: 1\nname: db\n"
    assert values_configmap_name("alga-core") == "alga-values-alga-core"


def test_canonical_json_is_stable_across_key_order() -> None:
    document = sample()
    shuffled = dict(reversed(list(document.items())))
    assert canonical_json(document) == canonical_json(shuffled)
    assert parse_release(canonical_json(document), source="x").to_json() == canonical_json(document)


def test_unknown_schema_version_is_refused() -> None:
    document = sample() | {"schema": "alga.appliance.release/v2"}
    [problem] = problems_of(document)
    assert "schema: unsupported release schema 'alga.appliance.release/v2'" in problem
    assert SCHEMA_V1 in problem


def test_missing_schema_is_refused() -> None:
    document = sample()
    del document["schema"]
    assert "unsupported release schema missing" in problems_of(document)[0]


def test_not_json() -> None:
    assert problems_of(b"{not json")[0].startswith("release.json: not valid JSON")


def test_every_problem_is_reported_with_its_path() -> None:
    document = copy.deepcopy(sample())
    document["valueProfile"] = document.pop("valuesProfile")
    document["config"]["digest"] = "sha256:1234"
    document["images"]["algaCore"] = {"repository": "ghcr.io/nine-minds/alga-psa"}
    document["version"] = "1.4.0+build.7"
    problems = problems_of(document)
    joined = "\n".join(problems)
    assert "release.json: valueProfile: unknown key (did you mean 'valuesProfile'?)" in joined
    assert "release.json: valuesProfile: required key is missing" in joined
    assert "release.json: config.digest: expected a digest sha256:<64 lowercase hex>" in joined
    assert "release.json: images.algaCore.digest: required key is missing" in joined
    assert "release.json: version: expected a version usable as an OCI tag" in joined


def test_missing_profile_values_file() -> None:
    document = sample()
    del document["profileValues"]["redis.single-node.yaml"]
    assert problems_of(document) == [
        "release.json: profileValues.redis.single-node.yaml: missing (profile 'single-node' "
        "needs it)"
    ]


def test_profile_values_for_another_profile_or_service() -> None:
    document = sample()
    document["profileValues"]["db.ha.yaml"] = "a: 1\n"
    document["profileValues"]["mailhog.single-node.yaml"] = "a: 1\n"
    problems = problems_of(document)
    assert "release.json: profileValues.db.ha.yaml: not for profile 'single-node'" in problems
    assert "release.json: profileValues.mailhog.single-node.yaml: unknown service 'mailhog'" in (
        problems
    )


def test_profile_values_must_be_yaml_mappings() -> None:
    document = sample()
    document["profileValues"]["db.single-node.yaml"] = "a: [1,\n"
    document["profileValues"]["redis.single-node.yaml"] = "- a list\n"
    problems = problems_of(document)
    assert problems[0].startswith("release.json: profileValues.db.single-node.yaml: not valid YAML")
    assert (
        problems[1] == "release.json: profileValues.redis.single-node.yaml: expected a YAML mapping"
    )


def test_charts_are_checked_and_pinned_by_digest() -> None:
    document = sample()
    document["charts"]["Alga_Core"] = {"repository": "ghcr.io/x/y", "version": "latest",
                                       "digest": DIGEST}  # fmt: skip
    document["charts"]["db"].pop("digest")
    problems = problems_of(document)
    assert any(
        p.startswith("release.json: charts.Alga_Core: expected a lowercase name") for p in problems
    )
    assert any("charts.Alga_Core.version: expected a chart version" in p for p in problems)
    # Issue 12: a chart by version only would be pulled by tag.
    assert "release.json: charts.db.digest: required key is missing" in problems
    document = sample()
    document["charts"] = {}
    assert problems_of(document) == [
        "release.json: charts: empty: a release names the chart of every HelmRelease"
    ]


def test_load_release_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match=r"missing\.json: cannot read"):
        load_release(tmp_path / "missing.json")
    path = tmp_path / "release.json"
    path.write_bytes(canonical_json(sample()))
    assert load_release(path).channel == "stable"


# -- rendering (isobuild.release.render) and the published artifact (release.publish) -----------


def test_render_from_the_shipped_profile() -> None:
    from host_service.release import RELEASE_MEDIA_TYPE, ConfigBundleRef, ImageRef
    from isobuild.release.publish import release_artifact
    from isobuild.release.render import parse_image_options, profile_values, render_release
    from isobuild.resources import FLUX_DIR

    images = parse_image_options(
        (
            "algaCore=ghcr.io/nine-minds/alga-psa:1.4.0",
            f"workflowWorker=ghcr.io/nine-minds/workflow-worker@{DIGEST}",
            "emailService=ghcr.io/nine-minds/email-service:1.4.0",
            "temporalWorker=ghcr.io/nine-minds/temporal-worker:1.4.0",
        )
    )
    values = profile_values(FLUX_DIR, "single-node")
    assert sorted(values) == sorted(profile_values_file(s, "single-node") for s in SERVICES)
    release = render_release(
        version="1.4.0",
        channel="stable",
        profile="single-node",
        images=images,
        control_plane=ImageRef("ghcr.io/nine-minds/appliance-control", "0.3.1"),
        config=ConfigBundleRef("ghcr.io/nine-minds/alga-appliance-config", DIGEST),
        charts={"db": ChartRef("ghcr.io/nine-minds/alga-appliance-charts/db", "0.1.0", DIGEST)},
        values=values,
    )
    assert release.images["workflowWorker"].digest == DIGEST
    artifact = release_artifact(release)
    assert artifact.config.media_type == RELEASE_MEDIA_TYPE
    assert artifact.config.data == release.to_json()
    assert [b.media_type for b in artifact.layers] == ["application/vnd.oci.empty.v1+json"]
    assert release_artifact(release).digest == artifact.digest


def test_image_options_report_every_problem() -> None:
    from isobuild.errors import ConfigError
    from isobuild.release.render import parse_image_options

    with pytest.raises(ConfigError) as caught:
        parse_image_options(
            ("algaCore=ghcr.io/x/y", "algaCore=ghcr.io/x/y:1", "emailService=Ghcr.io/X:1", "x")
        )
    assert caught.value.problems == [
        "--image algaCore: 'ghcr.io/x/y' has neither a tag nor a digest: pin one",
        "--image algaCore: given twice",
        "--image emailService: 'Ghcr.io/X:1': 'X' is not a valid repository name",
        "--image 'x': expected KEY=REF with KEY one of algaCore, workflowWorker, emailService, "
        "temporalWorker",
        "--image workflowWorker=REF: missing",
        "--image temporalWorker=REF: missing",
    ]


def test_pin_digests_only_resolves_tag_only_images() -> None:
    from host_service.release import ImageRef
    from isobuild.release.render import pin_digests

    asked: list[str] = []

    def resolve(ref: ImageRef) -> str:
        asked.append(ref.reference)
        return "sha256:" + "d" * 64

    pinned = pin_digests(
        {"a": ImageRef("r.io/a", "1"), "b": ImageRef("r.io/b", "2", DIGEST)}, resolve
    )
    assert asked == ["r.io/a:1"]
    assert pinned["a"].digest == "sha256:" + "d" * 64
    assert pinned["b"].digest == DIGEST


def test_unknown_profile_is_named(tmp_path: Path) -> None:
    from isobuild.errors import ConfigError
    from isobuild.release.render import profile_values
    from isobuild.resources import FLUX_DIR

    with pytest.raises(ConfigError, match=r"profiles/ha/values: no such values profile") as caught:
        profile_values(FLUX_DIR, "ha")
    assert caught.value.hint == "profiles with values: single-node"


def test_a_bad_release_file_is_named_in_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "release.json"
    document = sample()
    del document["version"]
    del document["channel"]
    path.write_bytes(canonical_json(document))
    with pytest.raises(ReleaseError) as caught:
        load_release(path)
    problems = caught.value.problems
    assert len(problems) == 2
    assert all(p.startswith(f"{path}: ") for p in problems)
    assert str(caught.value) == "\n".join(problems)


def test_a_release_error_keeps_its_hint() -> None:
    error = ReleaseError(["a", "b"], hint="pin another release")
    assert (str(error), error.hint, error.problems) == ("a\nb", "pin another release", ["a", "b"])
    assert ReleaseError("one").problems == ["one"]


def test_every_bad_values_file_is_named_with_its_line() -> None:
    document = sample()
    values = document["profileValues"]
    values["db.single-node.yaml"] = "a: 1\nb: [\n"
    values["redis.single-node.yaml"] = "- a list\n"
    values["pgbouncer.single-node.yaml"] = "a: 1\n\tb: 2\n"
    assert problems_of(document) == [
        "release.json: profileValues.db.single-node.yaml: not valid YAML (line 3)",
        "release.json: profileValues.pgbouncer.single-node.yaml: not valid YAML (line 2)",
        "release.json: profileValues.redis.single-node.yaml: expected a YAML mapping",
    ]


def test_a_values_file_yaml_cannot_even_read_has_no_line() -> None:
    document = sample()
    document["profileValues"]["db.single-node.yaml"] = "a: \x07\n"  # a control character
    assert problems_of(document) == [
        "release.json: profileValues.db.single-node.yaml: not valid YAML"
    ]


def test_canonical_json_is_sorted_indented_utf8_with_a_final_newline() -> None:
    assert canonical_json({"b": "ü", "a": [1]}) == (
        '{\n  "a": [\n    1\n  ],\n  "b": "ü"\n}\n'.encode()
    )


def test_the_schema_is_loaded_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    from host_service import release as module

    monkeypatch.setattr(module, "_SCHEMA", None)
    assert parse_release(sample(), source="release.json").version == "1.4.0"
    assert module._SCHEMA is not None


def test_an_unknown_schema_says_which_are_read_and_what_to_do() -> None:
    document = sample()
    document["schema"] = "alga.appliance.release/v9"
    with pytest.raises(ReleaseError) as caught:
        parse_release(document, source="release.json")
    assert caught.value.hint == "update the appliance, or publish the release in a supported schema"
    assert str(caught.value).endswith("this version reads alga.appliance.release/v1")
    with pytest.raises(ReleaseError) as caught:
        parse_release("[1]", source="release.json")
    assert str(caught.value) == "release.json: expected a JSON object, got list"


def test_every_values_file_of_another_profile_is_named() -> None:
    document = sample()
    document["profileValues"]["db.other.yaml"] = "a: 1\n"
    document["profileValues"]["redis.other.yaml"] = "a: 1\n"
    assert problems_of(document) == [
        "release.json: profileValues.db.other.yaml: not for profile 'single-node'",
        "release.json: profileValues.redis.other.yaml: not for profile 'single-node'",
    ]


def test_the_config_bundle_tag_is_kept() -> None:
    document = sample()
    document["config"]["tag"] = "1.4.0"
    assert parse_release(document, source="release.json").config.tag == "1.4.0"


def test_every_values_file_of_an_unknown_service_is_named() -> None:
    document = sample()
    document["profileValues"]["aaa.single-node.yaml"] = "a: 1\n"
    document["profileValues"]["zzz.single-node.yaml"] = "a: 1\n"
    assert problems_of(document) == [
        "release.json: profileValues.aaa.single-node.yaml: unknown service 'aaa'",
        "release.json: profileValues.zzz.single-node.yaml: unknown service 'zzz'",
    ]
