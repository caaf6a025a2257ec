"""The tools-file loader: every accepted layout, and clear errors with line numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcpproxy.errors import ConfigError
from mcpproxy.policy.scanner import load_tools, load_tools_file

A = {"name": "read_file", "description": "Read a file.", "inputSchema": {"type": "object"}}
B = {"name": "send_message", "description": "Send a message."}


def write(tmp_path: Path, name: str, content: Any) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def pairs(path: Path) -> list[tuple[str | None, str]]:
    return [(server, tool["name"]) for server, tool in load_tools_file(path)]


def test_array_of_tools(tmp_path: Path) -> None:
    assert pairs(write(tmp_path, "t.json", [A, B])) == [(None, "read_file"), (None, "send_message")]


def test_tools_list_result_and_json_rpc_response(tmp_path: Path) -> None:
    assert pairs(write(tmp_path, "a.json", {"tools": [A]})) == [(None, "read_file")]
    response = {"jsonrpc": "2.0", "id": 1, "result": {"tools": [A, B]}}
    assert pairs(write(tmp_path, "b.json", response)) == [(None, "read_file"), (None, "send_message")]


def test_server_wrappers(tmp_path: Path) -> None:
    expected = [("fs", "read_file"), ("chat", "send_message")]
    layouts = [
        {"servers": {"fs": {"tools": [A]}, "chat": [B]}},
        {"servers": [{"name": "fs", "tools": [A]}, {"server": "chat", "tools": [B]}]},
        [{"server": "fs", "tools": [A]}, {"server": "chat", "tools": [B]}],
        {"fs": {"tools": [A]}, "chat": [B]},
        [{"name": "fs", "tools": {"fs-key": {"tools": [A]}}}, {"name": "chat", "tools": {"k": {"tools": [B]}}}],
    ]
    for i, layout in enumerate(layouts):
        assert pairs(write(tmp_path, f"w{i}.json", layout)) == expected, layout
    assert pairs(write(tmp_path, "one.json", {"server": "fs", "tools": [A]})) == [("fs", "read_file")]


def test_jsonl_with_server_fields_and_blank_lines(tmp_path: Path) -> None:
    lines = [json.dumps({"server": "fs", **A}), "", json.dumps(B), json.dumps({"server": "x", "tools": [A]})]
    path = write(tmp_path, "t.jsonl", "\n".join(lines) + "\n")
    assert pairs(path) == [("fs", "read_file"), (None, "send_message"), ("x", "read_file")]
    # Without the .jsonl suffix the layout is recognised too.
    assert pairs(write(tmp_path, "t.txt", "\n".join(lines))) == pairs(path)


def test_malformed_jsonl_lines_are_all_reported_with_numbers(tmp_path: Path) -> None:
    lines = [json.dumps(A), '{"name": "broken", ', json.dumps(B), "[1, 2]", json.dumps(A)]
    path = write(tmp_path, "bad.jsonl", "\n".join(lines))
    with pytest.raises(ConfigError) as info:
        load_tools_file(path)
    message = str(info.value)
    assert "2 malformed line(s)" in message
    assert "line 2:" in message and "line 4: expected a JSON object, got list" in message
    assert info.value.line == 2


def test_invalid_json_reports_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", '[\n  {"name": "a"},\n  {"name": }\n]')
    with pytest.raises(ConfigError, match=r"line 3, column 12"):
        load_tools_file(path)


def test_unreadable_and_unrecognised_inputs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read tools file"):
        load_tools_file(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="no tools found"):
        load_tools_file(write(tmp_path, "x.json", {"hello": "world"}))
    with pytest.raises(ConfigError, match="tool #1 of server 'fs' is not an object"):
        load_tools_file(write(tmp_path, "y.json", {"servers": {"fs": [A, "oops"]}}))
    with pytest.raises(ConfigError, match="server 'fs' has no 'tools'"):
        load_tools_file(write(tmp_path, "config.json", {"servers": {"fs": {"command": "npx", "args": []}}}))
    assert load_tools_file(write(tmp_path, "empty.json", "  \n")) == []


def test_load_tools_accepts_parsed_json() -> None:
    assert [t["name"] for _, t in load_tools({"tools": [A, B]})] == ["read_file", "send_message"]
    with pytest.raises(ValueError, match="expected a JSON array or object"):
        load_tools(42)
