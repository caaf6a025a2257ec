"""The gateway's exception tree: stable, distinct codes and the shape the docs promise."""

from __future__ import annotations

import re

import mcp_types as types
import pytest

from mcpproxy import errors
from mcpproxy.errors import ConfigError, ProxyError, TierMismatch, UnknownServer

ALL_ERRORS: list[type[ProxyError]] = [
    obj for obj in vars(errors).values() if isinstance(obj, type) and issubclass(obj, ProxyError)
]

SDK_RESERVED = {
    -32000,  # connection closed
    -32001,  # request timeout
    -32020,  # header mismatch
    -32042,  # URL elicitation required
    types.CONNECTION_CLOSED,
    types.REQUEST_TIMEOUT,
    types.HEADER_MISMATCH,
    types.URL_ELICITATION_REQUIRED,
    types.MISSING_REQUIRED_CLIENT_CAPABILITY,
    types.UNSUPPORTED_PROTOCOL_VERSION,
}

_TREE_LINE = re.compile(r"^(?P<prefix>[ │├└─]*)(?P<name>[A-Z]\w+)\s+(?P<code>-\d+)\s+(?P<status>\d{3})\b")


def documented_tree() -> list[tuple[str, str | None, int, int]]:
    """``(class, parent, code, status)`` for each line of the tree in the module docstring."""
    assert errors.__doc__ is not None
    rows: list[tuple[str, str | None, int, int]] = []
    stack: list[str] = []
    for line in errors.__doc__.splitlines():
        match = _TREE_LINE.match(line)
        if match is None:
            continue
        depth = len(match.group("prefix")) // 4 - 1
        del stack[depth:]
        name, code, status = match.group("name"), int(match.group("code")), int(match.group("status"))
        rows.append((name, stack[-1] if stack else None, code, status))
        stack.append(name)
    return rows


def test_the_documented_tree_is_found_and_lists_every_error_class() -> None:
    rows = documented_tree()
    assert rows[0][:2] == ("ProxyError", None)
    assert {name for name, *_ in rows} == {cls.__name__ for cls in ALL_ERRORS}
    assert len(rows) == len(ALL_ERRORS)


@pytest.mark.parametrize(("name", "parent", "code", "status"), documented_tree(), ids=lambda v: str(v))
def test_each_class_sits_where_the_docstring_says_with_its_code_and_status(
    name: str, parent: str | None, code: int, status: int
) -> None:
    cls = getattr(errors, name)
    if parent is not None:
        assert cls.__bases__ == (getattr(errors, parent),)
        assert issubclass(cls, ProxyError)
    assert cls.code == code
    assert cls.http_status == status


def test_every_error_class_has_its_own_json_rpc_code() -> None:
    by_code: dict[int, list[str]] = {}
    for cls in ALL_ERRORS:
        by_code.setdefault(cls.code, []).append(cls.__name__)
    assert {code: names for code, names in by_code.items() if len(names) > 1} == {}


def test_every_error_class_has_its_own_kind() -> None:
    kinds = [cls.kind for cls in ALL_ERRORS]
    assert len(set(kinds)) == len(kinds)
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", kind) for kind in kinds)


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_no_code_collides_with_one_the_sdk_uses(cls: type[ProxyError]) -> None:
    assert cls.code not in SDK_RESERVED
    if cls is errors.InvalidArguments:
        assert cls.code == types.INVALID_PARAMS
    else:
        assert -32095 <= cls.code <= -32070


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_http_status_is_an_error_status(cls: type[ProxyError]) -> None:
    assert 400 <= cls.http_status <= 599


def test_the_families_a_caller_catches_hold_together() -> None:
    assert issubclass(errors.UnknownServer, errors.NotFound)
    assert issubclass(errors.UnknownTool, errors.NotFound)
    assert issubclass(errors.CacheMiss, errors.NotFound)
    assert issubclass(errors.TierMismatch, errors.PolicyDenied)
    assert issubclass(errors.Quarantined, errors.PolicyDenied)
    for cls in (errors.UpstreamUnavailable, errors.UpstreamTimeout, errors.UpstreamProtocolError):
        assert issubclass(cls, errors.UpstreamError)
    assert not issubclass(errors.InvalidArguments, errors.NotFound)
    assert not issubclass(errors.Conflict, errors.PolicyDenied)


def test_to_dict_carries_kind_code_message_hint_and_data() -> None:
    err = TierMismatch("no", hint="use call_tool_destructive", data={"tool": "s:t"})
    assert err.to_dict() == {
        "error": "tier_mismatch",
        "code": -32074,
        "message": "no",
        "hint": "use call_tool_destructive",
        "data": {"tool": "s:t"},
    }


def test_to_dict_leaves_out_an_empty_hint_and_data() -> None:
    assert UnknownServer("gone").to_dict() == {"error": "unknown_server", "code": UnknownServer.code, "message": "gone"}


def test_the_error_keeps_its_own_copy_of_data() -> None:
    data = {"k": 1}
    err = ProxyError("m", data=data)
    data["k"] = 2
    assert err.to_dict()["data"] == {"k": 1}


def test_the_text_of_an_error_includes_the_hint() -> None:
    assert str(ProxyError("it broke", hint="try again")) == "it broke (try again)"
    assert str(ProxyError("it broke")) == "it broke"


def test_a_config_error_says_where() -> None:
    err = ConfigError("bad value", key="mcpServers.time.args", line=4, hint="fix it")
    assert (err.key, err.line) == ("mcpServers.time.args", 4)
    assert err.to_dict() == {
        "error": "config_error",
        "code": -32080,
        "message": "bad value",
        "hint": "fix it",
        "data": {"key": "mcpServers.time.args", "line": 4},
    }


def test_a_config_error_without_a_location_has_no_data() -> None:
    err = ConfigError("bad")
    assert (err.key, err.line) == (None, None)
    assert "data" not in err.to_dict()


def test_unknown_keys_names_the_key_each_may_mean_and_lists_the_known_ones() -> None:
    known = {"timeout_ms", "code", "language"}
    assert errors.unknown_keys({"code": "1", "language": "python"}, known) is None
    assert errors.unknown_keys({"timeout": 1}, known) == (
        ["timeout"], "did you mean 'timeout_ms'? known keys: code, language, timeout_ms"
    )
    # Several: each that resembles a known key gets its guess; one that resembles none gets the list only.
    assert errors.unknown_keys(["langauge", "zzz", "cod"], known, listing="it takes") == (
        ["cod", "langauge", "zzz"],
        "did you mean 'code' for 'cod', 'language' for 'langauge'? it takes: code, language, timeout_ms",
    )
    assert errors.unknown_keys(["zzz"], known) == (["zzz"], "known keys: code, language, timeout_ms")
    assert errors.quoted(["a", "b"]) == "'a', 'b'"
