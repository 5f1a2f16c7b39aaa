"""The config's local files: paths resolved against the config's directory, each file checked."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from isobuild import ca_bundle
from isobuild.config.model import BuildConfig, PayloadConfig, SigningConfig
from isobuild.config.problems import Problems
from isobuild.resources import DEFAULT_LOCK


def _file_problem(path: Path, wanted: str) -> str | None:
    """Why ``path`` is no readable file (with what to give instead), or None."""
    if not path.exists():
        return (
            f"{path}: no such file; give {wanted} (a relative path is relative to the config "
            "file's directory)"
        )
    if path.is_dir():
        return f"{path}: is a directory; give {wanted}"
    if not path.is_file():
        return f"{path}: not a regular file; give {wanted}"
    try:
        with path.open("rb") as stream:
            stream.read(1)
    except OSError as exc:
        return (
            f"{path}: cannot be read ({exc.strerror}); make it readable by the user running "
            "isobuild"
        )
    return None


LOCK_FILE = "the payload lock file (docs/payload.md; `isobuild lock --update` writes one)"
SIGNING_KEY = (
    "an OpenPGP secret key file (`gpg --export-secret-keys --armor FINGERPRINT > key.asc`) "
    "or the 16- or 40-hex-digit fingerprint of a key in gpg-agent"
)


def with_local_files(config: BuildConfig, base_dir: Path | None, problems: Problems) -> BuildConfig:
    """Local paths resolved against the config's directory; the CA bundle checked."""
    registry = config.appliance.registry
    if registry.ca_bundle is not None:
        ca = _resolve(registry.ca_bundle, base_dir)
        message = ca_bundle.problem(ca)
        if message:
            problems.add("appliance.registry.ca_bundle", message)
        registry = dataclasses.replace(registry, ca_bundle=ca)
    signing = config.signing
    if signing.key is not None and not _looks_like_fingerprint(signing.key):
        key = _resolve(Path(signing.key), base_dir)
        message = _file_problem(key, SIGNING_KEY)
        if message:
            problems.add("signing.key", message)
        signing = SigningConfig(key=str(key))
    lock = _resolve(config.payload.lock, base_dir)
    if lock != DEFAULT_LOCK:  # the project's own is checked where it is read
        message = _file_problem(lock, LOCK_FILE)
        if message:
            problems.add("payload.lock", message)
    return dataclasses.replace(
        config,
        appliance=dataclasses.replace(config.appliance, registry=registry),
        payload=PayloadConfig(lock=lock),
        signing=signing,
    )


def _looks_like_fingerprint(text: str) -> bool:
    return re.fullmatch(r"(0x)?[0-9A-Fa-f]{16}([0-9A-Fa-f]{24})?", text) is not None


def _resolve(path: Path, base_dir: Path | None) -> Path:
    """A path from the config: relative ones are relative to the config file's directory."""
    if path.is_absolute() or base_dir is None:
        return path
    return (base_dir / path).resolve()
