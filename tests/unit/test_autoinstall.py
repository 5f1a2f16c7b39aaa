"""Autoinstall files rendered from the templates and validated against the schema."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml

from isobuild.config import load_config, parse_config
from isobuild.errors import ConfigError
from isobuild.installer.autoinstall import (
    META_DATA,
    ROOT_FILE,
    USER_DATA,
    installed_marker,
    render,
    render_autoinstall,
    validate,
)
from isobuild.resources import AUTOINSTALL_DIR

# A well-formed ed25519 public key (the config checks that its base64 names its type).
SSH_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f test@example"
)
CONFIG = """
name: edge
version: 2.0.1
autoinstall:
  interactive_sections: [network]
  timezone: Europe/Zurich
  identity:
    hostname: edge-01
    username: ops
    password_hash: "$6$salt$abcdefghijklmnop"
  ssh:
    authorized_keys: ["SSH_KEY"]
  storage:
    layout: direct
    match: {size: smallest, ssd: true}
  shutdown: reboot
""".replace("SSH_KEY", SSH_KEY)


def test_default_config_renders_valid_files_that_agree() -> None:
    rendered = render_autoinstall(load_config(None))
    body = rendered.body
    assert body["version"] == 1
    assert body["identity"]["password"] == "*"  # no usable password (never a bare "!")
    assert body["storage"]["layout"] == {
        "name": "lvm",
        "match": {"size": "largest"},
        "sizing-policy": "all",
    }
    assert body["apt"] == {
        "mirror-selection": {"primary": []},
        "fallback": "offline-install",
        "geoip": False,
    }
    assert "updates" not in body
    assert body["shutdown"] == "poweroff"
    assert isinstance(body["late-commands"], list)
    assert rendered.files[USER_DATA].startswith("#cloud-config\n")
    assert yaml.safe_load(rendered.files[USER_DATA]) == yaml.safe_load(rendered.files[ROOT_FILE])
    assert yaml.safe_load(rendered.files[META_DATA]) == {"instance-id": "alga-appliance-0.1.0"}


def test_config_values_reach_the_autoinstall() -> None:
    config = parse_config(CONFIG, source=Path("edge.yaml"))
    body = render_autoinstall(config).body
    assert body["interactive-sections"] == ["network"]
    assert body["timezone"] == "Europe/Zurich"
    assert body["identity"]["hostname"] == "edge-01"
    assert body["identity"]["password"] == "$6$salt$abcdefghijklmnop"
    assert body["ssh"]["authorized-keys"] == [SSH_KEY]
    assert body["storage"]["layout"] == {
        "name": "direct",
        "match": {"size": "smallest", "ssd": True},
    }
    assert body["shutdown"] == "reboot"
    assert installed_marker(config) == "edge-installed"


def test_strings_cannot_break_the_yaml() -> None:
    config = parse_config(CONFIG, source=Path("edge.yaml"))
    identity = dataclasses.replace(config.autoinstall.identity, realname='Ops: "x"\n- y')
    autoinstall = dataclasses.replace(config.autoinstall, identity=identity)
    body = render_autoinstall(dataclasses.replace(config, autoinstall=autoinstall)).body
    assert body["identity"]["realname"] == 'Ops: "x"\n- y'


def test_an_unknown_key_in_the_rendered_autoinstall_is_caught(tmp_path: Path) -> None:
    files = render(load_config(None))
    files[ROOT_FILE] = files[ROOT_FILE].replace("  shutdown:", "  shutdwon:")
    files[USER_DATA] = "#cloud-config\n" + files[ROOT_FILE]
    with pytest.raises(ConfigError) as info:
        validate(files)
    assert any("shutdwon" in p for p in info.value.problems)
    assert any("shutdown" in p and "required" in p for p in info.value.problems)


def test_late_commands_may_be_strings_or_argv_lists_but_nothing_else(tmp_path: Path) -> None:
    templates = tmp_path / "autoinstall"
    shutil.copytree(AUTOINSTALL_DIR, templates)
    late = templates / "late-commands.yaml.j2"
    late.write_text('- echo ok\n- [curtin, in-target, --, "true"]\n')
    body = render_autoinstall(load_config(None), templates).body
    assert body["late-commands"] == ["echo ok", ["curtin", "in-target", "--", "true"]]
    late.write_text("- {run: nope}\n")
    with pytest.raises(ConfigError, match=r"late-commands\[0\]"):
        render_autoinstall(load_config(None), templates)


def test_user_data_must_agree_with_the_root_file() -> None:
    files = render(load_config(None))
    files[USER_DATA] = files[USER_DATA].replace("Etc/UTC", "Europe/Paris")
    with pytest.raises(ConfigError, match="differs"):
        validate(files)


def test_a_template_error_names_the_template(tmp_path: Path) -> None:
    templates = tmp_path / "autoinstall"
    shutil.copytree(AUTOINSTALL_DIR, templates)
    (templates / "meta-data.j2").write_text("instance-id: {{ config.nope }}\n")
    with pytest.raises(ConfigError, match=r"meta-data\.j2.*template error"):
        render(load_config(None), templates)


def _body(text: str) -> dict[str, object]:
    body = render_autoinstall(parse_config(text, source=Path("c.yaml"))).body
    return dict(body)


def test_the_default_install_is_offline_even_with_a_mirror_in_reach() -> None:
    """Issue 12: fallback alone acts only without a usable mirror; no candidates forces it."""
    apt = _body("name: a\nversion: '1'\n")["apt"]
    assert apt == {"mirror-selection": {"primary": []}, "fallback": "offline-install",
                   "geoip": False}  # fmt: skip


def test_online_uses_the_default_mirrors_and_installs_updates() -> None:
    body = _body(
        "name: a\nversion: '1'\nautoinstall:\n  apt_mode: online\n  updates: all\n"
        "  apt_fallback: abort\n"
    )
    assert body["apt"] == {"fallback": "abort", "geoip": False}
    assert body["updates"] == "all"
    assert _body("name: a\nversion: '1'\nautoinstall: {apt_mode: online}\n")["updates"] == (
        "security"
    )


@pytest.mark.parametrize(
    ("setting", "key"),
    [("apt_fallback: abort", "autoinstall.apt_fallback"), ("updates: all", "autoinstall.updates")],
)
def test_online_only_settings_are_refused_offline(setting: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"name: a\nversion: '1'\nautoinstall:\n  {setting}\n", source=Path("c.yaml"))
    assert any(p.startswith(f"c.yaml: {key}: ") and "apt_mode: online" in p
               for p in info.value.problems), info.value.problems  # fmt: skip


def test_lvm_uses_the_whole_disk_unless_told_otherwise() -> None:
    layout = _body("name: a\nversion: '1'\n")["storage"]
    assert layout == {"layout": {"name": "lvm", "match": {"size": "largest"},
                                 "sizing-policy": "all"}}  # fmt: skip
    scaled = _body("name: a\nversion: '1'\nautoinstall: {storage: {sizing_policy: scaled}}\n")
    assert scaled["storage"] == {"layout": {"name": "lvm", "match": {"size": "largest"},
                                            "sizing-policy": "scaled"}}  # fmt: skip
    direct = _body("name: a\nversion: '1'\nautoinstall: {storage: {layout: direct}}\n")
    assert "sizing-policy" not in direct["storage"]["layout"]  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"storage\.sizing_policy: applies only to layout: lvm"):
        parse_config(
            "name: a\nversion: '1'\nautoinstall:\n"
            "  storage: {layout: direct, sizing_policy: scaled}\n",
            source=Path("c.yaml"),
        )
