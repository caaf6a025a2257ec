"""``mcpproxy serve --stdio``: the gateway started by an MCP client as its stdio server.

Standard output carries the protocol and nothing else: logs go to standard error, and the
upstream servers' own stderr goes to their log files.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.session import IncomingMessage
from tests.support.gateway import fixture_entry, write_config
from tests.support.net import port_is_open
from tests.support.procs import QUIET_CHILD_ENV

from mcpproxy.settings import parse_listen

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

WAIT = 60.0
PROXY_TOOLS = {
    "retrieve_tools",
    "describe_tool",
    "call_tool_read",
    "call_tool_write",
    "call_tool_destructive",
    "read_cache",
    "quarantine_security",
    "upstream_servers",
    "code_execution",
}


def stdio_gateway(config: Path, home: Path) -> StdioServerParameters:
    home.mkdir(exist_ok=True)
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcpproxy", "--config", str(config), "serve", "--stdio"],
        env={**QUIET_CHILD_ENV, "HOME": str(home), "PATH": os.environ.get("PATH", ""), "MCPPROXY_LOG_FORMAT": "json"},
        cwd=config.parent,
    )


def text_of(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


class Received:
    """A ``message_handler`` that keeps every message; a line of stdout that is not protocol
    arrives here as an exception."""

    def __init__(self) -> None:
        self.messages: list[IncomingMessage] = []

    async def __call__(self, message: IncomingMessage) -> None:
        self.messages.append(message)

    @property
    def errors(self) -> list[Exception]:
        return [m for m in self.messages if isinstance(m, Exception)]


async def retrieve(client: Client, query: str) -> list[dict[str, Any]]:
    result = await client.call_tool("retrieve_tools", {"query": query, "limit": 5})
    assert not result.is_error, text_of(result)
    tools: list[dict[str, Any]] = (result.structured_content or {})["tools"]
    return tools


async def test_an_mcp_client_runs_the_gateway_over_stdio_and_calls_an_upstream_tool(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"notes": fixture_entry("notes_server")})
    received = Received()
    with anyio.fail_after(WAIT):
        async with Client(stdio_gateway(config, tmp_path / "home"), message_handler=received) as client:
            listed = await client.list_tools()
            assert {tool.name for tool in listed.tools} == PROXY_TOOLS
            assert client.instructions is not None and "retrieve_tools" in client.instructions

            # The endpoint answers at once; the upstream connects in the background.
            hits = await retrieve(client, "add two numbers")
            while not hits or hits[0]["name"] != "notes:add":
                await anyio.sleep(0.2)  # polling a real condition: the server's tools arrive when it is ready
                hits = await retrieve(client, "add two numbers")
            assert hits[0]["call_with"] == "call_tool_read"

            result = await client.call_tool("call_tool_read", {"name": "notes:add", "args": {"a": 2, "b": 3}})
            assert not result.is_error, text_of(result)
            assert text_of(result) == "5"
            refused = await client.call_tool(
                "call_tool_read", {"name": "notes:delete_all_notes", "args": {"confirm": True}}
            )
            assert refused.is_error
            assert (refused.structured_content or {})["error"] == "tier_mismatch"

            listing = await client.call_tool("upstream_servers", {"op": "list"})
            (notes,) = (listing.structured_content or {})["servers"]
            assert notes["name"] == "notes" and notes["state"] == "ready"

            # No HTTP endpoint unless --listen is given.
            host, port = parse_listen(json.loads(config.read_text())["listen"])
            assert not await port_is_open(host, port)

    assert received.errors == [], "something other than the protocol was written to stdout"
    # The upstream's stderr went to its log file, not to our stdout.
    data_dir = Path(json.loads(config.read_text())["data_dir"])
    assert "Starting MCP server" in (data_dir / "logs" / "upstream-notes.log").read_text(encoding="utf-8")
