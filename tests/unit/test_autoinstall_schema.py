"""Issue 3's autoinstall checks: every template renders and validates, and the three usual
mistakes (a typo'd key, a wrong type, no ``version``) each fail naming the key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from isobuild.config import BuildConfig, load_config, parse_config
from isobuild.errors import ConfigError
from isobuild.installer.autoinstall import (
    ROOT_FILE,
    USER_DATA,
    render,
    render_autoinstall,
    validate,
)

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f k"
VARIANTS = {
    "defaults": None,
    "interactive": "name: a\nversion: '1'\nautoinstall:\n"
    "  interactive_sections: [network, storage, identity]\n",
    "direct-disk-ssh": "name: b\nversion: '2'\nautoinstall:\n"
    "  storage: {layout: direct, match: {size: smallest, ssd: true}}\n"
    f"  ssh: {{authorized_keys: ['{SSH_KEY}']}}\n  shutdown: reboot\n",
}


def _config(text: str | None) -> BuildConfig:
    return load_config(None) if text is None else parse_config(text, source=Path("c.yaml"))


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_template_renders_and_validates(variant: str) -> None:
    rendered = render_autoinstall(_config(VARIANTS[variant]))
    assert rendered.body["version"] == 1
    assert {ROOT_FILE, USER_DATA} <= set(rendered.files)
    late = rendered.body["late-commands"]
    assert all(isinstance(c, list) and all(isinstance(a, str) for a in c) for c in late)


def _mutated(change: str) -> list[str]:
    files = render(load_config(None))
    document = yaml.safe_load(files[ROOT_FILE])
    body = document["autoinstall"]
    if change == "typo":
        body["storage"]["layuot"] = body["storage"].pop("layout")
    elif change == "type":
        body["ssh"]["allow-pw"] = "no"
    elif change == "version":
        del body["version"]
    elif change == "bare-bang":
        body["identity"]["password"] = "!"
    text = yaml.safe_dump(document, sort_keys=False)
    files[ROOT_FILE] = text
    files[USER_DATA] = "#cloud-config\n" + text
    with pytest.raises(ConfigError) as caught:
        validate(files)
    return caught.value.problems


def test_a_typoed_key_fails_with_its_path() -> None:
    problems = _mutated("typo")
    assert any(
        p.startswith(f"{ROOT_FILE}: autoinstall.storage.layuot: unknown key") for p in problems
    ), problems


def test_a_wrong_type_fails_with_its_path() -> None:
    problems = _mutated("type")
    assert any(
        p.startswith(f"{ROOT_FILE}: autoinstall.ssh.allow-pw: expected boolean") for p in problems
    ), problems


def test_a_missing_version_fails_with_its_path() -> None:
    problems = _mutated("version")
    assert any(
        p.startswith(f"{ROOT_FILE}: autoinstall.version: required key is missing") for p in problems
    ), problems


def test_a_bare_bang_password_is_refused() -> None:
    """cloud-init would turn a bare "!" into an empty password on first boot (issue 12)."""
    problems = _mutated("bare-bang")
    assert any(p.startswith(f"{ROOT_FILE}: autoinstall.identity.password:") for p in problems)
