"""payload.lock.yaml pins as records: keys, URLs, image names, the archive key, exact errors."""

from __future__ import annotations

import hashlib
import locale
from pathlib import Path

import pytest
import yaml

from isobuild.artifacts.lockfile import LOCK_HINT, format_lock, load_lock, parse_lock
from isobuild.errors import ConfigError
from isobuild.resources import DEFAULT_LOCK

SOURCE = Path("payload.lock.yaml")


def document() -> dict:  # type: ignore[type-arg]
    loaded: dict = yaml.safe_load(DEFAULT_LOCK.read_text())  # type: ignore[type-arg]
    return loaded


def problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_lock(yaml.safe_dump(data), source=SOURCE)
    assert caught.value.hint == LOCK_HINT
    return caught.value.problems


def test_each_pinned_file_knows_its_key_url_and_checksum_file() -> None:
    lock = load_lock(DEFAULT_LOCK)
    assert [(f.key, f.component, f.role, f.version) for f in lock.files()] == [
        ("k3s.files.binary", "k3s", "binary", "v1.36.3+k3s1"),
        ("k3s.files.airgap_images", "k3s", "airgap_images", "v1.36.3+k3s1"),
        ("flux.files.cli", "flux", "cli", "2.9.4"),
        ("flux.files.install_manifest", "flux", "install_manifest", "2.9.4"),
    ]
    binary = lock.k3s.files["binary"]
    assert binary.sha256 == "2f98a9f8fe5782479ee2d54e70a1b10a7f6fd4cae8d38ed3098452dc6eed76b5"
    assert binary.base_url == lock.k3s.base_url
    assert lock.k3s.checksum_file == "sha256sum-amd64.txt"
    assert lock.flux.files["cli"].checksum_file == "flux_2.9.4_checksums.txt"
    assert lock.source == DEFAULT_LOCK
    assert lock.sha256 == hashlib.sha256(DEFAULT_LOCK.read_bytes()).hexdigest()


def test_a_file_name_is_quoted_in_its_url() -> None:
    data = document()
    data["k3s"]["files"]["binary"]["name"] = "k3s+x"
    lock = parse_lock(yaml.safe_dump(data), source=SOURCE)
    assert lock.k3s.files["binary"].url == lock.k3s.base_url + "/k3s%2Bx"


def test_an_image_pin_splits_into_registry_path_and_reference() -> None:
    lock = load_lock(DEFAULT_LOCK)
    (helm,) = [i for i in lock.images if i.name == "helm-controller"]
    assert helm.registry == "ghcr.io"
    assert helm.path == "fluxcd/helm-controller"
    assert helm.reference == "ghcr.io/fluxcd/helm-controller:v1.6.3"
    assert helm.digest.startswith("sha256:16ada994")


def test_the_images_key_is_the_sha256_of_the_sorted_pins_for_amd64() -> None:
    lock = load_lock(DEFAULT_LOCK)
    pins = sorted(f"{i.reference}@{i.digest}" for i in lock.images)
    expected = hashlib.sha256(("linux/amd64\n" + "\n".join(pins) + "\n").encode()).hexdigest()
    assert lock.images_key() == expected
    data = document()
    images = data["flux"]["images"]
    data["flux"]["images"] = dict(reversed(images.items()))
    assert parse_lock(yaml.safe_dump(data), source=SOURCE).images_key() == expected


def test_an_image_archive_pin_and_the_standin_flag_are_read() -> None:
    data = document()
    data["standin"] = True
    data["flux"]["files"]["image_archive"] = {
        "name": "images.tar",
        "sha256": "e" * 64,
        "checksum_entry": False,
    }
    lock = parse_lock(yaml.safe_dump(data), source=SOURCE)
    assert lock.standin is True
    assert lock.image_archive == lock.flux.files["image_archive"]
    assert lock.image_archive.name == "images.tar"
    assert lock.image_archive.checksum_file is None


def test_a_flux_version_must_match_its_url() -> None:
    data = document()
    data["flux"]["version"] = "2.9.5"
    assert problems(data) == [
        "payload.lock.yaml: flux.base_url: does not end with '/v2.9.5' although flux.version "
        "is '2.9.5'; update the version and its URL together"
    ]


def test_two_files_with_one_name_are_both_named() -> None:
    data = document()
    data["k3s"]["files"]["airgap_images"]["name"] = "k3s"
    assert sorted(problems(data)) == [
        "payload.lock.yaml: k3s.files.airgap_images.name: used by two files",
        "payload.lock.yaml: k3s.files.binary.name: used by two files",
    ]


def test_no_controller_image_is_refused() -> None:
    data = document()
    data["flux"]["images"] = {}
    assert "payload.lock.yaml: flux.images: must pin at least one controller image" in problems(
        data
    )


def test_a_document_that_is_not_a_mapping_is_reported_at_the_root() -> None:
    (problem,) = problems(["schema", 1])
    assert problem.startswith("payload.lock.yaml: <root>: ")


def test_an_unreadable_lock_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r": cannot read lock file: "):
        load_lock(tmp_path)  # a directory
    binary = tmp_path / "lock.yaml"
    binary.write_bytes(b"\xff\xfe schema")
    with pytest.raises(ConfigError) as caught:
        load_lock(binary)
    assert str(caught.value).startswith(f"{binary}: cannot read lock file: ")


def test_a_missing_lock_file_names_both_ways_out(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_lock(tmp_path / "nope.yaml")
    assert str(caught.value) == f"{tmp_path / 'nope.yaml'}: lock file not found"
    assert caught.value.hint == (
        "pass --lock with an existing file, or `isobuild standin-artifacts DIR` "
        "to write a stand-in one"
    )


def test_format_lock_writes_the_header_as_comments_and_keeps_key_order() -> None:
    data = document()
    text = format_lock(data, header="First line.\n\nSecond line.  \n", source=SOURCE)
    assert text.startswith("# First line.\n#\n# Second line.\nschema: 1\nk3s:\n")
    assert yaml.safe_load(text) == data
    # Block style all the way down, one pin a line: reviewable as a diff.
    assert "  files:\n    binary:\n      name: k3s\n      sha256: " in text
    assert parse_lock(text, source=SOURCE).k3s.version == "v1.36.3+k3s1"
    long_url = "https://example.invalid/" + "x" * 90 + "/v1.36.3%2Bk3s1"
    data["k3s"]["base_url"] = long_url
    assert f"  base_url: {long_url}\n" in format_lock(data, header="h", source=SOURCE)


def test_format_lock_refuses_an_invalid_document() -> None:
    data = document()
    data["flux"]["images"] = {}
    with pytest.raises(ConfigError) as caught:
        format_lock(data, header="h", source=Path("new.lock.yaml"))
    assert caught.value.problems == [
        "new.lock.yaml: flux.images: must pin at least one controller image"
    ]


def test_a_yaml_syntax_error_says_how_to_get_a_valid_file() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_lock("schema: 1\n  k3s: x\n", source=SOURCE)
    assert caught.value.hint == LOCK_HINT


@pytest.mark.usefixtures("ascii_locale")
def test_a_lock_file_is_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    assert locale.getencoding().upper() not in ("UTF-8", "UTF8")
    path = tmp_path / "payload.lock.yaml"
    path.write_bytes("# Pinned by José's release job\n".encode() + DEFAULT_LOCK.read_bytes())
    assert load_lock(path) == parse_lock(path.read_bytes().decode("utf-8"), source=path)
