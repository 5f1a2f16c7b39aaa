"""Parsed YAML into the config's dataclasses, each wrong type, value or key recorded by path."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from isobuild.config.message_values import Scalar, clip, kind, plain, shown
from isobuild.config.problems import Problems

# What a value that cannot be converted becomes; its problem is already recorded.
INVALID = object()


def _type_name(tp: Any) -> str:
    """How a list or enum error names what was expected (the other types word their own)."""
    if typing.get_origin(tp) is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if tp is str:
        return "a string"
    raise TypeError(f"config field type {tp!r} has no name here")  # a bug in this module


def _reading(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {clip(str(value))}"
    return f"a {type(value).__name__}"


def _to_str(value: Any, path: str, problems: Problems, *, secret: bool) -> Any:
    """A YAML string as is; a number only where it reads back exactly as it was written."""
    if isinstance(value, str):
        return value
    if isinstance(value, Scalar) and not secret:
        loaded = value.value
        number = isinstance(loaded, int | float) and not isinstance(loaded, bool)
        if number and str(loaded) == value.text:
            return value.text  # `version: 2`, `version: 1.0`: nothing lost
        text = clip(value.text)
        key = path.rpartition(".")[2]
        problems.add(
            path,
            f"expected a string, got {text} (YAML reads it as {_reading(loaded)}); quote it: "
            f'{key}: "{text}"',
        )
        return INVALID
    # A secret (or a container) is named by its type only.
    problems.add(path, f"expected a string, got {kind(value)}")
    return INVALID


def _convert(tp: Any, value: Any, path: str, problems: Problems, *, secret: bool = False) -> Any:
    """Convert a YAML value to ``tp``; on error record it and return a sentinel."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _convert(inner, value, path, problems, secret=secret)
    if tp is str:
        return _to_str(value, path, problems, secret=secret)
    value = plain(value)
    if origin is tuple:
        if not isinstance(value, list):
            problems.add(path, f"expected {_type_name(tp)}, got {kind(value)}")
            return INVALID
        item_tp = typing.get_args(tp)[0]
        items = [
            _convert(item_tp, v, f"{path}[{i}]", problems, secret=secret)
            for i, v in enumerate(value)
        ]
        return tuple(items)
    if dataclasses.is_dataclass(tp):
        return load_dataclass(tp, value, path, problems)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            # Only a string can be a member: anything else (a list of aliases...) is refused
            # before Enum's own message could repr it whole.
            if isinstance(value, str):
                return tp(value)
        except ValueError:
            pass
        problems.add(path, f"expected {_type_name(tp)}, got {shown(value)}")
        return INVALID
    if tp is bool:
        if not isinstance(value, bool):
            problems.add(path, f"expected true or false, got {shown(value)}")
            return INVALID
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.add(path, f"expected an integer, got {shown(value)}")
            return INVALID
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            problems.add(path, f"expected a path, got {shown(value)}")
            return INVALID
        return Path(value)
    raise TypeError(f"config field type {tp!r} is not supported")  # a bug in this module


def _key_name(key: Any) -> str:
    return clip(str(key)) if isinstance(key, str | Scalar) else shown(key)


def _repeated(items: tuple[Any, ...]) -> Iterator[Any]:
    seen: list[Any] = []
    for item in items:
        if item is INVALID:
            continue
        if item in seen:
            yield item
        seen.append(item)


def load_dataclass(cls: Any, data: Any, path: str, problems: Problems) -> Any:
    """A ``cls`` from a YAML mapping, or :data:`INVALID`; each problem recorded under ``path``."""
    if not isinstance(data, dict):
        problems.add(path, f"expected a mapping, got {kind(data)}")
        return INVALID
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = _key_name(key)
        key_path = f"{path}.{name}" if path else name
        if key not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            allowed = ", ".join(sorted(fields))
            problems.add(key_path, f"unknown key{hint}; allowed here: {allowed}")
            continue
        meta = fields[key].metadata
        converted = _convert(hints[key], value, key_path, problems, secret=bool(meta.get("secret")))
        if converted is INVALID:
            continue
        check = meta.get("check")
        if check is not None and converted is not None:
            values = converted if isinstance(converted, tuple) else (converted,)
            for i, item in enumerate(values):
                if item is INVALID:
                    continue
                message = check(item)
                if message:
                    where = f"{key_path}[{i}]" if isinstance(converted, tuple) else key_path
                    problems.add(where, message)
        if meta.get("unique") and isinstance(converted, tuple):
            for item in _repeated(converted):
                listed = shown(item.value if isinstance(item, enum.Enum) else item)
                problems.add(key_path, f"{listed} is listed more than once; list each once")
        kwargs[key] = converted
    for name, f in fields.items():
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if no_default and name not in data:
            problems.add(f"{path}.{name}" if path else name, "required value is missing")
    try:
        return cls(**kwargs)
    except TypeError:
        return INVALID  # missing required values, already reported
