"""Settings and server entries: paste-compatible input, strict names, lossless write-back."""

from __future__ import annotations

import json
import math
import typing
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from mcpproxy.settings import Isolation, ServerSpec, Settings, is_loopback_host, parse_listen


def spec(**entry: Any) -> ServerSpec:
    return ServerSpec.model_validate({"name": "srv", **entry})


def refused(**entry: Any) -> str:
    with pytest.raises(ValidationError) as info:
        spec(**entry)
    return str(info.value)


# --- transport detection ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "transport"),
    [
        ({"command": "uvx", "args": ["mcp-server-time"]}, "stdio"),
        ({"url": "https://example.com/mcp"}, "http"),
        ({"url": "http://127.0.0.1:3000/mcp/"}, "http"),
        ({"url": "https://example.com/sse"}, "sse"),
        ({"url": "https://example.com/sse/"}, "sse"),
        ({"url": "https://example.com/v1/sse?apiKey=abc"}, "sse"),
        ({"url": "https://example.com/sseverything"}, "http"),
        ({"url": "https://example.com/events", "type": "sse"}, "sse"),
        ({"url": "https://example.com/events", "transport": "sse"}, "sse"),
        ({"url": "https://example.com/mcp", "type": "streamable-http"}, "http"),
        ({"url": "https://example.com/mcp", "type": "streamableHttp"}, "http"),
        ({"url": "https://example.com/mcp", "type": "streamable_http"}, "http"),
        ({"url": "https://example.com/mcp", "type": "http"}, "http"),
        ({"url": "https://example.com/sse", "type": "streamable-http"}, "http"),
        ({"command": "node", "type": "stdio"}, "stdio"),
    ],
)
def test_the_transport_is_detected_from_the_entry(entry: dict[str, Any], transport: str) -> None:
    assert spec(**entry).transport == transport


def test_an_explicit_transport_wins_over_type() -> None:
    assert spec(url="https://example.com/mcp", type="sse", transport="http").transport == "http"


def test_an_entry_with_neither_command_nor_url_is_refused() -> None:
    assert "a server needs either 'command' (stdio) or 'url' (HTTP or SSE)" in refused(args=["x"])


def test_a_stdio_entry_with_a_url_is_refused() -> None:
    assert "a stdio server takes 'command', not 'url'" in refused(command="uvx", url="https://example.com/mcp")


def test_an_http_entry_with_a_command_is_refused() -> None:
    assert "a http server takes 'url', not 'command'" in refused(type="http", url="https://e.com/mcp", command="x")


def test_an_http_entry_without_a_url_is_refused() -> None:
    assert "a sse server needs 'url'" in refused(type="sse")


@pytest.mark.parametrize("url", ["ftp://example.com/mcp", "example.com/mcp", "file:///tmp/sock", "ws://e.com/mcp"])
def test_a_url_must_be_http_or_https(url: str) -> None:
    assert "'url' must start with http:// or https://" in refused(url=url)


def test_an_unknown_transport_type_is_refused() -> None:
    refused(url="https://example.com/mcp", type="websocket")


def test_args_are_kept_in_order_as_a_tuple() -> None:
    assert spec(command="npx", args=["-y", "pkg", "/a"]).args == ("-y", "pkg", "/a")


# --- paste-compatibility ----------------------------------------------------------------


def test_cwd_is_the_working_directory() -> None:
    assert spec(command="npx", cwd="/srv").working_dir == "/srv"
    assert spec(command="npx", working_dir="/srv").working_dir == "/srv"


def test_cwd_and_working_dir_may_both_be_given_when_equal() -> None:
    assert spec(command="npx", cwd="/srv", working_dir="/srv").working_dir == "/srv"


def test_cwd_and_working_dir_with_different_values_are_refused() -> None:
    assert "give either 'cwd' or 'working_dir'" in refused(command="npx", cwd="/a", working_dir="/b")


@pytest.mark.parametrize(("disabled", "enabled"), [(True, False), (False, True)])
def test_disabled_is_the_opposite_of_enabled(disabled: bool, enabled: bool) -> None:
    assert spec(command="uvx", disabled=disabled).enabled is enabled


def test_a_server_is_enabled_by_default() -> None:
    assert spec(command="uvx").enabled is True


def test_disabled_must_be_a_boolean() -> None:
    assert "'disabled' must be true or false" in refused(command="uvx", disabled="yes")


def test_keys_of_other_clients_are_recorded_not_rejected() -> None:
    s = spec(command="uvx", autoApprove=["get_time"], alwaysAllow=[], timeout=60)
    assert s.extra_keys == ("alwaysAllow", "autoApprove", "timeout")
    assert s.command == "uvx"


def test_an_entry_without_unknown_keys_has_no_extra_keys() -> None:
    assert spec(command="uvx").extra_keys == ()


@pytest.mark.parametrize("value", [0, -1, -0.5])
def test_timeouts_must_be_positive(value: float) -> None:
    refused(command="uvx", call_timeout=value)
    refused(command="uvx", connect_timeout=value)


def _float_fields(model: type[BaseModel]) -> list[str]:
    """The fields of ``model`` that hold a float (``float``, ``float | None``, annotated or not)."""

    def holds_float(annotation: Any) -> bool:
        if annotation is float:
            return True
        return any(holds_float(arg) for arg in typing.get_args(annotation) if arg is not None)

    return [name for name, info in model.model_fields.items() if holds_float(info.annotation)]


def test_the_float_fields_are_found() -> None:
    assert {"call_timeout", "connect_timeout", "backoff_max", "rate_limit", "shutdown_grace"} <= set(
        _float_fields(Settings)
    )
    assert _float_fields(ServerSpec) == ["call_timeout", "connect_timeout"]
    assert _float_fields(Isolation) == []


# 1e999 is how JSON text spells infinity without the non-standard Infinity literal.
@pytest.mark.parametrize(
    "value",
    [math.inf, -math.inf, math.nan, "Infinity", "-inf", "NaN", "1e999"],
    ids=["inf", "minus-inf", "nan", "text-Infinity", "text-minus-inf", "text-NaN", "text-1e999"],
)
def test_every_float_setting_refuses_infinity_and_nan(value: float | str) -> None:
    # A non-finite number cannot be written back as JSON, so the config file would hold a bare Infinity.
    for name in _float_fields(Settings):
        with pytest.raises(ValidationError) as info:
            Settings.model_validate({name: value})
        assert [(e["loc"], e["type"]) for e in info.value.errors()] == [((name,), "finite_number")], name
        assert "finite number" in str(info.value)
    for name in _float_fields(ServerSpec):
        with pytest.raises(ValidationError) as info:
            spec(command="uvx", **{name: value})
        assert [(e["loc"], e["type"]) for e in info.value.errors()] == [((name,), "finite_number")], name


def test_large_finite_float_settings_are_still_accepted() -> None:
    for name in _float_fields(Settings):
        assert getattr(Settings.model_validate({name: 1e300}), name) == 1e300
    assert spec(command="uvx", call_timeout=1e300, connect_timeout="1e300").connect_timeout == 1e300


def test_a_spec_is_immutable() -> None:
    s = spec(command="uvx")
    with pytest.raises(ValidationError):
        s.command = "other"  # type: ignore[misc]


# --- names -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "Z", "7", "time", "my-server.v2", "x_y", "a_", "a-_-b", "a" * 64, "1abc"])
def test_simple_names_are_accepted(name: str) -> None:
    assert ServerSpec.model_validate({"name": name, "command": "uvx"}).name == name


@pytest.mark.parametrize(
    "name",
    ["", "-a", "_a", ".a", "a b", "a:b", "a/b", "é", "a" * 65, "abc\n", "\nabc", "a\tb"],
)
def test_names_that_would_break_tool_prefixes_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="server names use letters"):
        ServerSpec.model_validate({"name": name, "command": "uvx"})


@pytest.mark.parametrize("name", ["a__b", "a___b", "x__"])
def test_a_double_underscore_in_a_name_is_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="may not contain '__'"):
        ServerSpec.model_validate({"name": name, "command": "uvx"})


# --- listen ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("localhost:0", ("localhost", 0)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
        ("[::1]:8080", ("::1", 8080)),
        ("[fe80::1:2]:443", ("fe80::1:2", 443)),
        (":9000", ("127.0.0.1", 9000)),
        ("  example.com:80  ", ("example.com", 80)),
    ],
)
def test_listen_addresses_are_parsed(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["8080", "host", "host:", "host:http", "::1:8080", "[::1]", "[::1]8080", "a:b:1", ""])
def test_malformed_listen_addresses_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="listen must be HOST:PORT"):
        parse_listen(value)


def test_a_port_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="port 65536 is out of range"):
        parse_listen("127.0.0.1:65536")


def test_settings_refuse_a_bad_listen_address() -> None:
    with pytest.raises(ValidationError, match="listen must be HOST:PORT"):
        Settings(listen="8080")


def test_settings_expose_host_and_port_including_ipv6() -> None:
    s = Settings(listen="[::1]:9999")
    assert (s.host, s.port) == ("::1", 9999)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True), ("::1", True), ("0.0.0.0", False), ("::", False)],
)
def test_loopback_hosts_are_recognised(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


# --- Settings --------------------------------------------------------------------------


def test_servers_are_named_after_their_key_in_either_spelling() -> None:
    for key in ("mcpServers", "servers"):
        s = Settings.model_validate({key: {"time": {"command": "uvx"}, "docs": {"url": "https://e.com/mcp"}}})
        assert {n: v.name for n, v in s.servers.items()} == {"time": "time", "docs": "docs"}


def test_an_unknown_top_level_setting_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"lisen": "127.0.0.1:1"})


def test_per_server_timeouts_override_the_global_ones() -> None:
    s = Settings(call_timeout=10, connect_timeout=3)
    fast = ServerSpec.model_validate({"name": "f", "command": "x", "call_timeout": 1, "connect_timeout": 0.5})
    default = ServerSpec.model_validate({"name": "d", "command": "x"})
    assert (s.call_timeout_for(fast), s.connect_timeout_for(fast)) == (1, 0.5)
    assert (s.call_timeout_for(default), s.connect_timeout_for(default)) == (10, 3)


def test_settings_to_config_writes_only_non_defaults_then_servers() -> None:
    s = Settings.model_validate({"tools_limit": 5, "log_format": "json", "mcpServers": {"t": {"command": "uvx"}}})
    assert s.to_config() == {"tools_limit": 5, "log_format": "json", "mcpServers": {"t": {"command": "uvx"}}}
    assert Settings.model_validate(s.to_config()) == s


def test_default_settings_write_only_an_empty_server_map() -> None:
    assert Settings().to_config() == {"mcpServers": {}}


# --- to_config round trip ----------------------------------------------------------------


def test_to_config_leaves_defaults_out() -> None:
    assert spec(command="uvx").to_config() == {"command": "uvx"}
    assert spec(url="https://e.com/mcp").to_config() == {"url": "https://e.com/mcp"}


def test_to_config_writes_the_canonical_spellings() -> None:
    s = spec(command="npx", cwd="/srv", disabled=True)
    assert s.to_config() == {"command": "npx", "working_dir": "/srv", "enabled": False}


def test_an_sse_server_whose_url_says_so_needs_no_type() -> None:
    assert spec(url="https://e.com/sse").to_config() == {"url": "https://e.com/sse"}
    assert spec(url="https://e.com/events", type="sse").to_config() == {"url": "https://e.com/events", "type": "sse"}


def test_an_http_server_whose_url_ends_in_sse_keeps_its_type() -> None:
    s = spec(url="https://e.com/sse", type="http")
    assert s.to_config()["type"] == "http"
    assert spec(**s.to_config()) == s


_NAME_FIRST = st.sampled_from("abcxyzABCXYZ0189")
_NAME_REST = st.text(alphabet="abcxyzABC019_.-", max_size=63)
names = st.builds(lambda first, rest: first + rest, _NAME_FIRST, _NAME_REST).filter(lambda n: "__" not in n)
timeouts = st.none() | st.floats(min_value=0, exclude_min=True, allow_nan=False, allow_infinity=False)
words = st.text(min_size=1, max_size=20)
mappings = st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=3)
urls = st.builds(
    lambda scheme, host, path, tail: f"{scheme}://{host}/{path}{tail}",
    st.sampled_from(["http", "https"]),
    st.sampled_from(["example.com", "127.0.0.1:3000", "[::1]:8080"]),
    st.text(alphabet="abc/-_", max_size=12),
    st.sampled_from(["", "/", "sse", "/sse", "/sse/", "/sse?key=1", "?transport=sse", "mcp"]),
)


@st.composite
def server_entries(draw: st.DrawFn) -> dict[str, Any]:
    common: dict[str, Any] = {
        "name": draw(names),
        "enabled": draw(st.booleans()),
        "trust": draw(st.sampled_from(["manual", "scan", "auto"])),
        "call_timeout": draw(timeouts),
        "connect_timeout": draw(timeouts),
        "protocol": draw(st.sampled_from(["auto", "legacy", "modern"])),
        "description": draw(st.none() | words),
    }
    transport = draw(st.sampled_from(["stdio", "http", "sse"]))
    if transport == "stdio":
        return {
            **common,
            "transport": "stdio",
            "command": draw(words),
            "args": draw(st.lists(st.text(max_size=10), max_size=4)),
            "env": draw(mappings),
            "working_dir": draw(st.none() | words),
        }
    return {**common, "transport": transport, "url": draw(urls), "headers": draw(mappings)}


@hypothesis_settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(server_entries())
def test_to_config_round_trips_every_valid_spec(entry: dict[str, Any]) -> None:
    original = ServerSpec.model_validate(entry)
    again = ServerSpec.model_validate({**original.to_config(), "name": original.name})
    assert again == original


@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(server_entries())
def test_to_config_round_trips_through_json_text(entry: dict[str, Any]) -> None:
    original = ServerSpec.model_validate(entry)
    text = json.dumps(original.to_config(), ensure_ascii=False)
    assert ServerSpec.model_validate({**json.loads(text), "name": original.name}) == original
