"""Build config loading: defaults, every problem at once, hints, types."""

from __future__ import annotations

from pathlib import Path

import pytest

from isobuild.config import (
    InteractiveSection,
    Shutdown,
    load_config,
    parse_config,
    to_mapping,
    volume_id_for,
)
from isobuild.errors import ConfigError, ExitCode


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source=Path("appliance.yaml"))
    assert info.value.exit_code == ExitCode.USAGE
    return info.value.problems


def test_embedded_default_matches_the_appliance_reference() -> None:
    config = load_config(None)
    assert config.name == "alga-appliance"
    assert config.appliance.paths.opt == "/opt/alga-appliance"
    assert config.appliance.paths.etc == "/etc/alga-appliance"
    assert config.appliance.paths.state == "/var/lib/alga-appliance"
    assert config.appliance.host_service.port == 8080
    assert [c.value for c in config.appliance.k3s.disable] == ["traefik", "servicelb"]
    assert config.appliance.k3s.write_kubeconfig_mode == "0600"
    assert config.autoinstall.shutdown is Shutdown.POWEROFF
    assert len(config.sha256) == 64


def test_minimal_config_gets_defaults() -> None:
    config = parse_config("name: demo\nversion: 1.2.3\n", source=Path("a.yaml"))
    assert config.volume_id == "demo 1.2.3"
    assert config.iso_filename == "demo-1.2.3.iso"
    assert config.iso.grub.timeout == 5


def test_unknown_key_suggests_the_close_one() -> None:
    problems = _problems("name: demo\nversion: '1'\nautoinstall:\n  identity:\n    hostnme: x\n")
    assert problems == [
        "appliance.yaml: autoinstall.identity.hostnme: unknown key (did you mean "
        "'hostname'?); allowed here: hostname, password_hash, realname, username"
    ]


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems(
        "name: Bad_Name\n"
        "iso: {grub: {timeout: soon}}\n"
        "autoinstall: {shutdown: halt, interactive_sections: [network, disks]}\n"
        "appliance: {paths: {opt: relative/path}, host_service: {port: 70000}}\n"
    )
    text = "\n".join(problems)
    assert "appliance.yaml: name: expected lowercase letters" in text
    assert "appliance.yaml: version: required value is missing" in text
    assert "appliance.yaml: iso.grub.timeout: expected an integer, got 'soon'" in text
    assert "appliance.yaml: autoinstall.shutdown: expected one of 'poweroff', 'reboot'" in text
    assert "appliance.yaml: autoinstall.interactive_sections[1]: expected one of" in text
    assert "appliance.yaml: appliance.paths.opt: expected an absolute path" in text
    assert "appliance.yaml: appliance.host_service.port: expected 1..65535, got 70000" in text
    assert len(problems) == 7


def test_wrong_container_types_name_the_key() -> None:
    problems = _problems(
        "name: a\nversion: '1'\niso: [1, 2]\nautoinstall: {ssh: {authorized_keys: k}}\n"
    )
    assert problems == [
        "appliance.yaml: iso: expected a mapping, got list",
        "appliance.yaml: autoinstall.ssh.authorized_keys: expected a list of a string, got str",
    ]


def test_not_yaml_names_line_and_column() -> None:
    with pytest.raises(ConfigError, match=r"appliance.yaml: not valid YAML \(line 2, column"):
        parse_config("name: a\n  version: [\n", source=Path("appliance.yaml"))


def test_top_level_must_be_a_mapping() -> None:
    assert _problems("- a\n- b\n") == ["appliance.yaml: expected a mapping, got list"]


def test_password_ssh_login_needs_a_hash() -> None:
    problems = _problems("name: a\nversion: '1'\nautoinstall: {ssh: {allow_pw: true}}\n")
    assert problems[0].startswith("appliance.yaml: autoinstall.ssh.allow_pw: password login")


def test_plaintext_password_is_refused() -> None:
    problems = _problems(
        "name: a\nversion: '1'\nautoinstall: {identity: {password_hash: hunter2}}\n"
    )
    assert problems == [
        "appliance.yaml: autoinstall.identity.password_hash: expected a crypt(3) hash "
        "such as $6$..., got 'hunter2'"
    ]


def test_lock_path_is_relative_to_the_config(tmp_path: Path) -> None:
    cfg = tmp_path / "sub" / "appliance.yaml"
    cfg.parent.mkdir()
    cfg.write_text("name: a\nversion: '1'\npayload: {lock: ../my.lock.yaml}\n")
    assert load_config(cfg).payload.lock == tmp_path / "my.lock.yaml"


def test_missing_and_directory_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_mapping_is_plain_data() -> None:
    config = parse_config(
        "name: a\nversion: '1'\nautoinstall: {interactive_sections: [storage]}\n",
        source=Path("a.yaml"),
    )
    assert config.autoinstall.interactive_sections == (InteractiveSection.STORAGE,)
    data = to_mapping(config)
    assert data["autoinstall"]["interactive_sections"] == ["storage"]
    assert "source" not in data


def test_volume_id_is_clamped_and_sanitised() -> None:
    assert volume_id_for("x" * 40, "1") == "x" * 32
    assert volume_id_for("a", "1+b") == "a 1_b"
