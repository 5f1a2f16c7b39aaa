"""`isobuild release` refuses bad command lines and local files as usage errors (exit 2),
before any registry, topology or chart work, and never repeats a password it was given."""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import pytest
from click.testing import CliRunner, Result

from isobuild.cli import main
from isobuild.commands import release as release_command
from isobuild.release.bundle import build_bundle, write_layout
from isobuild.resources import FLUX_DIR
from tests.unit.test_release import sample

PASSWORD = "S3cretPW"
CREDENTIALS_HINT = (
    "hint: registry credentials come from ISOBUILD_REGISTRY_USERNAME and "
    "ISOBUILD_REGISTRY_PASSWORD (or --password-stdin), and only `push` sends them"
)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """A usage error is found before any connection: one attempted fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError(f"connected to {args[1:]!r} before checking the command line")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def isobuild(args: Sequence[str]) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    config = tmp_path / "site.yaml"
    config.write_text(
        "name: site\nversion: '1'\nappliance:\n  registry:\n"
        "    host: 'registry.example:5000'\n    release_repository: it/site-release\n"
    )
    return config


# -- push: the local manifest and --to -------------------------------------------------------


@pytest.mark.parametrize("content", [b'{"schema":"alga.appliance.release/v1"}', None])
def test_push_of_a_bad_or_missing_manifest_is_a_usage_error(
    tmp_path: Path, content: bytes | None
) -> None:
    manifest = tmp_path / "bad.json"
    if content is not None:
        manifest.write_bytes(content)
    result = isobuild(["release", "push", str(manifest)])
    assert result.exit_code == 2, result.output  # as `release validate` says of the same file
    assert result.stderr.startswith(f"error: {manifest}: ")
    assert result.stderr.splitlines()[-1] == "hint: fix the manifest or re-render it"
    validated = isobuild(["release", "validate", str(manifest)])
    assert validated.exit_code == 2
    assert validated.stderr == result.stderr


def test_push_to_a_reference_with_credentials_never_prints_the_password(tmp_path: Path) -> None:
    bundle = build_bundle(FLUX_DIR)
    write_layout(bundle, tmp_path / "bundle.tar", force=False)
    document = sample()
    document["config"]["digest"] = bundle.digest
    manifest = tmp_path / "release.json"
    manifest.write_text(json.dumps(document))
    result = isobuild(
        ["release", "push", str(manifest), "--bundle", str(tmp_path / "bundle.tar"),
         "--to", f"publisher:{PASSWORD}@registry.example/it/x-release"]
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert PASSWORD not in result.output
    assert result.stderr.splitlines() == [
        "error: --to: '***@registry.example/it/x-release': credentials do not belong in a "
        "registry reference",
        CREDENTIALS_HINT,
    ]


# -- show REF ----------------------------------------------------------------------------------


def test_show_of_a_reference_with_credentials_never_prints_the_password() -> None:
    result = isobuild(["release", "show", f"user:{PASSWORD}@HOST/it/x-release:stable"])
    assert result.exit_code == 2, result.output
    assert PASSWORD not in result.output
    assert result.stderr.splitlines() == [
        "error: REF: '***@HOST/it/x-release:stable': credentials do not belong in a registry "
        "reference",
        CREDENTIALS_HINT,
    ]


@pytest.mark.parametrize(
    "ref", ["stable?x=1", "stable#frag", "bad tag!", "sha256:abc", "", ".stable", "a" * 129]
)
def test_show_refuses_a_ref_that_is_no_tag_or_digest_before_connecting(
    site: Path, ref: str
) -> None:
    result = isobuild(["release", "show", ref, "--config", str(site)])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: REF: {ref!r}: expected a channel or version (an OCI tag), a digest "
        "sha256:<64 lowercase hex>, or registry/repository[:tag][@digest]",
        "hint: for example: stable, 1.4.0 or ghcr.io/nine-minds/alga-appliance-release:stable",
    ]


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("registry.example/it/x-release:bad tag", "'bad tag' is not a valid tag"),
        ("registry.example/it/x-release@sha256:abc", "'sha256:abc' is not a sha256 digest"),
        ("stable@sha256:abc", "expected registry/repository[:tag][@digest]"),
    ],
)
def test_show_refuses_a_malformed_full_reference(site: Path, ref: str, problem: str) -> None:
    result = isobuild(["release", "show", ref, "--config", str(site)])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"error: REF: {ref!r}: {problem}"]


# -- render: every option first ----------------------------------------------------------------


def render_args(tmp_path: Path, *options: str) -> list[str]:
    images = [
        f"--image={key}=ghcr.io/x/{key.lower()}:1.0.0"
        for key in ("algaCore", "workflowWorker", "emailService", "temporalWorker")
    ]
    return [
        "release", "render", *images, "--control-plane", "ghcr.io/x/c:1",
        "--charts-repository", "registry.example:5000/it/charts",
        "--offline", "--cache-dir", str(tmp_path / "empty-cache"),
        "--output", str(tmp_path / "r.json"), *options,
    ]  # fmt: skip


def test_render_checks_version_channel_and_config_tag_before_any_work(tmp_path: Path) -> None:
    # The charts registry is not there and the Flux CRDs are not cached: neither is reached.
    result = isobuild(
        render_args(tmp_path, "--version", "1.0", "--channel", "Stable", "--config-tag", "bad!")
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "error: --version: expected a version usable as an OCI tag, like 1.4.0 or 1.5.0-rc.1 "
        "(no '+'), got '1.0'",
        "--channel: expected a lowercase name of letters, digits and '-', got 'Stable'",
        "--config-tag: expected an OCI tag, got 'bad!'",
    ]
    assert not (tmp_path / "r.json").exists()


def test_render_reports_the_version_with_the_image_problems(tmp_path: Path) -> None:
    args = render_args(tmp_path, "--version", "1.0.0+build", "--channel", "stable")
    args[2] = f"--image=algaCore=u:{PASSWORD}@ghcr.io/a/b:1"
    result = isobuild(args)
    assert result.exit_code == 2, result.output
    assert PASSWORD not in result.output
    assert result.stderr.splitlines() == [
        "error: --version: expected a version usable as an OCI tag, like 1.4.0 or 1.5.0-rc.1 "
        "(no '+'), got '1.0.0+build'",
        "--image algaCore: '***@ghcr.io/a/b:1': credentials do not belong in a registry reference",
        CREDENTIALS_HINT,
    ]


def test_a_refused_push_and_a_refused_read_give_the_same_credentials_hint() -> None:
    from isobuild.release import publish

    assert publish.CREDENTIALS_HINT == release_command.CREDENTIALS_HINT
