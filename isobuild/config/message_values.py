"""How a config value appears in a message: as it was written, clipped, containers by type."""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Scalar:
    """A YAML number, boolean or date as loaded, with the text it was written as.

    A string field can then take ``version: 1.0`` as written and refuse ``version: 1.10``
    (YAML reads 1.1) or ``name: 0123`` (YAML 1.1 reads the octal 83) naming what was typed.
    """

    value: Any
    text: str

    def __str__(self) -> str:
        return self.text


_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80


def plain(value: Any) -> Any:
    return value.value if isinstance(value, Scalar) else value


def kind(value: Any) -> str:
    """A value's YAML type for messages (never the value itself)."""
    value = plain(value)
    return "null" if value is None else type(value).__name__


def shown(value: Any) -> str:
    """A value for a message: at most ~80 characters, containers by their type only."""
    value = plain(value)
    if isinstance(value, list | dict | tuple | set):
        return kind(value)
    return _REPR.repr(value)


def clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
