"""`isobuild release` end to end against the real registry (TLS + ghcr-like token service)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from host_service.oci import OCI_MANIFEST
from host_service.release import HELM_CHART_MEDIA_TYPE, RELEASE_MEDIA_TYPE, load_release
from isobuild.cli import main
from isobuild.release.bundle import FLUX_CONFIG_MEDIA_TYPE, FLUX_CONTENT_MEDIA_TYPE
from tests.fixtures.registry import RunningRegistry

ORG = "it"


CHARTS = ("alga-core", "db", "email-service", "pgbouncer", "redis", "temporal",
          "temporal-worker", "workflow-worker")  # fmt: skip


def push_charts(registry: RunningRegistry, repository: str) -> dict[str, str]:
    """Every chart of flux/ at 0.1.0, as `helm push` stores one; chart → manifest digest."""
    digests = {}
    for chart in CHARTS:
        digests[chart] = registry.push_artifact(
            f"{repository}/{chart}",
            "0.1.0",
            config=json.dumps({"name": chart, "version": "0.1.0"}).encode(),
            config_media_type="application/vnd.cncf.helm.config.v1+json",
            layers=[(f"chart {chart}".encode(), HELM_CHART_MEDIA_TYPE)],
        )
    return digests


@pytest.fixture(autouse=True)
def charts(registry: RunningRegistry) -> dict[str, str]:
    return push_charts(registry, f"{ORG}/alga-appliance-charts")


# Every test here checks the topology with the pinned (stand-in) Flux CRDs.
pytestmark = pytest.mark.usefixtures("pinned_flux")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME: proves nothing writes ~/.docker/config.json."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    for name in ("ISOBUILD_REGISTRY_USERNAME", "ISOBUILD_REGISTRY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return path


def isobuild(
    args: Sequence[str], env: dict[str, str] | None = None, stdin: str | None = None
) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)


def creds(registry: RunningRegistry) -> dict[str, str]:
    return {
        "ISOBUILD_REGISTRY_USERNAME": registry.username,
        "ISOBUILD_REGISTRY_PASSWORD": registry.password,
    }


def render(registry: RunningRegistry, tmp: Path, version: str, channel: str, *extra: str) -> Path:
    out = tmp / f"release-{version}-{channel}.json"
    host = registry.host
    result = isobuild(
        [
            "release", "render", "--version", version, "--channel", channel,
            "--image", f"algaCore=ghcr.io/nine-minds/alga-psa:{version}",
            "--image", f"workflowWorker=ghcr.io/nine-minds/workflow-worker:{version}",
            "--image", f"emailService=ghcr.io/nine-minds/email-service:{version}",
            "--image", f"temporalWorker=ghcr.io/nine-minds/temporal-worker:{version}",
            "--control-plane", "ghcr.io/nine-minds/appliance-control:0.3.1",
            "--config-repository", f"{host}/{ORG}/alga-appliance-config",
            "--charts-repository", f"{host}/{ORG}/alga-appliance-charts",
            "--ca-file", str(registry.ca_path),
            "--output", str(out), *extra,
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def push(registry: RunningRegistry, manifest: Path, *extra: str) -> dict[str, object]:
    result = isobuild(
        ["release", "push", str(manifest), "--to", f"{registry.host}/{ORG}/alga-appliance-release",
         "--ca-file", str(registry.ca_path), "--json", *extra],
        env=creds(registry),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    published: dict[str, object] = json.loads(result.stdout)
    return published


def show(registry: RunningRegistry, ref: str) -> Result:
    return isobuild(
        ["release", "show", f"{registry.host}/{ORG}/alga-appliance-release:{ref}",
         "--ca-file", str(registry.ca_path), "--json"]
    )  # fmt: skip


def test_render_validate_push_show_round_trip(
    registry: RunningRegistry, tmp_path: Path, home: Path, charts: dict[str, str]
) -> None:
    bundle_file = tmp_path / "bundle.tar"
    bundled = isobuild(["release", "bundle", "--output", str(bundle_file)])
    assert bundled.exit_code == 0, bundled.output
    bundle_digest = bundled.stdout.strip()

    manifest = render(registry, tmp_path, "1.4.0", "stable", "--bundle", str(bundle_file))
    release = load_release(manifest)
    assert release.config.digest == bundle_digest
    # Every chart pinned by the digest the registry serves for its version (issue 12).
    assert release.charts["alga-core"].version == "0.1.0"
    assert {c: ref.digest for c, ref in release.charts.items()} == charts
    assert release.charts["db"].repository == f"{registry.host}/{ORG}/alga-appliance-charts/db"
    assert "replicaCount: 1" in release.values_for("db")

    validated = isobuild(["release", "validate", str(manifest), "--bundle", str(bundle_file)])
    assert validated.exit_code == 0, validated.output
    assert "ok (release 1.4.0, channel stable, single-node)" in validated.stdout

    before = len(registry.policy.requests)
    published = push(registry, manifest, "--bundle", str(bundle_file))
    assert published["bundle"] == {
        "repository": f"{registry.host}/{ORG}/alga-appliance-config",
        "digest": bundle_digest,
        "tags": ["1.4.0"],
    }
    assert published["release"]["tags"] == ["1.4.0", "stable"]  # type: ignore[index]

    pushes = registry.policy.requests[before:]
    assert any("push" in actions for r in pushes for _, actions in r.granted)

    before = len(registry.policy.requests)
    shown = show(registry, "stable")
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert document["manifestDigest"] == published["release"]["digest"]  # type: ignore[index]
    assert document["release"] == json.loads(manifest.read_text())
    assert {r.user for r in registry.policy.requests[before:]} == {None}, "show is anonymous"

    # What Flux will pull: the bundle by digest, with Flux's media types.
    with registry.client() as client:
        bundle_manifest = client.get_manifest(f"{ORG}/alga-appliance-config", bundle_digest)
        assert bundle_manifest.media_type == OCI_MANIFEST
        assert bundle_manifest.config.media_type == FLUX_CONFIG_MEDIA_TYPE
        assert [x.media_type for x in bundle_manifest.layers] == [FLUX_CONTENT_MEDIA_TYPE]
        release_manifest = client.get_manifest(f"{ORG}/alga-appliance-release", "1.4.0")
        assert release_manifest.config.media_type == RELEASE_MEDIA_TYPE

    assert not (home / ".docker").exists(), "credentials never reach ~/.docker/config.json"


def test_channel_tag_moves_and_versions_stay(
    registry: RunningRegistry, tmp_path: Path, home: Path
) -> None:
    old = push(registry, render(registry, tmp_path, "2.0.0", "nightly"))
    new = push(registry, render(registry, tmp_path, "2.1.0", "nightly"))
    assert old["release"]["digest"] != new["release"]["digest"]  # type: ignore[index]

    nightly = json.loads(show(registry, "nightly").stdout)
    assert nightly["release"]["version"] == "2.1.0"
    assert nightly["manifestDigest"] == new["release"]["digest"]  # type: ignore[index]
    pinned = json.loads(show(registry, "2.0.0").stdout)
    assert pinned["release"]["version"] == "2.0.0"
    assert pinned["manifestDigest"] == old["release"]["digest"]  # type: ignore[index]

    # Re-publishing the same release changes no version; it moves the channel back to it
    # (a deliberate channel rollback). A different release under a taken version is refused.
    again = push(registry, render(registry, tmp_path, "2.0.0", "nightly", "--force"))
    assert again["release"]["digest"] == old["release"]["digest"]  # type: ignore[index]
    assert json.loads(show(registry, "nightly").stdout)["release"]["version"] == "2.0.0"
    other = render(registry, tmp_path, "2.0.0", "beta")
    refused = isobuild(
        ["release", "push", str(other), "--to", f"{registry.host}/{ORG}/alga-appliance-release",
         "--ca-file", str(registry.ca_path)],
        env=creds(registry),
    )  # fmt: skip
    assert refused.exit_code == 3, refused.output
    assert "2.0.0 already names another release" in refused.output
    assert show(registry, "beta").exit_code != 0, "nothing of the refused push landed"
    assert json.loads(show(registry, "2.0.0").stdout)["manifestDigest"] == old["release"]["digest"]  # type: ignore[index]


def test_push_needs_valid_credentials(
    registry: RunningRegistry, tmp_path: Path, home: Path
) -> None:
    manifest = render(registry, tmp_path, "3.0.0", "stable")
    to = f"{registry.host}/{ORG}/alga-appliance-release"
    args = ["release", "push", str(manifest), "--to", to, "--ca-file", str(registry.ca_path)]
    anonymous = isobuild(args)
    assert anonymous.exit_code == 1
    assert "anonymous" in anonymous.output
    assert "ISOBUILD_REGISTRY_USERNAME" in anonymous.output

    wrong = isobuild([*args, "--username", registry.username, "--password-stdin"], stdin="not-it\n")
    assert wrong.exit_code == 1
    assert "refused credentials" in wrong.output
    assert "not-it" not in wrong.output
    assert show(registry, "3.0.0").exit_code != 0, "nothing was published"

    via_stdin = isobuild(
        [*args, "--username", registry.username, "--password-stdin"], stdin=registry.password + "\n"
    )
    assert via_stdin.exit_code == 0, via_stdin.output
    assert registry.password not in via_stdin.output
    assert not (home / ".docker").exists()


def test_render_pins_tags_to_digests(registry: RunningRegistry, tmp_path: Path, home: Path) -> None:
    digest = registry.push_artifact(f"{ORG}/alga-psa", "4.0.0", config=b'{"pin": 1}')
    out = tmp_path / "pinned.json"
    result = isobuild(
        [
            "release", "render", "--version", "4.0.0", "--channel", "stable",
            "--image", f"algaCore={registry.host}/{ORG}/alga-psa:4.0.0",
            "--image", f"workflowWorker={registry.host}/{ORG}/alga-psa:4.0.0",
            "--image", f"emailService={registry.host}/{ORG}/alga-psa:4.0.0",
            "--image", f"temporalWorker={registry.host}/{ORG}/alga-psa@{digest}",
            "--control-plane", f"{registry.host}/{ORG}/alga-psa:4.0.0",
            "--charts-repository", f"{registry.host}/{ORG}/alga-appliance-charts",
            "--pin", "--ca-file", str(registry.ca_path), "--output", str(out),
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    release = load_release(out)
    for ref in (*release.images.values(), release.control_plane):
        assert ref.digest == digest


def test_show_refuses_a_tampered_release(
    registry: RunningRegistry, tmp_path: Path, home: Path
) -> None:
    published = push(registry, render(registry, tmp_path, "5.0.0", "tamper"))
    with registry.client() as client:
        manifest = client.get_manifest(f"{ORG}/alga-appliance-release", "5.0.0")
    assert manifest.digest == published["release"]["digest"]  # type: ignore[index]
    registry.tamper_blob(manifest.config.digest)
    result = show(registry, "tamper")
    assert result.exit_code == 3
    assert f"expected {manifest.config.digest}, got sha256:" in result.output


def test_render_refuses_bad_input_without_output(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = isobuild(
        ["release", "render", "--version", "1.0.0+build", "--channel", "stable",
         "--image", "algaCore=ghcr.io/x/y", "--image", "mailer=ghcr.io/x/y:1",
         "--control-plane", "ghcr.io/x/c:1", "--output", str(out)]
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--image algaCore: 'ghcr.io/x/y' has neither a tag nor a digest" in result.output
    assert "--image 'mailer=ghcr.io/x/y:1': expected KEY=REF" in result.output
    assert "--image workflowWorker=REF: missing" in result.output
    assert not out.exists()


def test_render_that_cannot_replace_its_output_leaves_no_temp_file(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "r.json"
    out.mkdir(parents=True)  # --force replaces files only, never a directory
    (out / "keep").write_text("mine")
    rendered = isobuild(
        ["release", "render", "--version", "1.0.0", "--channel", "stable",
         *(f"--image={key}=ghcr.io/x/{key.lower()}:1.0.0"
           for key in ("algaCore", "workflowWorker", "emailService", "temporalWorker")),
         "--control-plane", "ghcr.io/x/c:1",
         "--charts-repository", f"{registry.host}/{ORG}/alga-appliance-charts",
         "--ca-file", str(registry.ca_path), "--output", str(out), "--force"]
    )  # fmt: skip
    # It was an IsADirectoryError traceback; now one line, exit 2, before any registry call.
    assert rendered.exit_code == 2, rendered.output
    assert rendered.stderr.splitlines() == [
        f"error: {out}: is a directory, where the output file goes; --force replaces files only",
        "hint: move it away or choose another output path",
    ]
    assert [p.name for p in out.parent.iterdir()] == ["r.json"]
    assert [p.name for p in out.iterdir()] == ["keep"]


def test_bundle_into_a_path_below_a_file_is_one_line_and_touches_nothing(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("a file, not a directory")
    out = notes / "bundles" / "config.tar"
    result = isobuild(["release", "bundle", "--no-check", "--output", str(out)])
    # It was a NotADirectoryError traceback.
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: {out}: {notes} is not a directory, so nothing can be written below it",
        "hint: choose another output path",
    ]
    assert notes.read_text() == "a file, not a directory"


def test_bundle_makes_the_directories_of_its_output(tmp_path: Path) -> None:
    out = tmp_path / "new" / "bundles" / "config.tar"
    result = isobuild(["release", "bundle", "--no-check", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()


def test_a_config_with_a_site_ca_needs_no_ca_file(
    registry: RunningRegistry, tmp_path: Path, home: Path
) -> None:
    """show, push and render --pin trust the --config's appliance.registry.ca_bundle."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(registry.ca_path, site / "registry-ca.pem")
    config = site / "appliance.yaml"
    config.write_text(
        "name: site\nversion: '1'\nappliance:\n  registry:\n"
        f"    host: '{registry.host}'\n    release_repository: {ORG}/site-release\n"
        "    ca_bundle: registry-ca.pem\n"
    )
    # The registry's CA is not in the system trust store: without it, TLS fails.
    untrusted = isobuild(["release", "show", f"{registry.host}/{ORG}/site-release:stable"])
    assert untrusted.exit_code == 1
    assert "certificate" in untrusted.output.lower()

    digest = registry.push_artifact(f"{ORG}/site-app", "7.0.0", config=b'{"site": 1}')
    site_charts = push_charts(registry, f"{ORG}/site-charts")  # beside site-release
    out = tmp_path / "site-7.0.0.json"
    rendered = isobuild(
        [
            "release", "render", "--version", "7.0.0", "--channel", "stable",
            *(f"--image={key}={registry.host}/{ORG}/site-app:7.0.0"
              for key in ("algaCore", "workflowWorker", "emailService", "temporalWorker")),
            "--control-plane", f"{registry.host}/{ORG}/site-app:7.0.0",
            "--pin", "--config", str(config), "--output", str(out),
        ]
    )  # fmt: skip
    assert rendered.exit_code == 0, rendered.output
    assert load_release(out).control_plane.digest == digest
    assert load_release(out).charts["db"].digest == site_charts["db"]

    pushed = isobuild(
        ["release", "push", str(out), "--config", str(config), "--json"], env=creds(registry)
    )
    assert pushed.exit_code == 0, pushed.output
    shown = isobuild(["release", "show", "stable", "--config", str(config), "--json"])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert document["reference"] == f"{registry.host}/{ORG}/site-release:stable"
    assert document["manifestDigest"] == json.loads(pushed.stdout)["release"]["digest"]
