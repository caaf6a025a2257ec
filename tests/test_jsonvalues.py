"""What a request can hold that cannot go on: found with its place, or made storable."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import pytest

from mcpproxy.filters.secrets import MAX_WALK_DEPTH, redact_json
from mcpproxy.jsonvalues import MAX_DEPTH, TOO_DEEP, encodable, problems, storable


def nested(levels: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(levels - 1):
        child: list[Any] = []
        node.append(child)
        node = child
    return root


def test_each_place_that_cannot_go_on_is_named() -> None:
    value = {
        "a": math.nan,
        "b": {"c": ["ok", "\ud800"], "e": -math.inf},
        "\udc00k": 1,
        "fine": [1, 2.5, "text", None, True, {"x": "y"}],
    }
    assert problems(value) == [
        "argument '\\udc00k': its name holds an unpaired surrogate, which is not valid Unicode",
        "argument 'a': NaN is not a JSON number",
        "argument 'b.c[1]': holds an unpaired surrogate, which is not valid Unicode",
        "argument 'b.e': -Infinity is not a JSON number",
    ]
    assert problems({"x": 1e308, "s": "😀 naïve", "p": [[[]]]}) == []


def test_nesting_is_refused_past_the_limit_and_found_without_recursion() -> None:
    assert problems({"d": nested(MAX_DEPTH - 1)}) == []
    deep = problems({"d": nested(MAX_DEPTH)}, what="field")
    assert len(deep) == 1 and deep[0].endswith(f"nested more than {MAX_DEPTH} levels deep")
    far = nested(sys.getrecursionlimit() * 5)
    assert len(problems({"d": far})) == 1


def test_a_storable_copy_always_serialises_as_strict_json_and_utf_8() -> None:
    far = nested(sys.getrecursionlimit() * 5)
    value = {"s": "a\ud800b", "\udfffk": [math.inf, -math.inf, math.nan, 1.5], "o": object(), "d": far, 3: "int key"}
    copy = storable(value)
    text = json.dumps(copy, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    assert copy["s"] == "a\\ud800b"
    assert copy["\\udfffk"] == ["Infinity", "-Infinity", "NaN", 1.5]
    assert copy["o"].startswith("<object object")
    assert copy["3"] == "int key"
    depth, node = 0, copy["d"]
    while isinstance(node, list):
        depth, node = depth + 1, node[0]
    assert node == TOO_DEEP and depth == MAX_DEPTH - 1
    plain = {"a": [1, {"b": None, "c": True}], "t": "ünï"}
    assert storable(plain) == plain and storable(plain) is not plain


@pytest.mark.parametrize(("text", "expected"), [("plain", "plain"), ("x\ud83dy", "x\\ud83dy"), ("😀", "😀")])
def test_encodable_escapes_only_unpaired_surrogates(text: str, expected: str) -> None:
    assert encodable(text) == expected


def test_redaction_replaces_what_it_cannot_read_instead_of_failing() -> None:
    secret = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    redacted, found = redact_json({"deep": [nested(MAX_WALK_DEPTH + 5), secret], "token": secret})
    text = json.dumps(redacted)
    assert secret not in text and TOO_DEEP in text
    assert {d.kind for d in found} >= {"secret_field"}
    far, _ = redact_json({"d": nested(sys.getrecursionlimit() * 5)})
    assert TOO_DEEP in json.dumps(far)
