"""What `isobuild release` lets through is what the appliance reads and Flux builds: deep
nesting, size in bytes, registry hosts, hidden files, symlinks, encodings, chart versions and
damaged bundle files are refused up front with one line each (real kubectl, real registry)."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from host_service.release import (
    EMPTY_BLOB,
    EMPTY_MEDIA_TYPE,
    RELEASE_MEDIA_TYPE,
    ReleaseError,
    canonical_json,
    fetch_release,
)
from isobuild.resources import FLUX_DIR
from tests.fixtures.registry import RunningRegistry
from tests.integration.test_release_cli import ORG, isobuild, push_charts, show
from tests.unit.test_release import sample

REPO = f"{ORG}/alga-appliance-release"
DEEP = "a: " + "[" * 5000 + "]" * 5000


# Every test here checks the topology with the pinned (stand-in) Flux CRDs.
pytestmark = pytest.mark.usefixtures("pinned_flux")


@pytest.fixture
def flux(tmp_path: Path) -> Path:
    copy = tmp_path / "flux"
    shutil.copytree(FLUX_DIR, copy)
    return copy


def one_error(output: str) -> str:
    """The error line of a refusal (after progress lines, then at most a hint): no traceback."""
    lines = output.strip().splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert all(line.startswith("hint: ") for line in lines[errors[0] + 1 :]), output
    return lines[errors[0]]


# -- nesting ------------------------------------------------------------------------------


def test_deeply_nested_values_are_refused_by_validate_and_by_fetch(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    document = sample() | {"version": "7.0.0-deep"}
    document["profileValues"]["db.single-node.yaml"] = DEEP
    manifest = tmp_path / "m.json"
    manifest.write_bytes(canonical_json(document))
    validated = isobuild(["release", "validate", str(manifest)])
    assert validated.exit_code == 2
    assert one_error(validated.output) == (
        f"error: {manifest}: profileValues.db.single-node.yaml: too deeply nested "
        "(more than 100 levels)"
    )
    # Published by another tool, read as the appliance reads it.
    registry.push_artifact(
        REPO,
        "7.0.0-deep",
        config=canonical_json(document),
        config_media_type=RELEASE_MEDIA_TYPE,
        layers=[(EMPTY_BLOB, EMPTY_MEDIA_TYPE)],
    )
    with registry.client() as client, pytest.raises(ReleaseError) as caught:
        fetch_release(client, REPO, "7.0.0-deep")
    assert caught.value.problems[0].endswith("too deeply nested (more than 100 levels)")
    shown = show(registry, "7.0.0-deep")
    assert shown.exit_code == 3
    assert "profileValues.db.single-node.yaml: too deeply nested" in one_error(shown.output)


def test_a_deeply_nested_manifest_file_is_one_line(tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text("[" * 100_000 + "]" * 100_000)
    result = isobuild(["release", "validate", str(manifest)])
    assert result.exit_code == 2
    assert one_error(result.output) == f"error: {manifest}: not valid JSON: too deeply nested"


# -- size ---------------------------------------------------------------------------------


def test_render_refuses_values_no_appliance_could_read(
    registry: RunningRegistry, flux: Path, tmp_path: Path
) -> None:
    push_charts(registry, f"{ORG}/alga-appliance-charts")
    for service in ("db", "redis", "alga-core"):
        (flux / f"profiles/single-node/values/{service}.yaml").write_text(
            "note: " + "中" * 1_000_000 + "\n", encoding="utf-8"
        )
    out = tmp_path / "release.json"
    host = registry.host
    result = isobuild(
        [
            "release", "render", "--version", "7.1.0", "--channel", "stable",
            "--image", "algaCore=ghcr.io/nine-minds/alga-psa:7.1.0",
            "--image", "workflowWorker=ghcr.io/nine-minds/workflow-worker:7.1.0",
            "--image", "emailService=ghcr.io/nine-minds/email-service:7.1.0",
            "--image", "temporalWorker=ghcr.io/nine-minds/temporal-worker:7.1.0",
            "--control-plane", "ghcr.io/nine-minds/appliance-control:0.3.1",
            "--config-repository", f"{host}/{ORG}/alga-appliance-config",
            "--charts-repository", f"{host}/{ORG}/alga-appliance-charts",
            "--ca-file", str(registry.ca_path), "--flux-dir", str(flux),
            "--output", str(out),
        ]
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    line = one_error(result.output)
    assert "rendered release: profileValues: the release is " in line
    assert "more than the 8388608 an appliance reads" in line
    assert not out.exists()


def test_what_fetch_cannot_read_validate_refuses(registry: RunningRegistry, tmp_path: Path) -> None:
    document = sample() | {"version": "7.2.0"}
    for name in ("db", "redis", "alga-core"):
        document["profileValues"][f"{name}.single-node.yaml"] = "a: " + "中" * 1_000_000
    data = canonical_json(document)
    registry.push_artifact(
        REPO, "7.2.0", config=data, config_media_type=RELEASE_MEDIA_TYPE,
        layers=[(EMPTY_BLOB, EMPTY_MEDIA_TYPE)],
    )  # fmt: skip
    shown = show(registry, "7.2.0")
    assert shown.exit_code != 0
    assert "blob larger than 8388608 bytes" in shown.output
    manifest = tmp_path / "m.json"
    manifest.write_bytes(data)
    validated = isobuild(["release", "validate", str(manifest)])
    assert validated.exit_code == 2
    assert "more than the 8388608 an appliance reads" in one_error(validated.output)


# -- registry hosts -------------------------------------------------------------------------


def test_an_image_without_a_registry_host_is_refused(tmp_path: Path) -> None:
    document = sample()
    document["images"]["algaCore"]["repository"] = "nine-minds/alga-psa"
    manifest = tmp_path / "m.json"
    manifest.write_bytes(canonical_json(document))
    result = isobuild(["release", "validate", str(manifest)])
    assert result.exit_code == 2
    line = one_error(result.output)
    assert line.startswith(f"error: {manifest}: images.algaCore.repository: expected registry/")
    assert line.endswith("got 'nine-minds/alga-psa'")


# -- the tree: one file list, UTF-8, chart versions ------------------------------------------


def test_a_hidden_file_a_kustomization_names_is_refused_before_bundling(
    flux: Path, tmp_path: Path
) -> None:
    (flux / "base/namespaces.yaml").rename(flux / "base/.extra.yaml")
    kfile = flux / "base/kustomization.yaml"
    kfile.write_text(kfile.read_text().replace("- namespaces.yaml", "- .extra.yaml"))
    out = tmp_path / "bundle.tar"
    result = isobuild(["release", "bundle", "--flux-dir", str(flux), "--output", str(out)])
    assert result.exit_code == 2, result.output
    assert one_error(result.output).startswith(f"error: {flux / 'base'}: kustomize build failed")
    assert result.output.strip().splitlines()[-1] == (
        "hint: base/.extra.yaml is hidden: the bundle leaves hidden files out, "
        "so Flux would not find it"
    )
    assert not out.exists()


def test_a_symlinked_values_file_is_refused_by_the_check(flux: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("secret: outside\n")
    link = flux / "profiles/single-node/values/redis.yaml"
    link.unlink()
    link.symlink_to(outside)
    result = isobuild(["release", "validate", "--topology", "--flux-dir", str(flux)])
    assert result.exit_code == 2
    assert one_error(result.output) == (
        f"error: {link}: not a regular file or directory (symlink or special file)"
    )


@pytest.mark.parametrize(
    "relative", ["base/kustomization.yaml", "profiles/single-node/values/redis.yaml"]
)
def test_a_file_that_is_not_utf8_is_named(flux: Path, relative: str) -> None:
    path = flux / relative
    lines = path.read_bytes().count(b"\n")
    path.write_bytes(path.read_bytes() + b"# caf\xe9\n")
    result = isobuild(["release", "validate", "--flux-dir", str(flux)])
    assert result.exit_code == 2
    shown = path if relative.startswith("base/") else f"{flux.name}/{relative}"
    assert one_error(result.output) == (
        f"error: {shown}: not UTF-8 (byte 0xe9 on line {lines + 1})"
    )


def test_two_versions_of_one_chart_are_refused(flux: Path) -> None:
    redis = flux / "base/releases/redis.yaml"
    text = redis.read_text().replace("name: alga-chart-redis", "name: alga-chart-db")
    redis.write_text(text.replace('chart-version: "0.1.0"', 'chart-version: "0.2.0"'))
    result = isobuild(["release", "validate", "--flux-dir", str(flux)])
    assert result.exit_code == 2
    assert one_error(result.output) == (
        "error: flux/base/releases/redis.yaml: HelmRelease alga-system/redis: "
        "metadata.annotations.alga.appliance/chart-version: chart 'db' at 0.2.0, but "
        "HelmRelease alga-system/db (base/releases/db.yaml) has it at 0.1.0: "
        "a release pins one version per chart"
    )


# -- bundle files ---------------------------------------------------------------------------


def test_a_bundle_file_that_is_not_a_tar_or_a_layout_is_one_line(tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_bytes(canonical_json(sample()))
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    result = isobuild(["release", "validate", str(manifest), "--bundle", str(empty)])
    assert result.exit_code == 2
    assert one_error(result.output) == f"error: {empty}: not a tar archive (empty file)"
    for name, index in (
        ("digest.tar", b'{"manifests":[{"digest":5}]}'),
        ("deep.tar", b"[" * 100_000 + b"]" * 100_000),
    ):
        layout = tmp_path / name
        with tarfile.open(layout, "w") as tar:
            info = tarfile.TarInfo("index.json")
            info.size = len(index)
            tar.addfile(info, io.BytesIO(index))
        result = isobuild(["release", "validate", str(manifest), "--bundle", str(layout)])
        assert result.exit_code == 2
        assert one_error(result.output).startswith(f"error: {layout}: index.json: ")
    assert json.loads(manifest.read_bytes())["version"] == "1.4.0"
