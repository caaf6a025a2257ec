"""Raw MCP requests of the stateless era, for what an SDK client cannot send (NaN, an unpaired
surrogate, a trace context of the test's choosing): the request's ``_meta`` and headers, and one
``tools/call`` whose arguments are JSON text as given."""

from __future__ import annotations

import json
from typing import Any

import httpx2

ERA = "2026-07-28"


def stateless_meta(client: str = "raw-test", **extra: Any) -> dict[str, Any]:
    """The ``_meta`` a stateless-era request carries, plus ``extra`` entries."""
    return {
        "io.modelcontextprotocol/protocolVersion": ERA,
        "io.modelcontextprotocol/clientInfo": {"name": client, "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
        **extra,
    }


def stateless_headers(tool: str) -> dict[str, str]:
    """The HTTP headers of a stateless-era ``tools/call`` of ``tool``."""
    return {
        "mcp-protocol-version": ERA,
        "mcp-method": "tools/call",
        "mcp-name": tool,
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
    }


async def raw_tools_call(url: str, tool: str, arguments_json: str) -> dict[str, Any]:
    """``tools/call`` of ``tool`` at ``url`` with ``arguments_json`` sent as written; the result."""
    params = json.dumps({"name": tool, "_meta": stateless_meta()})[:-1] + f', "arguments": {arguments_json}}}'
    body = '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ' + params + "}"
    async with httpx2.AsyncClient(timeout=30.0) as http:
        response = await http.post(url, content=body.encode("ascii"), headers=stateless_headers(tool))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result
