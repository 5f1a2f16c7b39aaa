"""`isobuild release show`/`push` against the real registry: what `show --json` says it read,
and the credentials hint on every refusal of a push."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from host_service.oci import Credentials
from host_service.release import parse_release
from isobuild.cli import main
from isobuild.errors import PayloadError
from isobuild.release.bundle import build_bundle, write_layout
from isobuild.release.publish import Publisher, release_artifact
from isobuild.resources import FLUX_DIR
from tests.fixtures.registry import RunningRegistry
from tests.unit.test_release import sample

REPOSITORY = "it/refs-release"
CREDENTIALS_HINT = (
    "set ISOBUILD_REGISTRY_USERNAME and ISOBUILD_REGISTRY_PASSWORD (or --password-stdin)"
)


def isobuild(args: Sequence[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def published(registry: RunningRegistry) -> str:
    """A release artifact at REPOSITORY:stable; its manifest digest."""
    document = sample()
    document["version"], document["channel"] = "9.1.0", "stable"
    artifact = release_artifact(parse_release(document, source="test"))
    return registry.pusher.push(REPOSITORY, artifact, ["9.1.0", "stable"]).digest


def test_show_json_names_a_digest_reference_with_an_at(
    registry: RunningRegistry, published: str, tmp_path: Path
) -> None:
    by_digest = f"{registry.host}/{REPOSITORY}@{published}"
    shown = isobuild(["release", "show", by_digest, "--ca-file", str(registry.ca_path), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["reference"] == by_digest

    shutil.copy(registry.ca_path, tmp_path / "ca.pem")
    config = tmp_path / "site.yaml"
    config.write_text(
        "name: site\nversion: '1'\nappliance:\n  registry:\n"
        f"    host: '{registry.host}'\n    release_repository: {REPOSITORY}\n"
        "    ca_bundle: ca.pem\n"
    )
    for ref, reference in (
        (published, by_digest),
        ("stable", f"{registry.host}/{REPOSITORY}:stable"),
    ):
        shown = isobuild(["release", "show", ref, "--config", str(config), "--json"])
        assert shown.exit_code == 0, shown.output
        document = json.loads(shown.stdout)
        assert (document["reference"], document["manifestDigest"]) == (reference, published)


def test_a_push_refused_at_its_first_read_says_where_credentials_come_from(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    bundle = build_bundle(FLUX_DIR)
    write_layout(bundle, tmp_path / "bundle.tar", force=False)
    document = sample()
    document["config"] = {"repository": f"{registry.host}/it/refs-config", "digest": bundle.digest}
    (tmp_path / "release.json").write_text(json.dumps(document))
    wrong = {"ISOBUILD_REGISTRY_USERNAME": registry.username, "ISOBUILD_REGISTRY_PASSWORD": "no"}
    result = isobuild(
        ["release", "push", str(tmp_path / "release.json"), "--bundle",
         str(tmp_path / "bundle.tar"), "--to", f"{registry.host}/{REPOSITORY}",
         "--ca-file", str(registry.ca_path)],
        env=wrong,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "refused credentials" in result.stderr
    assert result.stderr.splitlines()[-1] == f"hint: {CREDENTIALS_HINT}"


def test_every_read_of_a_push_refused_gives_the_credentials_hint(registry: RunningRegistry) -> None:
    artifact = release_artifact(parse_release(sample(), source="test"))
    wrong = Credentials(registry.username, "wrong")
    with Publisher(registry.host, credentials=wrong, ca_bundle=registry.ca_path) as publisher:
        with pytest.raises(PayloadError) as existing:
            publisher.existing(REPOSITORY, "1.0.0")
        with pytest.raises(PayloadError) as preflight:
            publisher.push(REPOSITORY, artifact, ["1.0.0"])
    with (
        Publisher(registry.host, credentials=None, ca_bundle=registry.ca_path) as anonymous,
        pytest.raises(PayloadError) as private,
    ):
        anonymous.existing("private/secret", "1.0.0")
    for caught in (existing, preflight, private):
        assert caught.value.hint == CREDENTIALS_HINT, caught.value
