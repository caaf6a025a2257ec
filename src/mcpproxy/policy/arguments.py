"""Arguments are checked against the tool's input schema before anything is sent.

An upstream that receives bad arguments answers with an error of its own making, often
vague; checking here gives the model one clear message naming each wrong argument, and
spares the upstream. Validators are compiled once per schema and cached.

Values that cannot go on are refused whatever the schema says (``mcpproxy.jsonvalues``): numbers
JSON does not have (``NaN``, ``Infinity``; a ``number`` schema accepts them, and the SDK would send
them upstream as ``null``), strings with an unpaired surrogate (UTF-8 cannot encode them: the
stdio server's pipe would break), and nesting deeper than ``MAX_DEPTH`` levels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

from mcpproxy.errors import InvalidArguments
from mcpproxy.jsonvalues import MAX_DEPTH, MAX_REPORTED, first_few, problems
from mcpproxy.routing.catalog import ToolEntry

MAX_REPORTED_ERRORS = MAX_REPORTED


@lru_cache(maxsize=4096)
def _validator(schema_json: str) -> Validator | None:
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError:
        # A server with a broken schema is still usable: the upstream validates for itself.
        return None
    # An empty registry: jsonschema's default one fetches remote $refs with a blocking urlopen,
    # which would let any upstream make the gateway request URLs of its choosing.
    validator: Validator = cls(schema, format_checker=None, registry=Registry())
    return validator


def _where(error: ValidationError) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    return f"argument '{path}'" if path else "arguments"


def _refuse(entry: ToolEntry, found: list[str], hint: str) -> InvalidArguments:
    """The error naming the first few problems, and how many more there are."""
    shown = first_few(found, MAX_REPORTED_ERRORS)
    return InvalidArguments(
        f"invalid arguments for '{entry.key}': " + "; ".join(shown),
        hint=hint,
        data={"tool": entry.key, "errors": shown},
    )


def validate_arguments(entry: ToolEntry, arguments: Mapping[str, Any]) -> None:
    """Raise ``InvalidArguments`` naming every problem (up to a few) with ``arguments``."""
    unsendable = problems(arguments)
    if unsendable:
        raise _refuse(
            entry,
            unsendable,
            f"send finite numbers and valid Unicode, nested at most {MAX_DEPTH} levels (JSON has no NaN or Infinity)",
        )
    validator = _validator(json.dumps(entry.input_schema, sort_keys=True))
    if validator is None:
        return
    try:
        errors = sorted(validator.iter_errors(dict(arguments)), key=lambda e: list(map(str, e.absolute_path)))
    except Unresolvable:
        # A dangling or remote $ref is a broken schema too: leave the checking to the upstream.
        return
    if not errors:
        return
    props = entry.input_schema.get("properties") or {}
    required = entry.input_schema.get("required") or []
    expected = ", ".join(
        f"{name}{'*' if name in required else ''}: {spec.get('type', 'any') if isinstance(spec, dict) else 'any'}"
        for name, spec in props.items()
    )
    raise _refuse(
        entry,
        [f"{_where(e)}: {e.message}" for e in errors],
        f"expected {{{expected}}} (* = required); describe_tool shows the full schema",
    )
