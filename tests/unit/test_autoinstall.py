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
    authorized_keys: ["ssh-ed25519 AAAAC3Nza test@example"]
  storage:
    layout: direct
    match: {size: smallest, ssd: true}
  shutdown: reboot
"""


def test_default_config_renders_valid_files_that_agree() -> None:
    rendered = render_autoinstall(load_config(None))
    body = rendered.body
    assert body["version"] == 1
    assert body["identity"]["password"] == "!"  # locked: no password in the default
    assert body["storage"]["layout"] == {"name": "lvm", "match": {"size": "largest"}}
    assert body["apt"]["fallback"] == "offline-install"
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
    assert body["ssh"]["authorized-keys"] == ["ssh-ed25519 AAAAC3Nza test@example"]
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
