"""docs/config.md documents every key of the build config."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from typing import Any

from isobuild.config import BuildConfig
from tests.conftest import PROJECT_ROOT


def _keys(cls: Any, prefix: str = "") -> Iterator[str]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            yield from _keys(hints[f.name], f"{key}.")
        else:
            yield key


def test_every_config_key_is_documented() -> None:
    text = (PROJECT_ROOT / "docs" / "config.md").read_text()
    missing = [key for key in _keys(BuildConfig) if f"`{key}`" not in text]
    assert missing == []
