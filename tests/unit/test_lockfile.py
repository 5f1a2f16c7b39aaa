"""payload.lock.yaml: the real pins load; mistakes are reported with file and key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from isobuild.artifacts.lockfile import DEFAULT_FLUX_CONTROLLERS, load_lock, parse_lock
from isobuild.errors import ConfigError, ExitCode
from isobuild.resources import DEFAULT_LOCK

SOURCE = Path("payload.lock.yaml")


def real_document() -> dict:  # type: ignore[type-arg]
    loaded: dict = yaml.safe_load(DEFAULT_LOCK.read_text())  # type: ignore[type-arg]
    return loaded


def problems(document: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_lock(yaml.safe_dump(document), source=SOURCE)
    assert caught.value.exit_code == ExitCode.USAGE
    return caught.value.problems


def test_the_repository_lock_pins_real_releases() -> None:
    lock = load_lock(DEFAULT_LOCK)

    assert not lock.standin
    assert lock.k3s.version == "v1.36.3+k3s1"
    assert lock.flux.version == "2.9.4"
    binary = lock.k3s.files["binary"]
    assert binary.url == "https://github.com/k3s-io/k3s/releases/download/v1.36.3%2Bk3s1/k3s"
    assert binary.checksum_file == "sha256sum-amd64.txt"
    # Flux lists install.yaml in its checksum file since 0.25.3: checked there too.
    assert lock.flux.files["install_manifest"].checksum_file == "flux_2.9.4_checksums.txt"
    assert lock.flux.files["cli"].url.endswith("/v2.9.4/flux_2.9.4_linux_amd64.tar.gz")
    # Every controller the release install.yaml deploys, not only the `flux install` four.
    assert {i.name for i in lock.images} == {
        *DEFAULT_FLUX_CONTROLLERS,
        "image-automation-controller",
        "image-reflector-controller",
        "source-watcher",
    }
    assert all(i.registry == "ghcr.io" for i in lock.images)
    assert lock.image_archive is None


def test_images_key_depends_on_every_pin() -> None:
    document = real_document()
    first = parse_lock(yaml.safe_dump(document), source=SOURCE).images_key()
    document["flux"]["images"]["helm-controller"]["digest"] = "sha256:" + "1" * 64
    assert parse_lock(yaml.safe_dump(document), source=SOURCE).images_key() != first


def test_short_digest_names_file_and_key() -> None:
    document = real_document()
    document["k3s"]["files"]["binary"]["sha256"] = "abc123"

    (problem,) = problems(document)

    assert problem.startswith("payload.lock.yaml: k3s.files.binary.sha256: expected 64 lowercase")
    assert "'abc123'" in problem


def test_typo_key_is_rejected_with_a_suggestion() -> None:
    document = real_document()
    document["flux"]["files"]["cli"]["sha265"] = document["flux"]["files"]["cli"].pop("sha256")

    found = problems(document)

    assert "payload.lock.yaml: flux.files.cli.sha265: unknown key (did you mean 'sha256'?)" in found
    assert "payload.lock.yaml: flux.files.cli.sha256: required key is missing" in found


def test_every_problem_is_reported_at_once() -> None:
    document = real_document()
    document["schema"] = 2
    document["flux"]["images"]["source-controller"]["digest"] = "latest"
    del document["k3s"]["files"]["airgap_images"]

    found = problems(document)

    assert any(p.startswith("payload.lock.yaml: schema:") for p in found)
    assert any("flux.images.source-controller.digest" in p for p in found)
    assert any("k3s.files.airgap_images: required key is missing" in p for p in found)


def test_version_and_url_must_move_together() -> None:
    document = real_document()
    document["k3s"]["version"] = "v1.36.4+k3s1"

    (problem,) = problems(document)

    assert problem.startswith(
        "payload.lock.yaml: k3s.base_url: does not end with '/v1.36.4%2Bk3s1'"
    )


def test_checksum_file_cannot_be_an_artifact() -> None:
    document = real_document()
    document["flux"]["files"]["cli"]["name"] = "flux_2.9.4_checksums.txt"

    assert problems(document) == [
        "payload.lock.yaml: flux.files.cli.name: is the checksum file itself"
    ]


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError, match=r"payload.lock.yaml: not valid YAML \(line 2"):
        parse_lock("schema: 1\n  k3s: x\n", source=SOURCE)


def test_missing_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_lock(tmp_path / "nope.yaml")
    assert "lock file not found" in caught.value.message
    assert caught.value.hint is not None
    assert "standin-artifacts" in caught.value.hint
