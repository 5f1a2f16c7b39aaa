"""Settings from build-info.json under --root, validated against the schema the service ships:
unknown keys and wrong values are named by key; the builder's output passes the same schema."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from host_service.errors import SettingsError
from host_service.schema import Schema
from host_service.settings import (
    SCHEMA_FILE,
    HttpLimits,
    Namespaces,
    Timeouts,
    default_settings,
    load_settings,
    rooted,
    settings_from_document,
)
from isobuild.installer.build_info import render_build_info
from tests.fixtures.host_service import builder_document


def test_appliance_defaults_under_root(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)  # no build-info.json: a developer run
    paths = settings.paths
    assert paths.state == tmp_path / "var/lib/alga-appliance"
    assert paths.etc == tmp_path / "etc/alga-appliance"
    assert paths.kubeconfig == tmp_path / "etc/rancher/k3s/k3s.yaml"
    assert paths.k3s_binary == tmp_path / "usr/local/bin/k3s"
    assert paths.issue == tmp_path / "etc/issue"
    assert paths.flux_install == tmp_path / "opt/alga-appliance/flux-install/install.yaml"
    assert settings.port == 8080
    assert settings.namespaces.all == ("flux-system", "alga-system", "msp")
    assert settings.kubectl_argv == (
        str(tmp_path / "usr/local/bin/k3s"), "kubectl", "--kubeconfig",
        str(tmp_path / "etc/rancher/k3s/k3s.yaml"),
    )  # fmt: skip
    assert settings.source == "<appliance defaults>"
    assert settings == default_settings(tmp_path)


def test_root_slash_leaves_paths_alone() -> None:
    assert rooted(Path("/"), "/etc/issue") == Path("/etc/issue")
    with pytest.raises(ValueError, match="absolute"):
        rooted(Path("/x"), "etc/issue")
    with pytest.raises(ValueError, match=r"'\.\.'"):
        rooted(Path("/x"), "/etc/../issue")


def test_the_builders_output_is_valid_and_read_as_written(tmp_path: Path) -> None:
    document = builder_document(
        "name: box\nversion: 2.0.0\nappliance:\n"
        "  paths: {opt: /srv/box, etc: /etc/box, state: /var/lib/box}\n"
        "  host_service: {port: 9090}\n"
        "  registry: {host: 'registry.example:5000', release_repository: o/r,"
        " default_channel: nightly}\n"
        "  k3s: {disable: [traefik], write_kubeconfig_mode: '0600'}\n"
    )
    assert Schema.load(SCHEMA_FILE).problems(document) == []
    text = render_build_info(document)  # the builder checks against the same file
    settings = settings_from_document(json.loads(text), root=tmp_path, source="build-info.json")
    assert settings.port == 9090
    assert settings.paths.opt == tmp_path / "srv/box"
    assert settings.paths.flux_install == tmp_path / "srv/box/flux-install/install.yaml"
    assert settings.namespaces == Namespaces()
    assert settings.registry.host == "registry.example:5000"
    assert settings.registry.default_channel == "nightly"
    assert settings.registry.ca_bundle is None
    assert settings.k3s.disable == ("traefik",)
    assert [a.file for a in settings.k3s.image_archives] == ["a.tar.zst"]
    assert settings.build == {"name": "box", "version": "2.0.0", "build_id": "0123456789abcdef"}
    assert settings.timeouts == Timeouts()


def test_operator_knobs_are_read(tmp_path: Path) -> None:
    document = builder_document()
    document["appliance"]["host_service"].update(
        kubectl=["/usr/bin/kubectl"],
        timeouts={"reconcile": 5},
        min_free_disk_bytes=1024,
        max_clock_skew_seconds=30,
    )
    document["appliance"]["registry"]["ca_bundle"] = "/etc/box/ca.pem"
    document["standin"] = True
    settings = settings_from_document(document, root=tmp_path)
    assert settings.kubectl_argv[0] == "/usr/bin/kubectl"
    assert settings.timeouts == dataclasses.replace(Timeouts(), reconcile=5.0)
    assert settings.thresholds.min_free_disk_bytes == 1024
    assert settings.thresholds.max_clock_skew_seconds == 30.0
    assert settings.registry.ca_bundle == tmp_path / "etc/box/ca.pem"
    assert settings.standin is True


@pytest.mark.parametrize(
    ("where", "key", "problem"),
    [
        ((), "something_new", "something_new: unknown key"),
        (("appliance",), "namespace", "namespace: unknown key (did you mean 'namespaces'?)"),
        (("appliance", "registry"), "ca_bundel", "unknown key (did you mean 'ca_bundle'?)"),
        (("appliance", "host_service"), "timeout", "did you mean 'timeouts'?"),
        (("payload", "k3s"), "smoke_imgae", "payload.k3s.smoke_imgae: unknown key"),
    ],
)  # fmt: skip
def test_an_unknown_key_is_refused_by_name_with_a_did_you_mean(
    tmp_path: Path, where: tuple[str, ...], key: str, problem: str
) -> None:
    """An operator's typo in a hand-edited file is an error, never silently ignored."""
    document = builder_document()
    node = document
    for part in where:
        node = node[part]
    node[key] = "x"
    with pytest.raises(SettingsError) as caught:
        settings_from_document(document, root=tmp_path, source="build-info.json")
    assert problem in str(caught.value)
    assert str(caught.value).startswith("build-info.json: ")


def test_a_typo_in_a_timeout_name_is_refused(tmp_path: Path) -> None:
    document = builder_document()
    document["appliance"]["host_service"]["timeouts"] = {"reconcil": 5}
    with pytest.raises(SettingsError, match=r"timeouts\.reconcil: unknown key \(did you mean"):
        settings_from_document(document, root=tmp_path, source="build-info.json")


def test_every_bad_value_is_named(tmp_path: Path) -> None:
    document = builder_document()
    appliance = document["appliance"]
    appliance["paths"]["state"] = "relative/path"
    appliance["namespaces"]["system"] = "Not_A_Name"
    appliance["k3s"]["disable"] = "traefik"
    appliance["host_service"]["port"] = "8080"
    appliance["registry"]["host"] = "bad host"
    document["payload"]["k3s"]["image_archives"] = [{"file": "../x", "sha256": "a"}]
    del document["payload"]["flux"]
    with pytest.raises(SettingsError) as caught:
        settings_from_document(document, root=tmp_path, source="build-info.json")
    text = str(caught.value)
    for line in (
        "appliance.paths.state: expected an absolute POSIX path without '..', got 'relative/path'",
        "appliance.namespaces.system: expected a Kubernetes name",
        "appliance.k3s.disable: expected array, got str",
        "appliance.host_service.port: expected integer, got str",
        "appliance.registry.host: expected a registry host[:port], got 'bad host'",
        "payload.k3s.image_archives[0].file: expected a file name (no directory), got '../x'",
        "payload.k3s.image_archives[0].sha256: expected 64 lowercase hex digits",
        "payload.k3s.image_archives[0].images: required key is missing",
        "payload.flux: required key is missing",
    ):
        assert f"build-info.json: {line}" in text, line
    assert caught.value.hint is not None
    assert "restore the file from the installation medium" in caught.value.hint


def test_a_kubeconfig_readable_by_others_is_refused(tmp_path: Path) -> None:
    document = builder_document()
    document["appliance"]["k3s"]["write_kubeconfig_mode"] = "0644"
    with pytest.raises(SettingsError, match="0644 lets others read"):
        settings_from_document(document, root=tmp_path, source="build-info.json")


def test_the_schema_covers_every_timeout() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    host_service = schema["properties"]["appliance"]["properties"]["host_service"]
    names = set(host_service["properties"]["timeouts"]["properties"])
    assert names == {f.name for f in dataclasses.fields(Timeouts)}


def test_a_named_settings_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="settings file not found"):
        load_settings(tmp_path, tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    with pytest.raises(SettingsError, match="JSON object"):
        load_settings(tmp_path, bad)
    bad.write_text("{")
    with pytest.raises(SettingsError, match="not readable JSON"):
        load_settings(tmp_path, bad)


def test_default_settings_file_is_found_under_root_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "etc/alga-appliance/build-info.json"
    path.parent.mkdir(parents=True)
    document = builder_document()
    document["appliance"]["host_service"]["port"] = 8181
    path.write_text(json.dumps(document))
    settings = load_settings(tmp_path)
    assert settings.port == 8181
    assert settings.source == str(path)
    broken = copy.deepcopy(document)
    broken["appliance"]["host_service"]["prot"] = 8282
    path.write_text(json.dumps(broken))
    with pytest.raises(SettingsError, match=rf"{path}: appliance.host_service.prot: unknown key"):
        load_settings(tmp_path)


def test_http_limits_default_and_override(tmp_path: Path) -> None:
    assert default_settings(tmp_path).http.max_connections == 64
    assert settings_from_document(builder_document(), root=tmp_path).http == HttpLimits()
    document = builder_document()
    document["appliance"]["host_service"]["http"] = {
        "max_connections": 4,
        "max_waiting": 10,
        "request_timeout": 0.5,
        "send_timeout": 2,
    }
    limits = settings_from_document(document, root=tmp_path).http
    assert (limits.max_connections, limits.max_waiting) == (4, 10)
    assert (limits.request_timeout, limits.send_timeout) == (0.5, 2.0)
    assert isinstance(limits.send_timeout, float)


def test_a_bad_http_limit_is_named(tmp_path: Path) -> None:
    document = builder_document()
    document["appliance"]["host_service"]["http"] = {
        "max_connections": 0,
        "max_waiting": 1.5,
        "request_timeout": -1,
        "max_conections": 3,
    }
    with pytest.raises(SettingsError) as caught:
        settings_from_document(document, root=tmp_path, source="b.json")
    message = str(caught.value)
    prefix = "b.json: appliance.host_service.http"
    assert f"{prefix}.max_connections: must be >= 1, got 0" in message
    assert f"{prefix}.max_waiting: expected integer, got float" in message
    assert f"{prefix}.request_timeout: must be > 0, got -1" in message
    assert f"{prefix}.max_conections: unknown key (did you mean 'max_connections'?)" in message
