"""Settings from build-info.json under --root; every wrong value named by key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from host_service.errors import SettingsError
from host_service.settings import load_settings, rooted, settings_from_document


def test_appliance_defaults_under_root(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)  # no build-info.json: a developer run
    paths = settings.paths
    assert paths.state == tmp_path / "var/lib/alga-appliance"
    assert paths.etc == tmp_path / "etc/alga-appliance"
    assert paths.kubeconfig == tmp_path / "etc/rancher/k3s/k3s.yaml"
    assert paths.k3s_binary == tmp_path / "usr/local/bin/k3s"
    assert paths.issue == tmp_path / "etc/issue"
    assert settings.port == 8080
    assert settings.namespaces.all == ("flux-system", "alga-system", "msp")
    assert settings.kubectl_argv == (
        str(tmp_path / "usr/local/bin/k3s"), "kubectl", "--kubeconfig",
        str(tmp_path / "etc/rancher/k3s/k3s.yaml"),
    )  # fmt: skip
    assert settings.source == "<appliance defaults>"


def test_root_slash_leaves_paths_alone() -> None:
    assert rooted(Path("/"), "/etc/issue") == Path("/etc/issue")
    with pytest.raises(ValueError, match="absolute"):
        rooted(Path("/x"), "etc/issue")
    with pytest.raises(ValueError, match=r"'\.\.'"):
        rooted(Path("/x"), "/etc/../issue")


def test_build_info_overrides(tmp_path: Path) -> None:
    document = {
        "name": "box", "version": "2.0", "build_id": "abc", "standin": True,
        "appliance": {
            "paths": {"opt": "/srv/box", "etc": "/etc/box", "state": "/var/lib/box"},
            "registry": {"host": "registry.example:5000", "release_repository": "o/r",
                         "default_channel": "nightly", "ca_bundle": "/etc/box/ca.pem"},
            "k3s": {"disable": ["traefik"], "write_kubeconfig_mode": "0600"},
            "host_service": {"port": 9090, "kubectl": ["/usr/bin/kubectl"],
                             "timeouts": {"reconcile": 5}},
        },
        "payload": {"k3s": {"version": "v1.36.3+k3s1", "image_archives": [
            {"file": "a.tar.zst", "sha256": "a" * 64, "images": []}]},
            "flux": {"install_yaml": "/srv/box/flux/install.yaml"}},
        "something_new": {"ignored": True},
    }  # fmt: skip
    settings = settings_from_document(document, root=tmp_path)
    assert settings.port == 9090
    assert settings.standin is True
    assert settings.registry.host == "registry.example:5000"
    assert settings.registry.ca_bundle == tmp_path / "etc/box/ca.pem"
    assert settings.registry.default_channel == "nightly"
    assert settings.timeouts.reconcile == 5.0
    assert settings.kubectl_argv[0] == "/usr/bin/kubectl"
    assert settings.paths.flux_install == tmp_path / "srv/box/flux/install.yaml"
    assert [a.file for a in settings.k3s.image_archives] == ["a.tar.zst"]
    assert settings.build == {"name": "box", "version": "2.0", "build_id": "abc"}


def test_every_bad_value_is_named(tmp_path: Path) -> None:
    document = {
        "appliance": {
            "paths": {"state": "relative/path"},
            "namespaces": {"system": "Not_A_Name"},
            "k3s": {"write_kubeconfig_mode": "0644", "disable": "traefik"},
            "host_service": {"port": "8080"},
        },
        "payload": {"k3s": {"image_archives": [{"file": "../x", "sha256": "a"}]}},
    }
    with pytest.raises(SettingsError) as caught:
        settings_from_document(document, root=tmp_path, source="build-info.json")
    text = str(caught.value)
    for key in (
        "appliance.paths.state",
        "appliance.namespaces.system",
        "appliance.k3s.write_kubeconfig_mode",
        "appliance.k3s.disable",
        "appliance.host_service.port",
        "payload.k3s.image_archives[0]",
    ):
        assert f"build-info.json: {key}" in text, key
    assert "0644 lets others read" in text


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


def test_default_settings_file_is_found_under_root(tmp_path: Path) -> None:
    path = tmp_path / "etc/alga-appliance/build-info.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"appliance": {"host_service": {"port": 8181}}}))
    settings = load_settings(tmp_path)
    assert settings.port == 8181
    assert settings.source == str(path)


def test_http_limits_default_and_override(tmp_path: Path) -> None:
    assert settings_from_document({}, root=tmp_path).http.max_connections == 64
    document = {
        "appliance": {
            "host_service": {
                "http": {
                    "max_connections": 4,
                    "max_waiting": 10,
                    "request_timeout": 0.5,
                    "send_timeout": 2,
                }
            }
        }
    }
    limits = settings_from_document(document, root=tmp_path).http
    assert (limits.max_connections, limits.max_waiting) == (4, 10)
    assert (limits.request_timeout, limits.send_timeout) == (0.5, 2.0)


def test_a_bad_http_limit_is_named(tmp_path: Path) -> None:
    document = {
        "appliance": {
            "host_service": {
                "http": {"max_connections": 0, "max_waiting": 1.5, "request_timeout": -1}
            }
        }
    }
    with pytest.raises(SettingsError) as caught:
        settings_from_document(document, root=tmp_path, source="b.json")
    message = str(caught.value)
    assert "b.json: appliance.host_service.http.max_connections: expected a positive" in message
    assert "appliance.host_service.http.max_waiting: expected int" in message
    assert "appliance.host_service.http.request_timeout: expected a positive" in message
