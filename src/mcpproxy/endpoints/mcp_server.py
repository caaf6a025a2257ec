"""MCP servers facing clients: retrieve mode (``/mcp``) and direct mode (``/mcp/all``).

Both are the SDK's low-level ``Server`` with constructor callbacks, so the SDK does the
protocol: it serves the stateless 2026-07-28 era and the handshake eras (2025-11-25,
2025-06-18, 2025-03-26) on the same endpoint, over streamable HTTP or stdio. Handlers only
translate to and from ``Gateway`` calls.

Retrieve mode lists the proxy tools (``proxy_tools``). Direct mode lists every upstream tool
as ``server__tool`` with its own schema, annotations and output schema, and passes results
through unchanged (truncation aside); an upstream's JSON-RPC error is relayed with its code.
"""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from mcpproxy import __version__
from mcpproxy.endpoints.proxy_tools import INSTRUCTIONS, dispatch, proxy_tool_definitions
from mcpproxy.errors import NotFound, ProxyError, UpstreamError
from mcpproxy.gateway import CallContext, Gateway

logger = logging.getLogger(__name__)

DIRECT_INSTRUCTIONS = (
    "mcpproxy direct mode: every tool of every connected MCP server, named server__tool. "
    "Calls are routed to the server that owns the tool."
)


def _client_name(ctx: ServerRequestContext[Any, Any]) -> str | None:
    params = ctx.session.client_params if ctx.session is not None else None
    if params is not None:
        return params.client_info.name
    meta = ctx.meta or {}
    info = meta.get(types.CLIENT_INFO_META_KEY) if isinstance(meta, dict) else None
    if isinstance(info, dict) and isinstance(info.get("name"), str):
        return str(info["name"])
    return None


def _forward_meta(ctx: ServerRequestContext[Any, Any]) -> dict[str, Any] | None:
    """The parts of a request's ``_meta`` that travel upstream (trace context)."""
    meta = ctx.meta
    if not isinstance(meta, dict):
        return None
    keep = {k: v for k, v in meta.items() if k in ("traceparent", "tracestate", "baggage")}
    return keep or None


def build_retrieve_server(gw: Gateway) -> Server[Any]:
    """The ``/mcp`` server: a handful of proxy tools; the model searches, then calls."""
    tools = proxy_tool_definitions(gw.settings.tools_limit)

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        call_ctx = CallContext(via="mcp", client=_client_name(ctx), meta=_forward_meta(ctx))
        return await dispatch(gw, params.name, params.arguments or {}, call_ctx)

    return Server(
        "mcpproxy",
        version=__version__,
        title="mcpproxy",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _to_mcp_error(exc: ProxyError) -> MCPError:
    if isinstance(exc, UpstreamError) and "upstream_code" in exc.data:
        return MCPError(int(exc.data["upstream_code"]), exc.message, exc.data.get("upstream_data"))
    data = exc.to_dict()
    return MCPError(exc.code, str(exc), data)


def build_direct_server(gw: Gateway) -> Server[Any]:
    """The ``/mcp/all`` server: every upstream tool as ``server__tool``."""

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        out = []
        for entry in gw.visible_tools():
            out.append(entry.tool.model_copy(update={"name": entry.direct_name}))
        return types.ListToolsResult(tools=out)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        call_ctx = CallContext(via="mcp-direct", client=_client_name(ctx), meta=_forward_meta(ctx))
        try:
            return await gw.call_tool(params.name, params.arguments or {}, call_ctx)
        except NotFound as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc), exc.to_dict()) from exc
        except UpstreamError as exc:
            if "upstream_code" in exc.data:
                raise _to_mcp_error(exc) from exc
            return _error_content(exc)
        except ProxyError as exc:
            return _error_content(exc)

    return Server(
        "mcpproxy-direct",
        version=__version__,
        title="mcpproxy (direct mode)",
        instructions=DIRECT_INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _error_content(exc: ProxyError) -> types.CallToolResult:
    text = f"Error ({exc.kind}): {exc.message}" + (f"\nHint: {exc.hint}" if exc.hint else "")
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)
