"""The project's JSON Schema subset validator, checked against the reference implementation."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from host_service.schema import Schema, SchemaProblem

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "images"],
    "additionalProperties": False,
    "properties": {
        "version": {"type": "integer", "const": 1},
        "name": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 8},
        "mode": {"enum": ["a", "b"]},
        "count": {"type": "integer", "minimum": 0, "maximum": 3},
        "images": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z]+$"},
            "additionalProperties": {"$ref": "#/$defs/image"},
        },
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True,
                 "minItems": 1, "maxItems": 2},
        "match": {"oneOf": [{"type": "string"}, {"type": "object", "required": ["size"]}]},
        "ratio": {"type": ["number", "null"]},
    },
    "$defs": {
        "image": {
            "type": "object",
            "required": ["ref"],
            "additionalProperties": False,
            "properties": {"ref": {"type": "string"},
                           "digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}},
        }
    },
}  # fmt: skip

INSTANCES: list[Any] = [
    {"version": 1, "images": {}},
    {"version": 2, "images": {}},
    {"version": True, "images": {}},
    {"version": 1.0, "images": {}},
    {"images": {}},
    {"version": 1, "images": {}, "nmae": "x"},
    {"version": 1, "images": {}, "name": "A"},
    {"version": 1, "images": {}, "name": "abcdefghij"},
    {"version": 1, "images": {}, "mode": "c"},
    {"version": 1, "images": {}, "count": -1},
    {"version": 1, "images": {}, "count": 4},
    {"version": 1, "images": {"core": {"ref": "x"}}},
    {"version": 1, "images": {"Core": {"ref": "x"}}},
    {"version": 1, "images": {"core": {"ref": "x", "digest": "sha256:12"}}},
    {"version": 1, "images": {"core": {"rf": "x"}}},
    {"version": 1, "images": {}, "tags": []},
    {"version": 1, "images": {}, "tags": ["a", "a"]},
    {"version": 1, "images": {}, "tags": ["a", "b", "c"]},
    {"version": 1, "images": {}, "match": "largest"},
    {"version": 1, "images": {}, "match": {"size": 1}},
    {"version": 1, "images": {}, "match": {}},
    {"version": 1, "images": {}, "match": 3},
    {"version": 1, "images": {}, "ratio": None},
    {"version": 1, "images": {}, "ratio": "x"},
    [],
    None,
]


@pytest.mark.parametrize("instance", INSTANCES)
def test_agrees_with_the_reference_validator(instance: Any) -> None:
    ours = Schema(SCHEMA).problems(instance)
    theirs = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(instance))
    assert bool(ours) == bool(theirs), (ours, [e.message for e in theirs])


def test_problems_name_their_path() -> None:
    problems = Schema(SCHEMA).problems(
        {"version": 1, "images": {"core": {"rf": "x", "digest": "md5:1"}}, "nmae": 1}
    )
    assert [str(p) for p in problems] == [
        "images.core.ref: required key is missing",
        "images.core.rf: unknown key (did you mean 'ref'?)",
        "images.core.digest: expected a string matching ^sha256:[0-9a-f]{64}$, got 'md5:1'",
        "nmae: unknown key (did you mean 'name'?)",
    ]


def test_root_problem_is_named_root() -> None:
    assert (
        str(SchemaProblem("", "expected object, got list")) == "<root>: expected object, got list"
    )


def test_unsupported_keyword_is_a_schema_bug() -> None:
    with pytest.raises(ValueError, match="unsupported keywords"):
        Schema({"type": "object", "properties": {"a": {"if": {}}}})
