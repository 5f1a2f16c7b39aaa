"""YAML as the config reads it: duplicate keys found, numbers kept as written, errors in a line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from isobuild.config.message_values import Scalar, clip, shown

_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class DuplicateKey:
    """A key given twice in one YAML mapping (PyYAML would silently keep the last)."""

    line: int
    first_line: int
    key: str

    @property
    def where(self) -> str:
        return f"line {self.line}"

    @property
    def message(self) -> str:
        first = "twice" if self.first_line == self.line else f"first on line {self.first_line}"
        return (
            f"duplicate key {shown(self.key)} ({first} in this mapping); YAML keeps only the "
            "last one, so remove or merge the other"
        )


def _duplicate_keys(root: yaml.Node) -> list[DuplicateKey]:
    """Every scalar key written twice in one mapping, in document order.

    Walks the composed nodes before anything is constructed (an alias is one node, seen
    once), so merge keys (``<<``) and aliases stay what YAML says they are.
    """
    found: list[tuple[int, int, DuplicateKey]] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                stack += [key, value]
                if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                    continue
                mark = key.start_mark
                ident = (key.tag, key.value)
                if ident in first:
                    duplicate = DuplicateKey(
                        line=mark.line + 1, first_line=first[ident], key=key.value
                    )
                    found.append((mark.line, mark.column, duplicate))
                else:
                    first[ident] = mark.line + 1
    return [duplicate for *_, duplicate in sorted(found, key=lambda f: f[:2])]


def load_yaml(
    text: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader
) -> tuple[Any, list[DuplicateKey]]:
    """``yaml.safe_load(text)`` plus the keys given twice (which safe_load drops silently)."""
    reader = loader(text)
    try:
        node = reader.get_single_node()
        if node is None:
            return None, []
        # Before constructing: that flattens merge keys (<<) into the nodes themselves.
        duplicates = _duplicate_keys(node)
        return reader.construct_document(node), duplicates
    finally:
        reader.dispose()


class ConfigLoader(yaml.SafeLoader):
    """Loads numbers, booleans and dates as :class:`Scalar` (value plus the text written)."""


def _keeping_text(construct: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Scalar]:
    def constructor(loader: Any, node: Any) -> Scalar:
        try:
            value = construct(loader, node)
        except ValueError as exc:  # e.g. an integer beyond Python's 4300-digit str() limit
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {clip(node.value)!r}: {exc}", node.start_mark
            ) from exc
        return Scalar(value, node.value)

    return constructor


for _tag, _construct in (
    ("int", yaml.SafeLoader.construct_yaml_int),
    ("float", yaml.SafeLoader.construct_yaml_float),
    ("bool", yaml.SafeLoader.construct_yaml_bool),
    ("timestamp", yaml.SafeLoader.construct_yaml_timestamp),
):
    ConfigLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _keeping_text(_construct))


def yaml_error(source: Path | str, exc: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: ``<source>: not valid YAML (line L, column C): why``."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
    return f"{source}: not valid YAML ({where}): {getattr(exc, 'problem', exc)}"
