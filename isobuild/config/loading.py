"""Loading a build config: YAML text to a validated BuildConfig, every problem at once."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import yaml

from isobuild.config.conversion import INVALID, load_dataclass
from isobuild.config.cross_checks import cross_checks
from isobuild.config.local_files import with_local_files
from isobuild.config.model import BuildConfig
from isobuild.config.problems import Problems
from isobuild.config.values_profiles import bundle_checks
from isobuild.config.yaml_source import ConfigLoader, load_yaml, yaml_error
from isobuild.errors import ConfigError
from isobuild.resources import DEFAULT_CONFIG, FLUX_DIR


def parse_config(
    text: str, *, source: Path, base_dir: Path | None = None, flux_dir: Path = FLUX_DIR
) -> BuildConfig:
    """Parse and validate a build config; every problem is reported at once."""
    problems = Problems(str(source))
    try:
        data, duplicates = load_yaml(text, ConfigLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(
            yaml_error(source, exc),
            hint="fix the YAML syntax; `python3 -c 'import yaml,sys; yaml.safe_load(sys.stdin)'`"
            " < FILE shows the same error",
        ) from exc
    for duplicate in duplicates:
        problems.add(duplicate.where, duplicate.message)
    if data is None:
        data = {}
    config = load_dataclass(BuildConfig, data, "", problems)
    if config is not INVALID:
        cross_checks(config, problems)
        bundle_checks(config, flux_dir, problems)
        config = with_local_files(config, base_dir, problems)
    if problems.items:
        raise ConfigError(problems.items, hint="see docs/config.md for every key and default")
    digest = hashlib.sha256(text.encode()).hexdigest()
    result: BuildConfig = dataclasses.replace(config, source=source, sha256=digest)
    return result


def load_config(path: Path | None) -> BuildConfig:
    """Load ``path``, or the embedded default appliance config when ``path`` is None."""
    if path is None:
        path = DEFAULT_CONFIG
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a directory, expected a YAML file") from exc
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: config file not found", hint="pass --config with an existing file"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    return parse_config(text, source=path, base_dir=path.resolve().parent)
