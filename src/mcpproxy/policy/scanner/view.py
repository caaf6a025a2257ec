"""A tool definition flattened into the text fields a model reads, each with its location.

A poisoned tool can hide its payload anywhere the client forwards to the model: the name, the
description, and every corner of the input schema (parameter names and descriptions, titles,
defaults, enums, examples, ``$comment``, vendor ``x-`` keys, nested objects, ``$defs``). The
walk below visits all of them, with caps on depth, field count, text per field and text per
tool (``MAX_*``), so that a hostile or absurd definition costs bounded time. Whatever the
shape of the input (missing keys, wrong types), the walk yields fields and never raises.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mcpproxy.policy.scanner.text import name_tokens

MAX_DEPTH = 12
MAX_FIELDS = 2000
MAX_TEXT = 20_000
MAX_TOTAL = 200_000

# Keys whose string values are machine syntax rather than prose the model reads as guidance.
_SYNTAX_KEYS = frozenset(
    {"type", "format", "$ref", "$schema", "$id", "pattern", "contentEncoding", "contentMediaType"}
)
_NODE_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_NODE_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_NODE_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains")
_VALUE_LISTS = ("enum", "examples")
_VALUE_ONE = ("default", "const", "example")


class Kind(StrEnum):
    """What sort of text a field holds; rules use it to decide what applies."""

    NAME = "name"  # the tool name
    PROSE = "prose"  # descriptions, titles, comments: text addressed to the model
    PARAM = "param"  # a parameter name
    VALUE = "value"  # defaults, enums, examples, constants


@dataclass(frozen=True, slots=True)
class Field:
    """One piece of text and where it sits in the tool definition.

    Attributes:
        location: Dotted path, e.g. ``inputSchema.properties.path.description``.
        text: The text (non-strings are JSON-encoded).
        kind: What sort of text it is.
        param: The top-level parameter the field belongs to, if any.
        via: How the text was obtained when it is not literal (``base64``, ``hex``, ...).
        lower: ``text`` lower-cased, same length, for the rules' patterns.
    """

    location: str
    text: str
    kind: Kind
    param: str | None = None
    via: str | None = None
    lower: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Rules match lower-case patterns against ``lower``; offsets must stay valid in ``text``,
        # so characters whose lower case is longer than one code point are kept as they are.
        low = self.text.lower()
        if len(low) != len(self.text):
            low = "".join(c if len(c.lower()) != 1 else c.lower() for c in self.text)
        object.__setattr__(self, "lower", low)


@dataclass(frozen=True, slots=True)
class ToolView:
    """Everything the rules need to know about one tool, computed once.

    Attributes:
        server: Server the tool belongs to, when known.
        name: Tool name (``""`` if absent).
        description: Top-level description (``""`` if absent).
        fields: All text fields, name first.
        params: Top-level parameter names, in schema order.
        tokens: Lower-case words of the tool name.
    """

    server: str | None
    name: str
    description: str
    fields: tuple[Field, ...]
    params: tuple[str, ...]
    tokens: tuple[str, ...]


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        except (TypeError, ValueError):  # circular structures and the like
            text = repr(value)
    return text[:MAX_TEXT]


def _schema_fields(node: Any, path: str, param: str | None, depth: int) -> Iterator[Field]:
    if not isinstance(node, Mapping) or depth > MAX_DEPTH:
        return
    for key, value in node.items():
        key = str(key)
        loc = f"{path}.{key}"
        if key in _NODE_MAPS and isinstance(value, Mapping):
            for child_name, child in value.items():
                child_name = str(child_name)
                child_loc = f"{loc}.{child_name}"
                owner = child_name if (param is None and key == "properties" and depth == 0) else param
                if key == "properties":
                    yield Field(child_loc, child_name[:MAX_TEXT], Kind.PARAM, owner)
                yield from _schema_fields(child, child_loc, owner, depth + 1)
        elif key in _NODE_LISTS and isinstance(value, list):
            for i, child in enumerate(value):
                yield from _schema_fields(child, f"{loc}[{i}]", param, depth + 1)
        elif key in _NODE_ONE and isinstance(value, Mapping):
            yield from _schema_fields(value, loc, param, depth + 1)
        elif key in _NODE_ONE and key == "items" and isinstance(value, list):
            for i, child in enumerate(value):
                yield from _schema_fields(child, f"{loc}[{i}]", param, depth + 1)
        elif key in _VALUE_LISTS and isinstance(value, list):
            for i, item in enumerate(value):
                if item is not None and not isinstance(item, bool | int | float):
                    yield Field(f"{loc}[{i}]", _as_text(item), Kind.VALUE, param)
        elif key in _VALUE_ONE:
            if value is not None and not isinstance(value, bool | int | float):
                yield Field(loc, _as_text(value), Kind.VALUE, param)
        elif key in _SYNTAX_KEYS or key == "required":
            continue
        elif isinstance(value, str):
            yield Field(loc, value[:MAX_TEXT], Kind.PROSE, param)
        elif isinstance(value, Mapping | list) and key.startswith(("x-", "$comment")):
            yield Field(loc, _as_text(value), Kind.PROSE, param)


def _tool_fields(tool: Mapping[str, Any], name: str, description: str) -> Iterator[Field]:
    yield Field("name", name, Kind.NAME)
    title = tool.get("title")
    if title is not None:
        yield Field("title", _as_text(title), Kind.PROSE)
    if description:
        yield Field("description", description, Kind.PROSE)
    annotations = tool.get("annotations")
    if isinstance(annotations, Mapping) and annotations.get("title") is not None:
        yield Field("annotations.title", _as_text(annotations["title"]), Kind.PROSE)
    yield from _schema_fields(tool.get("inputSchema"), "inputSchema", None, 0)


def build_view(tool: Mapping[str, Any], server: str | None) -> ToolView:
    """Flatten a tool definition (any mapping, however malformed) into a ``ToolView``."""
    raw_name = tool.get("name")
    name = "" if raw_name is None else _as_text(raw_name)
    raw_desc = tool.get("description")
    description = "" if raw_desc is None else _as_text(raw_desc)
    fields: list[Field] = []
    total = 0
    for f in _tool_fields(tool, name, description):
        fields.append(f)
        total += len(f.text)
        if len(fields) >= MAX_FIELDS or total >= MAX_TOTAL:
            break
    schema = tool.get("inputSchema")
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    params = tuple(str(k) for k in props) if isinstance(props, Mapping) else ()
    return ToolView(server, name, description, tuple(fields), params, name_tokens(name))
