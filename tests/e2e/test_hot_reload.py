"""Hot reload of the config file by a running gateway: edits made the way editors make them
(rename over the file, or rewrite it in place) add and remove servers; a bad edit is refused
with the key and the line, the running servers keep serving, and fixing the file clears it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from tests.support.gateway import GatewayHandle, fixture_entry, running_gateway

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

WAIT = 60.0


def read_config(gw: GatewayHandle) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(gw.config_path.read_text(encoding="utf-8"))
    return data


def save_by_rename(path: Path, text: str) -> None:
    """Write a temporary file next to ``path`` and rename it over ``path``, as editors do."""
    tmp = path.with_name(f".{path.name}.swp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_in_place(path: Path, text: str) -> None:
    """Truncate and rewrite the same file (same inode)."""
    with path.open("r+", encoding="utf-8") as fh:
        fh.truncate(0)
        fh.write(text)


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def line_of(text: str, needle: str) -> int:
    """1-based line of the only line of ``text`` containing ``needle``."""
    (line,) = [i for i, content in enumerate(text.splitlines(), start=1) if needle in content]
    return line


def servers_found(gw: GatewayHandle, query: str) -> set[str]:
    return {result.entry.server for result in gw.gateway.search(query, 50)}


def text_of(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def add_through_proxy(client: Client, server: str, a: int, b: int) -> str:
    result = await client.call_tool("call_tool_read", {"name": f"{server}:add", "args": {"a": a, "b": b}})
    assert not result.is_error, text_of(result)
    return text_of(result)


async def test_servers_added_and_removed_by_editing_the_file_come_and_go(tmp_path: Path) -> None:
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw:
            await gw.wait_ready("notes")
            assert servers_found(gw, "add two integers") == {"notes"}

            # An editor's save: a new file renamed over the old one.
            data = read_config(gw)
            data["mcpServers"]["jotter"] = fixture_entry("notes_server", "--name", "jotter")
            save_by_rename(gw.config_path, render(data))
            await gw.wait_ready("jotter")
            await gw.wait_for(lambda: "jotter" in servers_found(gw, "add two integers"), what="jotter in search")
            async with Client(gw.mcp_url, mode="auto") as client:
                assert await add_through_proxy(client, "jotter", 20, 22) == "42"
                found = await client.call_tool("retrieve_tools", {"query": "add two integers", "limit": 20})
                assert "jotter:add" in {tool["name"] for tool in (found.structured_content or {})["tools"]}

            # A rewrite of the same file in place removes it again.
            del data["mcpServers"]["jotter"]
            save_in_place(gw.config_path, render(data))
            await gw.wait_for(
                lambda: (
                    "jotter" not in servers_found(gw, "add two integers")
                    and "jotter" not in {s.name for s in gw.gateway.statuses()}
                ),
                what="jotter gone",
            )
            assert servers_found(gw, "add two integers") == {"notes"}
            assert set(gw.gateway.state.servers) == {"notes"}
            assert gw.gateway.last_config_error is None


async def test_a_bad_edit_is_refused_with_key_and_line_and_the_running_servers_keep_serving(tmp_path: Path) -> None:
    with anyio.fail_after(WAIT):
        async with (
            running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw,
            httpx2.AsyncClient(base_url=gw.base_url + "/api/v1", headers=gw.api_headers) as rest,
            Client(gw.mcp_url, mode="auto") as client,
        ):
            await gw.wait_ready("notes")
            good = read_config(gw)

            # A wrong type: args must be a list of strings.
            wrong_type = {**good, "mcpServers": {**good["mcpServers"], "x": {"command": "echo", "args": 5}}}
            text = render(wrong_type)
            args_line = line_of(text, '"args": 5')
            save_by_rename(gw.config_path, text)
            await gw.wait_for(lambda: gw.gateway.last_config_error is not None, what="the refused edit")
            error = gw.gateway.last_config_error
            assert error is not None
            assert error.key == "mcpServers.x.args"
            assert error.line == args_line
            assert f"line {args_line}" in error.message
            assert "x" not in gw.gateway.state.servers
            assert await add_through_proxy(client, "notes", 1, 2) == "3"
            status = (await rest.get("/status")).json()
            assert status["config_error"]["error"] == "config_error"
            assert status["config_error"]["data"]["key"] == "mcpServers.x.args"
            assert status["config_error"]["data"]["line"] == args_line
            assert status["states"] == {"ready": 1}

            # A JSON syntax error: a trailing comma.
            broken = text.replace('"args": 5', '"args": ["ok"],')
            comma_line = line_of(broken, '"args": ["ok"],')
            save_in_place(gw.config_path, broken)
            await gw.wait_for(
                lambda: gw.gateway.last_config_error is not None and gw.gateway.last_config_error.key is None,
                what="the syntax error",
            )
            error = gw.gateway.last_config_error
            assert error is not None
            # The parser notices the stray comma at the closing brace on the next line.
            assert error.line == comma_line + 1
            assert "invalid JSON" in error.message
            assert await add_through_proxy(client, "notes", 2, 2) == "4"
            assert (await rest.get("/status")).json()["config_error"]["data"]["line"] == comma_line + 1

            # Fixing the file applies it and clears the error.
            fixed = {
                **good,
                "mcpServers": {**good["mcpServers"], "x": {"command": "echo", "args": ["ok"], "enabled": False}},
            }
            save_by_rename(gw.config_path, render(fixed))
            await gw.wait_for(lambda: "x" in gw.gateway.state.servers, what="the fixed file applied")
            assert gw.gateway.last_config_error is None
            assert (await rest.get("/status")).json()["config_error"] is None
            assert await add_through_proxy(client, "notes", 3, 4) == "7"


async def test_restoring_the_running_content_after_a_bad_edit_clears_the_error(tmp_path: Path) -> None:
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {}) as gw:
            original = gw.config_path.read_text(encoding="utf-8")
            save_in_place(gw.config_path, original.replace('"mcpServers"', '"mcpServers" oops', 1))
            await gw.wait_for(lambda: gw.gateway.last_config_error is not None, what="the refused edit")
            # Undo in the editor: the file is byte for byte what the gateway runs.
            save_in_place(gw.config_path, original)
            try:
                await gw.wait_for(lambda: gw.gateway.last_config_error is None, within=4, what="the error cleared")
            except AssertionError as exc:
                still_refused: AssertionError | None = exc
            else:
                still_refused = None
        assert still_refused is None, f"{still_refused}; the status still reports a fixed file as refused"
