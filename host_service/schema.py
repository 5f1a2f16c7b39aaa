"""A JSON Schema (draft 2020-12 subset) validator that reports every problem with its path.

The appliance runs on stock Ubuntu with no pip installs, so the project carries the subset
of JSON Schema its own schemas use: type, enum, const, pattern, minLength/maxLength,
minimum/exclusiveMinimum/maximum, properties, required, additionalProperties, propertyNames,
patternProperties, items, minItems/maxItems, uniqueItems, oneOf/anyOf/allOf, $ref into
$defs. A keyword outside that subset is a bug in the schema and raises at load time.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUPPORTED = frozenset(
    {
        "$schema", "$id", "$defs", "$ref", "$comment", "title", "description", "default",
        "examples", "type", "enum", "const", "pattern", "minLength", "maxLength", "minimum",
        "exclusiveMinimum", "maximum", "properties", "required", "additionalProperties",
        "propertyNames", "patternProperties", "items", "minItems", "maxItems", "uniqueItems",
        "oneOf", "anyOf", "allOf", "format",
    }
)  # fmt: skip

_TYPES: Mapping[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


@dataclass(frozen=True)
class SchemaProblem:
    """One way an instance fails its schema: where (a dotted path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.message}"


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES[name])


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Schema:
    """A loaded schema; ``problems(instance)`` lists every violation."""

    def __init__(self, document: Mapping[str, Any], *, name: str = "schema") -> None:
        self.document = document
        self.name = name
        self._check_keywords(document, "")

    @classmethod
    def load(cls, path: Path) -> Schema:
        return cls(json.loads(path.read_text(encoding="utf-8")), name=path.name)

    def _check_keywords(self, node: Any, where: str) -> None:
        if not isinstance(node, dict):
            return
        unknown = set(node) - SUPPORTED
        if unknown:
            raise ValueError(f"{self.name}: {where or '<root>'}: unsupported keywords {unknown}")
        for key in ("properties", "patternProperties", "$defs"):
            for sub_key, sub in node.get(key, {}).items():
                self._check_keywords(sub, f"{where}/{key}/{sub_key}")
        for key in ("items", "additionalProperties", "propertyNames"):
            if isinstance(node.get(key), dict):
                self._check_keywords(node[key], f"{where}/{key}")
        for key in ("oneOf", "anyOf", "allOf"):
            for i, sub in enumerate(node.get(key, [])):
                self._check_keywords(sub, f"{where}/{key}/{i}")

    def _resolve(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#/"):
            raise ValueError(f"{self.name}: only local $ref are supported, got {ref!r}")
        node: Any = self.document
        for part in ref[2:].split("/"):
            node = node[part]
        result: Mapping[str, Any] = node
        return result

    def problems(self, instance: Any) -> list[SchemaProblem]:
        found: list[SchemaProblem] = []
        self._validate(self.document, instance, "", found)
        return found

    def _validate(
        self, schema: Mapping[str, Any], value: Any, path: str, out: list[SchemaProblem]
    ) -> None:
        if "$ref" in schema:
            self._validate(self._resolve(schema["$ref"]), value, path, out)
        expected = schema.get("type")
        if expected is not None:
            names = [expected] if isinstance(expected, str) else list(expected)
            if not any(_is_type(value, n) for n in names):
                got = "null" if value is None else type(value).__name__
                out.append(SchemaProblem(path, f"expected {' or '.join(names)}, got {got}"))
                return
        if "const" in schema and value != schema["const"]:
            out.append(SchemaProblem(path, f"expected {schema['const']!r}, got {value!r}"))
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(repr(v) for v in schema["enum"])
            out.append(SchemaProblem(path, f"expected one of {allowed}, got {value!r}"))
        if isinstance(value, str):
            self._validate_string(schema, value, path, out)
        if _is_type(value, "number"):
            if "minimum" in schema and value < schema["minimum"]:
                out.append(SchemaProblem(path, f"must be >= {schema['minimum']}, got {value}"))
            if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
                bound = schema["exclusiveMinimum"]
                out.append(SchemaProblem(path, f"must be > {bound}, got {value}"))
            if "maximum" in schema and value > schema["maximum"]:
                out.append(SchemaProblem(path, f"must be <= {schema['maximum']}, got {value}"))
        if isinstance(value, dict):
            self._validate_object(schema, value, path, out)
        if isinstance(value, list):
            self._validate_array(schema, value, path, out)
        for sub in schema.get("allOf", []):
            self._validate(sub, value, path, out)
        if "anyOf" in schema or "oneOf" in schema:
            self._validate_alternatives(schema, value, path, out)

    def _validate_string(
        self, schema: Mapping[str, Any], value: str, path: str, out: list[SchemaProblem]
    ) -> None:
        if "pattern" in schema and not re.search(schema["pattern"], value):
            shown = value if len(value) <= 80 else value[:77] + "..."
            what = schema.get("description") or f"a string matching {schema['pattern']}"
            out.append(SchemaProblem(path, f"expected {what}, got {shown!r}"))
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.append(SchemaProblem(path, f"must be at least {schema['minLength']} characters"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(SchemaProblem(path, f"must be at most {schema['maxLength']} characters"))

    def _validate_object(
        self, schema: Mapping[str, Any], value: dict[str, Any], path: str, out: list[SchemaProblem]
    ) -> None:
        properties: Mapping[str, Any] = schema.get("properties", {})
        patterns: Mapping[str, Any] = schema.get("patternProperties", {})
        for key in schema.get("required", []):
            if key not in value:
                out.append(SchemaProblem(_join(path, key), "required key is missing"))
        names = schema.get("propertyNames")
        for key, item in value.items():
            if names is not None:
                self._validate(names, key, _join(path, key), out)
            matched = False
            if key in properties:
                matched = True
                self._validate(properties[key], item, _join(path, key), out)
            for pattern, sub in patterns.items():
                if re.search(pattern, key):
                    matched = True
                    self._validate(sub, item, _join(path, key), out)
            if matched:
                continue
            extra = schema.get("additionalProperties", True)
            if extra is False:
                close = difflib.get_close_matches(key, list(properties), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                out.append(SchemaProblem(_join(path, key), f"unknown key{hint}"))
            elif isinstance(extra, dict):
                self._validate(extra, item, _join(path, key), out)

    def _validate_array(
        self, schema: Mapping[str, Any], value: list[Any], path: str, out: list[SchemaProblem]
    ) -> None:
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append(SchemaProblem(path, f"must have at least {schema['minItems']} items"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(SchemaProblem(path, f"must have at most {schema['maxItems']} items"))
        if schema.get("uniqueItems"):
            seen: list[Any] = []
            for i, item in enumerate(value):
                if item in seen:
                    out.append(SchemaProblem(_join(path, i), f"duplicate item {item!r}"))
                seen.append(item)
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                self._validate(items, item, _join(path, i), out)

    def _validate_alternatives(
        self, schema: Mapping[str, Any], value: Any, path: str, out: list[SchemaProblem]
    ) -> None:
        for keyword in ("anyOf", "oneOf"):
            options = schema.get(keyword)
            if not options:
                continue
            results: list[list[SchemaProblem]] = []
            for option in options:
                found: list[SchemaProblem] = []
                self._validate(option, value, path, found)
                results.append(found)
            passing = sum(1 for r in results if not r)
            if passing == 0:
                # Report the alternative that came closest: it is usually the one meant.
                closest: list[SchemaProblem] = min(results, key=len)
                out.extend(closest)
            elif keyword == "oneOf" and passing > 1:
                out.append(SchemaProblem(path, f"matches {passing} alternatives, expected one"))
