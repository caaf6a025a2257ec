"""The MCP Inspector's CLI (a TypeScript SDK client) against an in-process gateway: it lists
the proxy tools, finds a tool with ``retrieve_tools`` and calls it through ``call_tool_read``
(the Inspector 0.15 turns ``--tool-arg 'args={...}'`` into an object because the schema of
``args`` says ``object``).

Direct mode (``/mcp/all``) cannot be reached with this CLI: for ``--transport http`` it
replaces any path that does not end in ``/mcp`` by ``/mcp`` (``cli/build/transport.js``),
so it would land on retrieve mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from tests.support import paths
from tests.support.gateway import fixture_entry, running_gateway

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

WAIT = 90.0
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


async def inspector(url: str, method: str, *extra: str) -> Any:
    """Run the Inspector CLI once against ``url`` and return the JSON it prints."""
    argv = [*paths.inspector_cli(), url, "--transport", "http", "--method", method, *extra]
    done = await anyio.run_process(argv, check=False, cwd=paths.npm_prefix())
    assert done.returncode == 0, f"{argv} exited {done.returncode}: {done.stderr.decode(errors='replace')}"
    return json.loads(done.stdout)


def texts(result: dict[str, Any]) -> list[str]:
    return [block["text"] for block in result["content"] if block.get("type") == "text"]


async def test_the_inspector_cli_lists_and_calls_tools_through_the_gateway(tmp_path: Path) -> None:
    with anyio.fail_after(WAIT):
        async with running_gateway(tmp_path, {"notes": fixture_entry("notes_server")}) as gw:
            await gw.wait_ready("notes")
            results: dict[str, Any] = {}

            async def run(key: str, url: str, method: str, *extra: str) -> None:
                results[key] = await inspector(url, method, *extra)

            async with anyio.create_task_group() as tg:
                tg.start_soon(run, "proxy_list", gw.mcp_url, "tools/list")
                tg.start_soon(
                    run,
                    "proxy_call",
                    gw.mcp_url,
                    "tools/call",
                    "--tool-name",
                    "call_tool_read",
                    "--tool-arg",
                    "name=notes:add",
                    "--tool-arg",
                    'args={"a": 1, "b": 2}',
                )
                tg.start_soon(
                    run,
                    "retrieve",
                    gw.mcp_url,
                    "tools/call",
                    "--tool-name",
                    "retrieve_tools",
                    "--tool-arg",
                    "query=add two numbers",
                    "--tool-arg",
                    "limit=3",
                )

    proxy_tools = {tool["name"]: tool for tool in results["proxy_list"]["tools"]}
    assert set(proxy_tools) == PROXY_TOOLS
    assert proxy_tools["call_tool_read"]["inputSchema"]["properties"]["args"]["type"] == "object"

    assert not results["proxy_call"].get("isError"), results["proxy_call"]
    assert texts(results["proxy_call"]) == ["3"]

    (found,) = texts(results["retrieve"])
    assert json.loads(found)["tools"][0]["name"] == "notes:add"
