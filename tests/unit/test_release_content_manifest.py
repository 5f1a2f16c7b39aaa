"""What a release manifest may hold: nesting, size in bytes, registry hosts, and the config
digest fetch_release reads; each refused as a ReleaseError naming the key, never a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from host_service import release
from host_service.oci import Manifest, parse_reference, sha256_digest
from host_service.release import (
    RELEASE_MEDIA_TYPE,
    SCHEMA_FILE,
    ChartRef,
    ConfigBundleRef,
    ImageRef,
    ReleaseError,
    canonical_json,
    fetch_release,
    load_release,
    parse_release,
)
from isobuild.errors import ConfigError
from isobuild.release.render import render_release
from tests.unit.test_release import DIGEST, sample

DB = "db.single-node.yaml"
MAX_RELEASE_BYTES = 8 * 1024 * 1024  # what fetch_release reads of a config blob
WIDE = "中"  # three bytes in UTF-8, one character for JSON Schema's maxLength


def problems_of(document: Any) -> list[str]:
    with pytest.raises(ReleaseError) as caught:
        parse_release(document, source="release.json")
    return caught.value.problems


def nested(levels: int) -> str:
    """A values file whose mapping holds ``levels`` - 1 lists, one in the other."""
    return "a: " + "[" * (levels - 1) + "]" * (levels - 1)


def with_values(**texts: str) -> dict[str, Any]:
    document = sample()
    for service, text in texts.items():
        document["profileValues"][f"{service.replace('_', '-')}.single-node.yaml"] = text
    return document


def test_deeply_nested_values_are_named_not_a_traceback() -> None:
    document = with_values(db="a: " + "[" * 5000 + "]" * 5000)
    assert len(json.dumps(document)) < 1024 * 1024, "schema-valid: under the 1 MiB a value has"
    assert problems_of(document) == [
        f"release.json: profileValues.{DB}: too deeply nested (more than 100 levels)"
    ]
    # Read back from JSON bytes, as validate and fetch_release do.
    assert problems_of(json.dumps(document).encode()) == problems_of(document)


def test_a_deeply_nested_manifest_file_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ReleaseError) as caught:
        load_release(path)
    assert caught.value.problems == [f"{path}: not valid JSON: too deeply nested"]


def test_values_nest_no_deeper_than_the_values_step_can_write_back() -> None:
    fine = nested(100)
    parse_release(with_values(db=fine), source="release.json")
    yaml.safe_dump(yaml.safe_load(fine))  # what host_service.values does with them
    assert problems_of(with_values(db=nested(101))) == [
        f"release.json: profileValues.{DB}: too deeply nested (more than 100 levels)"
    ]


def test_yaml_aliases_neither_loop_nor_explode() -> None:
    assert problems_of(with_values(db="a: &a [*a]")) == [
        f"release.json: profileValues.{DB}: too deeply nested (more than 100 levels)"
    ]
    # 2**90 paths through 91 shared lists: walked once per node, not per path.
    lines = ["l0: &l0 [1, 2]"] + [f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}]" for i in range(1, 91)]
    parse_release(with_values(db="\n".join(lines)), source="release.json")


def test_the_size_limit_counts_utf8_bytes_as_published() -> None:
    text = "a: " + WIDE * 1_000_000
    document = with_values(db=text, redis=text, alga_core=text)
    with pytest.raises(ReleaseError) as caught:
        parse_release(document, source="release.json")
    size = len(canonical_json(document))
    assert caught.value.problems == [
        f"release.json: profileValues: the release is {size} bytes as published (canonical "
        f"JSON), more than the {MAX_RELEASE_BYTES} an appliance reads; the largest value is "
        f"alga-core.single-node.yaml (3000003 bytes)"
    ]
    assert caught.value.hint is not None
    assert "UTF-8 bytes" in caught.value.hint


def test_a_release_of_exactly_the_limit_is_read() -> None:
    wide = "a: " + WIDE * 1_000_000
    document = with_values(db=wide, redis=wide)
    others = sorted(set(document["profileValues"]) - {DB, "redis.single-node.yaml"})
    for name in others:  # each value has at most 1 Mi characters
        document["profileValues"][name] = "a: "
        room = MAX_RELEASE_BYTES - len(canonical_json(document))
        document["profileValues"][name] += "x" * min(room, 1_000_000)
    assert len(canonical_json(document)) == MAX_RELEASE_BYTES
    parse_release(document, source="release.json")
    document["profileValues"][DB] += "x"
    assert "more than the 8388608 an appliance reads" in problems_of(document)[0]


def test_the_limit_is_what_fetch_release_reads() -> None:
    registry = FakeRegistry(canonical_json(sample()))
    fetch_release(registry, "org/r-release", "stable")  # type: ignore[arg-type]
    assert registry.limits == [MAX_RELEASE_BYTES] == [release.MAX_RELEASE_BYTES]


def test_render_refuses_what_no_appliance_could_read() -> None:
    text = "a: " + WIDE * 1_000_000
    values = dict(sample()["profileValues"])
    for service in ("db", "redis", "alga-core"):
        values[f"{service}.single-node.yaml"] = text
    with pytest.raises(ConfigError) as caught:
        render_release(
            version="1.4.0",
            channel="stable",
            profile="single-node",
            images={k: ImageRef("ghcr.io/o/i", "1") for k in sample()["images"]},
            control_plane=ImageRef("ghcr.io/o/c", "1"),
            config=ConfigBundleRef("ghcr.io/o/cfg", DIGEST),
            charts={"db": ChartRef("ghcr.io/o/charts/db", "0.1.0", DIGEST)},
            values=values,
        )
    assert "an appliance reads" in str(caught.value)


def test_a_lone_surrogate_does_not_stop_the_size_count() -> None:
    assert problems_of(with_values(db="a: \ud800")) == [
        f"release.json: profileValues.{DB}: not valid YAML"
    ]


# -- registry hosts ----------------------------------------------------------------------


def _schema_accepts(repository: str) -> bool:
    pattern = json.loads(SCHEMA_FILE.read_text())["$defs"]["repository"]["pattern"]
    return re.search(pattern, repository) is not None


@pytest.mark.parametrize(
    "repository",
    ["nine-minds/alga-psa", "alga-psa/x", "LOCALHOST/a", "localhostx/a", "library/nginx"],
)
def test_a_repository_without_a_registry_host_is_refused(repository: str) -> None:
    document = sample()
    document["images"]["algaCore"]["repository"] = repository
    document["charts"]["db"]["repository"] = repository
    document["config"]["repository"] = repository
    [chart, config, image] = sorted(problems_of(document))
    assert chart.startswith("release.json: charts.db.repository: expected registry/repository")
    assert config.startswith("release.json: config.repository: expected registry/repository")
    assert image.startswith("release.json: images.algaCore.repository: expected")
    assert "the registry is a host with a '.' or a port, or localhost" in image
    with pytest.raises(ValueError, match="expected registry/repository"):
        parse_reference(f"{repository}:1")


@pytest.mark.parametrize(
    "repository",
    ["ghcr.io/nine-minds/alga-psa", "localhost/a", "localhost:5000/a/b", "127.0.0.1:5000/x",
     "registry:5000/a", "docker.io/library/nginx", "a.b.c/x"],
)  # fmt: skip
def test_a_repository_with_a_registry_host_is_accepted(repository: str) -> None:
    assert _schema_accepts(repository)
    assert parse_reference(f"{repository}:1").registry == repository.split("/")[0]


# -- fetch_release's config digest ----------------------------------------------------------


class FakeRegistry:
    """One release artifact; get_blob refuses a malformed digest as RegistryClient does."""

    registry = "ghcr.io"

    def __init__(self, blob: bytes, *, config_digest: str | None = None) -> None:
        self.blob = blob
        self.limits: list[int] = []
        config = {
            "mediaType": RELEASE_MEDIA_TYPE,
            "digest": config_digest or sha256_digest(blob),
            "size": len(blob),
        }
        document = {"schemaVersion": 2, "config": config, "layers": []}
        data = json.dumps(document).encode()
        self.manifest = Manifest(
            sha256_digest(data), "application/vnd.oci.image.manifest.v1+json", data, document
        )

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        return self.manifest

    def get_blob(self, repository: str, digest: str, *, max_bytes: int) -> bytes:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise ValueError(f"{digest!r} is not a sha256 digest")  # RegistryClient's words
        self.limits.append(max_bytes)
        return self.blob


@pytest.mark.parametrize("digest", ["sha256:abc", "sha512:" + "a" * 128, "SHA256:" + "A" * 64])
def test_a_malformed_config_digest_is_named(digest: str) -> None:
    registry = FakeRegistry(canonical_json(sample()), config_digest=digest)
    with pytest.raises(ReleaseError) as caught:
        fetch_release(registry, "org/r-release", "stable")  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"ghcr.io/org/r-release:stable: manifest config.digest: expected sha256:<64 lowercase "
        f"hex>, got {digest!r}"
    )
    assert caught.value.hint == "the artifact is damaged: publish the release again"
    assert registry.limits == [], "no blob is asked for"


def test_deeply_nested_values_in_a_fetched_release_are_named() -> None:
    document = with_values(db="a: " + "[" * 5000 + "]" * 5000)
    blob = canonical_json(document)
    registry = FakeRegistry(blob)
    with pytest.raises(ReleaseError) as caught:
        fetch_release(registry, "org/r-release", "stable")  # type: ignore[arg-type]
    assert caught.value.problems == [
        f"ghcr.io/org/r-release:stable (config {sha256_digest(blob)}): profileValues.{DB}: "
        "too deeply nested (more than 100 levels)"
    ]


def test_validate_gives_the_size_hint_of_a_manifest_too_large(tmp_path: Path) -> None:
    # `release validate` gave its general hint ("fix the manifest or re-render it") for
    # every manifest problem: it never said what to make smaller.
    from click.testing import CliRunner

    from isobuild.cli import main

    text = "a: " + WIDE * 1_000_000
    manifest = tmp_path / "release.json"
    manifest.write_text(json.dumps(with_values(db=text, redis=text, alga_core=text)))
    done = CliRunner().invoke(main, ["release", "validate", str(manifest)])
    assert done.exit_code == 2, done.output
    assert "more than the 8388608 an appliance reads" in done.output
    assert "hint: values count in UTF-8 bytes: make the profile's values files smaller" in (
        done.output
    )


def test_too_deep_walks_past_scalars_and_nodes_seen_before() -> None:
    shared: list[Any] = []
    assert release.too_deep([[[]], "a scalar"], limit=2)  # the scalar is popped first
    assert release.too_deep([[[]], shared, shared], limit=2)  # so is the shared node, twice
    assert not release.too_deep([[], "a scalar", shared, shared], limit=2)


class Walked(list[Any]):
    """A list that counts how often it is walked, and fails at once on a second walk."""

    walks = 0

    def __iter__(self) -> Any:
        self.walks += 1
        assert self.walks == 1, "a node reached again at the same depth was walked again"
        return super().__iter__()


def test_too_deep_walks_a_node_shared_at_one_depth_once() -> None:
    chain = [Walked([1, 2])]
    for _ in range(29):  # 2**29 paths from the top: a walk per path would never end
        chain.append(Walked([chain[-1], chain[-1]]))
    assert not release.too_deep(chain[-1])
    assert [node.walks for node in chain] == [1] * 30


def test_values_after_one_too_deep_for_the_parser_are_still_checked() -> None:
    deep = "a: " + "[" * 5000 + "]" * 5000
    assert problems_of(with_values(alga_core=deep, db="- a list")) == [
        "release.json: profileValues.alga-core.single-node.yaml: too deeply nested "
        "(more than 100 levels)",
        f"release.json: profileValues.{DB}: expected a YAML mapping",
    ]


def test_a_release_with_only_problems_the_values_cannot_fix_has_no_hint() -> None:
    document = with_values(db="- a list")
    with pytest.raises(ReleaseError) as caught:
        parse_release(document, source="release.json")
    assert caught.value.problems == [f"release.json: profileValues.{DB}: expected a YAML mapping"]
    assert caught.value.hint is None


def test_a_release_too_large_without_values_names_no_largest_value() -> None:
    document = sample()
    document["profileValues"] = {}
    document["charts"]["db"]["version"] = "15.5.2+" + "a" * MAX_RELEASE_BYTES
    with pytest.raises(ReleaseError) as caught:
        parse_release(document, source="release.json")
    size = len(canonical_json(document))
    assert caught.value.problems[-1] == (
        f"release.json: profileValues: the release is {size} bytes as published (canonical "
        f"JSON), more than the {MAX_RELEASE_BYTES} an appliance reads"
    )
    assert caught.value.problems[:-1] == [
        f"release.json: profileValues.{service}.single-node.yaml: missing (profile "
        "'single-node' needs it)"
        for service in release.SERVICES
    ]
