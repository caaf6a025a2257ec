"""JSON values from the wire that Python holds but that cannot go on: the checks and the safe copies.

Python's JSON parser, and the SDK's, accept more than JSON can carry on:

- ``"\\ud800"``: an unpaired surrogate, a ``str`` that UTF-8 cannot encode. Sent to a stdio server,
  stored in SQLite or written into a response, it raises ``UnicodeEncodeError`` wherever it goes.
- ``NaN``, ``Infinity`` and ``1e999`` (read as infinity): numbers JSON does not have. The SDK
  writes them upstream as ``null``; a response holding one cannot be serialised.
- Nesting a thousand levels deep: each recursive walk over it (redaction, schema checks,
  serialisation) ends in ``RecursionError``.

``problems`` names each such place in a request, so that the front doors refuse it with an error
that says where; ``storable`` makes a copy that the activity log can always write, whatever a
request or a hostile upstream held; ``encodable`` does the same for one string.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_REPORTED", "TOO_DEEP", "encodable", "first_few", "problems", "storable"]

MAX_DEPTH = 64
"""Levels of nesting a request's values may have: real tool arguments have a handful."""
TOO_DEEP = "[nested too deep]"
"""What ``storable`` keeps in place of a value nested deeper than ``MAX_DEPTH``."""
MAX_REPORTED = 5
"""Problems an error names at most (``first_few``)."""


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def encodable(text: str) -> str:
    """``text`` with each unpaired surrogate written as its JSON escape (``\\ud800``); ``text``
    itself when it has none."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if _unencodable(text) else text


def _non_finite(value: float) -> str:
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


def problems(value: Mapping[str, Any], what: str = "argument", max_depth: int = MAX_DEPTH) -> list[str]:
    """Where the values of ``value`` cannot go on, sorted (``argument 'a.b[2]': NaN is not a JSON number``).

    Args:
        value: A parsed JSON object (a tool's arguments, a request body).
        what: The word that introduces each path in the messages.
        max_depth: Levels of nesting allowed below ``value``.

    Returns:
        One message per place; empty when everything can go on.
    """
    found: list[str] = []
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if isinstance(item, str):
            if _unencodable(item):
                found.append(f"{what} '{path}': holds an unpaired surrogate, which is not valid Unicode")
        elif isinstance(item, float):
            if not math.isfinite(item):
                found.append(f"{what} '{path}': {_non_finite(item)} is not a JSON number")
        elif isinstance(item, Mapping | list | tuple):
            if depth >= max_depth:
                found.append(f"{what} '{path}': nested more than {max_depth} levels deep")
                continue
            pairs = item.items() if isinstance(item, Mapping) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, int):
                    stack.append((f"{path}[{key}]", child, depth + 1))
                    continue
                text = str(key)
                name = encodable(text)
                inner = f"{path}.{name}" if path else name
                if name != text:
                    found.append(f"{what} '{inner}': its name holds an unpaired surrogate, which is not valid Unicode")
                stack.append((inner, child, depth + 1))
    return sorted(found)


def first_few(found: list[str], limit: int = MAX_REPORTED) -> list[str]:
    """The first ``limit`` of ``found``, then "... and N more" when there are more."""
    if len(found) <= limit:
        return list(found)
    return [*found[:limit], f"... and {len(found) - limit} more"]


def storable(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """A copy of ``value`` that ``json.dumps(..., allow_nan=False)`` and UTF-8 always accept.

    Strings and keys have their unpaired surrogates escaped, non-finite numbers become the strings
    ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, other non-JSON values their ``str``, and what is
    nested deeper than ``max_depth`` becomes ``TOO_DEEP``. The copy is made without recursion.
    """
    root: list[Any] = [None]
    # (container to fill, key or index in it, the value to copy there, its depth)
    stack: list[tuple[Any, Any, Any, int]] = [(root, 0, value, 0)]
    while stack:
        target, slot, item, depth = stack.pop()
        if isinstance(item, str):
            target[slot] = encodable(item)
        elif item is None or isinstance(item, int):  # bool is an int
            target[slot] = item
        elif isinstance(item, float):
            target[slot] = item if math.isfinite(item) else _non_finite(item)
        elif isinstance(item, Mapping | list | tuple):
            if depth >= max_depth:
                target[slot] = TOO_DEEP
            elif isinstance(item, Mapping):
                copy: dict[str, Any] = {}
                target[slot] = copy
                for key, child in item.items():
                    name = encodable(str(key))
                    copy[name] = None
                    stack.append((copy, name, child, depth + 1))
            else:
                items: list[Any] = [None] * len(item)
                target[slot] = items
                stack.extend((items, i, child, depth + 1) for i, child in enumerate(item))
        else:
            target[slot] = encodable(str(item))
    return root[0]
