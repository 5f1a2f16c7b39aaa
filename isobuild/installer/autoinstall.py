"""Render the autoinstall files from autoinstall/*.j2 and validate them before they ship."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from host_service.schema import Schema
from isobuild.config import BuildConfig, to_mapping
from isobuild.errors import ConfigError
from isobuild.iso.seed import META_DATA, ROOT_FILE, USER_DATA
from isobuild.resources import AUTOINSTALL_DIR, SCHEMAS_DIR
from isobuild.templates import Templates

_TEMPLATES = {
    ROOT_FILE: "autoinstall.yaml.j2",
    USER_DATA: "user-data.j2",
    META_DATA: "meta-data.j2",
}


@dataclass(frozen=True, kw_only=True)
class AutoinstallFiles:
    """ISO path → rendered text, plus the parsed autoinstall body they share."""

    files: Mapping[str, str]
    body: Mapping[str, Any]


def installed_marker(config: BuildConfig) -> str:
    """File name the late-commands put in /boot of the installed system."""
    return f"{config.name}-installed"


def template_context(config: BuildConfig) -> dict[str, Any]:
    return {"config": to_mapping(config), "installed_marker": installed_marker(config)}


def render(config: BuildConfig, template_dir: Path = AUTOINSTALL_DIR) -> dict[str, str]:
    """Render every autoinstall file (pure apart from reading the templates)."""
    templates = Templates(template_dir)
    context = template_context(config)
    rendered = {}
    for iso_path, name in _TEMPLATES.items():
        text = templates.render(name, context, hint="fix the template or the config value it uses")
        rendered[iso_path] = text.rstrip("\n") + "\n"
    return rendered


def _load(iso_path: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"rendered {iso_path} is not valid YAML: {exc}",
            hint="a template under autoinstall/ produces broken YAML",
        ) from exc


def validate(
    files: Mapping[str, str], schema_path: Path = SCHEMAS_DIR / "autoinstall.json"
) -> AutoinstallFiles:
    """Check the rendered files the way the installer will read them; every problem at once."""
    root = _load(ROOT_FILE, files[ROOT_FILE])
    user_data_text = files[USER_DATA]
    if not user_data_text.startswith("#cloud-config\n"):
        raise ConfigError(f"rendered {USER_DATA} must start with '#cloud-config'")
    user_data = _load(USER_DATA, user_data_text)
    meta = _load(META_DATA, files[META_DATA])
    problems: list[str] = []
    for iso_path, document in ((ROOT_FILE, root), (USER_DATA, user_data)):
        if not isinstance(document, dict) or set(document) != {"autoinstall"}:
            problems.append(f"{iso_path}: expected exactly one top-level key 'autoinstall'")
    if problems:
        raise ConfigError(problems)
    body = root["autoinstall"]
    if user_data["autoinstall"] != body:
        problems.append(f"{USER_DATA}: autoinstall differs from {ROOT_FILE}")
    if not isinstance(meta, dict) or "instance-id" not in meta:
        problems.append(f"{META_DATA}: missing instance-id")
    schema = Schema.load(schema_path)
    problems += [f"{ROOT_FILE}: autoinstall.{p}" for p in schema.problems(body)]
    if problems:
        raise ConfigError(problems, hint="the config or an autoinstall/ template is wrong")
    return AutoinstallFiles(files=dict(files), body=body)


def render_autoinstall(
    config: BuildConfig, template_dir: Path = AUTOINSTALL_DIR
) -> AutoinstallFiles:
    """Render and validate: what the build puts on the ISO."""
    return validate(render(config, template_dir))
