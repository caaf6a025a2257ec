"""Validation errors worded for a JSON config file.

Pydantic reports where an error is as a location tuple and words messages for Python
(``valid tuple``, ``instance of ServerSpec``). :func:`config_error_from_validation` turns
that into one :class:`~mcpproxy.errors.ConfigError` whose message names the key path and
its line (located with :class:`~mcpproxy.config.jsonfile.JsonDocument`), or the variable or
flag that supplied the value, and that counts the further errors.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from mcpproxy.config.jsonfile import JsonDocument
from mcpproxy.errors import ConfigError


def format_key(loc: Sequence[str | int]) -> str:
    """``("mcpServers", "time", "args", 0)`` -> ``mcpServers.time.args[0]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(root)"


def validation_message(error: Mapping[str, Any]) -> str:
    """The message of one pydantic error, worded for a JSON config file."""
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown key"
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    message = message.replace("a valid tuple", "a valid list")
    return re.sub(r" or instance of \w+", "", message)


def config_error_from_validation(
    exc: ValidationError,
    *,
    doc: JsonDocument | None,
    origins: Mapping[str, str] | None = None,
    known_keys: Sequence[str] = (),
) -> ConfigError:
    """Turn a pydantic ``ValidationError`` into one ``ConfigError`` that says where.

    The first error is reported in full (key path and line, or the environment variable or
    flag it came from); the others are counted in the message and listed in ``data``.

    Args:
        exc: The validation error.
        doc: The document that was validated, used to find line numbers.
        origins: For top-level keys whose value did not come from the file, where it came
            from (``MCPPROXY_TOOLS_LIMIT``, ``--tools-limit``).
        known_keys: Valid top-level keys, to suggest one for an unknown key.
    """
    origins = origins or {}
    items: list[dict[str, Any]] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = format_key(loc)
        item: dict[str, Any] = {"key": key, "message": validation_message(error)}
        origin = origins.get(str(loc[0])) if loc else None
        if origin is not None:
            item["origin"] = origin
        elif doc is not None and (line := doc.line_of(loc)) is not None:
            item["line"] = line
        if error["type"] == "extra_forbidden" and len(loc) == 1:
            close = difflib.get_close_matches(str(loc[0]), known_keys, n=1)
            item["suggestion"] = close[0] if close else None
        items.append(item)
    first = items[0]
    where = (
        f" (from {first['origin']})" if "origin" in first else (f" (line {first['line']})" if "line" in first else "")
    )
    message = f"config error at {first['key']}{where}: {first['message']}"
    if len(items) > 1:
        rest = len(items) - 1
        message += f" (and {rest} more error{'s' if rest > 1 else ''})"
    hint: str | None
    if first.get("suggestion"):
        hint = f"did you mean {first['suggestion']!r}?"
    elif "suggestion" in first:
        hint = "known keys: " + ", ".join(known_keys)
    elif "origin" in first:
        hint = f"fix the value of {first['origin']}"
    else:
        hint = f"fix {doc.path}" if doc is not None and doc.path else None
    result = ConfigError(message, key=first["key"], line=first.get("line"), hint=hint)
    result.data["errors"] = items
    return result
