"""Arguments are checked against the tool's input schema before anything is sent.

An upstream that receives bad arguments answers with an error of its own making, often
vague; checking here gives the model one clear message naming each wrong argument, and
spares the upstream. Validators are compiled once per schema and cached.
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
from mcpproxy.routing.catalog import ToolEntry

MAX_REPORTED_ERRORS = 5


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


def validate_arguments(entry: ToolEntry, arguments: Mapping[str, Any]) -> None:
    """Raise ``InvalidArguments`` naming every problem (up to a few) with ``arguments``."""
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
    problems = [f"{_where(e)}: {e.message}" for e in errors[:MAX_REPORTED_ERRORS]]
    more = len(errors) - len(problems)
    if more > 0:
        problems.append(f"... and {more} more")
    props = entry.input_schema.get("properties") or {}
    required = entry.input_schema.get("required") or []
    expected = ", ".join(
        f"{name}{'*' if name in required else ''}: {spec.get('type', 'any') if isinstance(spec, dict) else 'any'}"
        for name, spec in props.items()
    )
    raise InvalidArguments(
        f"invalid arguments for '{entry.key}': " + "; ".join(problems),
        hint=f"expected {{{expected}}} (* = required); describe_tool shows the full schema",
        data={"tool": entry.key, "errors": problems},
    )
