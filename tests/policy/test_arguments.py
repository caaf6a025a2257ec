"""Arguments are checked against the tool's input schema before the call goes upstream."""

from __future__ import annotations

import urllib.request
from typing import Any

import mcp_types as types
import pytest

from mcpproxy.errors import InvalidArguments
from mcpproxy.policy.arguments import MAX_REPORTED_ERRORS, validate_arguments
from mcpproxy.routing.catalog import ToolEntry

DRAFT_07 = "http://json-schema.org/draft-07/schema#"


def entry(schema: dict[str, Any], name: str = "tool") -> ToolEntry:
    return ToolEntry("srv", types.Tool(name=name, input_schema=schema))


READ_FILE = {
    "type": "object",
    "properties": {"path": {"type": "string"}, "count": {"type": "integer"}},
    "required": ["path"],
}


def invalid(schema: dict[str, Any], arguments: dict[str, Any]) -> InvalidArguments:
    with pytest.raises(InvalidArguments) as info:
        validate_arguments(entry(schema), arguments)
    return info.value


def test_valid_arguments_pass() -> None:
    validate_arguments(entry(READ_FILE), {"path": "/tmp/x", "count": 3})


def test_no_arguments_pass_for_a_tool_without_required_parameters() -> None:
    validate_arguments(entry({"type": "object", "properties": {"verbose": {"type": "boolean"}}}), {})


def test_any_object_passes_for_a_tool_with_an_empty_object_schema() -> None:
    validate_arguments(entry({"type": "object"}), {"anything": [1, {"x": None}]})


def test_a_missing_required_argument_is_named() -> None:
    err = invalid(READ_FILE, {"count": 1})
    assert err.message == "invalid arguments for 'srv:tool': arguments: 'path' is a required property"
    assert err.data == {"tool": "srv:tool", "errors": ["arguments: 'path' is a required property"]}


def test_the_hint_lists_the_expected_arguments_and_marks_required_ones() -> None:
    err = invalid(READ_FILE, {})
    assert err.hint == "expected {path*: string, count: integer} (* = required); describe_tool shows the full schema"


def test_a_wrong_type_names_the_argument_and_the_expected_type() -> None:
    err = invalid(READ_FILE, {"path": "/x", "count": "3"})
    assert err.data["errors"] == ["argument 'count': '3' is not of type 'integer'"]
    assert "argument 'count'" in err.message


def test_a_boolean_is_not_accepted_for_an_integer() -> None:
    err = invalid(READ_FILE, {"path": "/x", "count": True})
    assert err.data["errors"] == ["argument 'count': True is not of type 'integer'"]


NESTED = {
    "type": "object",
    "properties": {
        "options": {"type": "object", "properties": {"depth": {"type": "integer"}}},
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        },
    },
}


def test_errors_inside_objects_and_arrays_name_the_full_path() -> None:
    err = invalid(NESTED, {"options": {"depth": "deep"}, "items": [{"name": "a"}, {"name": 5}, {}]})
    assert err.data["errors"] == [
        "argument 'items[1].name': 5 is not of type 'string'",
        "argument 'items[2]': 'name' is a required property",
        "argument 'options.depth': 'deep' is not of type 'integer'",
    ]
    assert err.message == "invalid arguments for 'srv:tool': " + "; ".join(err.data["errors"])


def test_several_errors_are_all_reported() -> None:
    err = invalid(READ_FILE, {"path": 1, "count": "x"})
    assert err.data["errors"] == [
        "argument 'count': 'x' is not of type 'integer'",
        "argument 'path': 1 is not of type 'string'",
    ]


def test_past_the_reporting_limit_the_rest_are_counted() -> None:
    schema = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(8)}}
    err = invalid(schema, {f"p{i}": "bad" for i in range(8)})
    problems = err.data["errors"]
    assert len(problems) == MAX_REPORTED_ERRORS + 1
    assert problems[-1] == f"... and {8 - MAX_REPORTED_ERRORS} more"
    assert all(p.startswith("argument 'p") for p in problems[:-1])
    assert err.message.endswith(f"; ... and {8 - MAX_REPORTED_ERRORS} more")


def test_exactly_the_reporting_limit_has_no_count() -> None:
    schema = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(MAX_REPORTED_ERRORS)}}
    err = invalid(schema, {f"p{i}": "bad" for i in range(MAX_REPORTED_ERRORS)})
    assert len(err.data["errors"]) == MAX_REPORTED_ERRORS
    assert "more" not in err.message


# --- draft-07 (what zod-to-json-schema emits for the npm servers) ----------------------

ZOD_STYLE = {
    "$schema": DRAFT_07,
    "type": "object",
    "properties": {
        "path": {"type": "string"},
        "point": {"type": "array", "items": [{"type": "number"}, {"type": "number"}]},
        "mode": {"$ref": "#/definitions/mode"},
    },
    "required": ["path"],
    "additionalProperties": False,
    "definitions": {"mode": {"type": "string", "enum": ["r", "w"]}},
}


def test_a_draft_07_schema_accepts_valid_arguments() -> None:
    validate_arguments(entry(ZOD_STYLE), {"path": "/x", "point": [1, 2.5], "mode": "r"})


def test_a_draft_07_tuple_items_schema_is_enforced_per_position() -> None:
    # Under 2020-12 an array-valued "items" is not even a valid schema; draft-07 checks each slot.
    err = invalid(ZOD_STYLE, {"path": "/x", "point": [1, "two"]})
    assert err.data["errors"] == ["argument 'point[1]': 'two' is not of type 'number'"]


def test_a_draft_07_definitions_reference_is_followed() -> None:
    err = invalid(ZOD_STYLE, {"path": "/x", "mode": "append"})
    assert err.data["errors"] == ["argument 'mode': 'append' is not one of ['r', 'w']"]


def test_a_draft_07_schema_refuses_unexpected_arguments() -> None:
    err = invalid(ZOD_STYLE, {"path": "/x", "recursive": True})
    assert err.data["errors"] == ["arguments: Additional properties are not allowed ('recursive' was unexpected)"]


def test_a_draft_07_schema_reports_a_missing_required_argument() -> None:
    err = invalid(ZOD_STYLE, {})
    assert err.data["errors"] == ["arguments: 'path' is a required property"]


# --- broken schemas are the upstream's problem ------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "strng"}}, "required": ["a"]},
        {"type": "object", "required": "a"},
        {"type": 12},
        {"type": "object", "properties": {"a": {"$ref": "#/definitions/missing"}}, "required": ["a"]},
        {"type": "object", "properties": {"a": {"$ref": "https://example.invalid/schema.json"}}},
    ],
    ids=["unknown-type", "required-not-a-list", "type-not-a-string", "dangling-ref", "remote-ref"],
)
def test_a_broken_schema_lets_the_call_through(schema: dict[str, Any]) -> None:
    validate_arguments(entry(schema), {"a": 1})


def test_a_remote_reference_is_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    fetched: list[object] = []

    def no_network(request: object, *args: object, **kwargs: object) -> None:
        fetched.append(request)
        raise OSError("the test forbids network access")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    schema = {"type": "object", "properties": {"a": {"$ref": "http://169.254.169.254/never-fetched.json"}}}
    validate_arguments(entry(schema), {"a": 1})
    assert fetched == []


def test_a_local_reference_still_works_without_remote_retrieval() -> None:
    schema = {"$defs": {"n": {"type": "integer"}}, "type": "object", "properties": {"a": {"$ref": "#/$defs/n"}}}
    err = invalid(schema, {"a": "one"})
    assert err.data["errors"] == ["argument 'a': 'one' is not of type 'integer'"]


NUMBERS = {"type": "object", "properties": {"x": {"type": "number"}, "points": {"type": "array"}}}


@pytest.mark.parametrize(
    ("value", "said"), [(float("nan"), "NaN"), (float("inf"), "Infinity"), (float("-inf"), "-Infinity")]
)
def test_a_number_json_does_not_have_is_refused_though_the_schema_takes_any_number(value: float, said: str) -> None:
    err = invalid(NUMBERS, {"x": value})
    assert err.data["errors"] == [f"argument 'x': {said} is not a JSON number"]
    assert "finite number" in (err.hint or "")


def test_non_finite_numbers_are_found_at_any_depth_and_refused_even_without_a_usable_schema() -> None:
    arguments = {"points": [1.0, {"y": float("nan")}], "meta": {"scale": float("inf"), "ok": 2.5}}
    for schema in (NUMBERS, {}, {"type": "object", "properties": {"x": {"type": "nonsense"}}}):
        err = invalid(schema, arguments)
        assert err.data["errors"] == [
            "argument 'meta.scale': Infinity is not a JSON number",
            "argument 'points[1].y': NaN is not a JSON number",
        ]
    validate_arguments(entry(NUMBERS), {"x": 1e308, "points": [-0.0, 2]})
