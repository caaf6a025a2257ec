"""``/mcp/code``: an MCP endpoint for code mode, with exactly three tools.

``code_execution`` runs programs; ``retrieve_tools`` and ``describe_tool`` (the same handlers
as on ``/mcp``) let the model look tools up before it writes one. Nothing else is listed or
callable here: the model reaches every other tool only from inside a program, where each
call goes through the gateway's pipeline. The endpoint is the SDK's low-level server like
the others (both protocol eras, streamable HTTP), behind the same authentication, Host and
Origin checks (``app.py`` wraps it), with the relay middleware so that progress
notifications reach the client that asked.

``CodeEndpoint.running()`` is entered by the app's lifespan: it starts the code service
(warm workers) and the endpoint's session manager, and stops both on the way out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager

from mcpproxy import __version__
from mcpproxy.codemode.service import attach
from mcpproxy.codemode.tool import code_execution_tool
from mcpproxy.endpoints.auth import token_of
from mcpproxy.endpoints.features import RelayMiddleware, client_name, forward_meta
from mcpproxy.endpoints.mcp_server import ProxyServer
from mcpproxy.endpoints.notify import Endpoint, Hub
from mcpproxy.endpoints.proxy_tools import dispatch, error_result, proxy_tool_definitions
from mcpproxy.endpoints.views import View
from mcpproxy.errors import InvalidArguments
from mcpproxy.gateway import CallContext, Gateway

CODE_TOOLS = ("code_execution", "retrieve_tools", "describe_tool")

CODE_INSTRUCTIONS = """\
mcpproxy code mode: write a short program that calls tools, and get back only its result.
1. retrieve_tools(query="what you want to do") finds tools ("server:tool") with their input schemas;
   describe_tool(names=[...]) shows full schemas.
2. code_execution(code=..., language="python" | "python-full" | "typescript") runs a program that calls them:
   call_tool("server:tool", {...}), call_tools([...]) in parallel, search_tools(query), describe_tool(name),
   or the typed functions tools.<server>.<tool>(...). Filter and join inside the program; return a small value.
"""


def code_tools(gw: Gateway) -> list[types.Tool]:
    """The three tools of ``/mcp/code``."""
    lookup = {tool.name: tool for tool in proxy_tool_definitions(gw.settings.tools_limit)}
    return [code_execution_tool(gw.settings), lookup["retrieve_tools"], lookup["describe_tool"]]


def build_code_server(gw: Gateway, hub: Hub) -> ProxyServer:
    """The low-level MCP server behind ``/mcp/code``."""
    endpoint = hub.endpoint("code", View(), dynamic_tools=False)

    def endpoint_of(ctx: ServerRequestContext[Any, Any]) -> Endpoint:
        return endpoint

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=code_tools(gw))

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        call_ctx = CallContext(via="mcp-code", client=client_name(ctx), meta=forward_meta(ctx), token=token_of(ctx))
        arguments = params.arguments or {}
        if params.name not in CODE_TOOLS:
            return error_result(
                InvalidArguments(
                    f"unknown tool '{params.name}'",
                    hint="this endpoint has code_execution, retrieve_tools and describe_tool; call other tools "
                    "from a program",
                )
            )
        return await dispatch(gw, params.name, arguments, call_ctx)

    server = ProxyServer(
        "mcpproxy-code",
        version=__version__,
        title="mcpproxy (code mode)",
        instructions=CODE_INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    server.middleware.append(RelayMiddleware(hub, endpoint_of))
    return server


class CodeEndpoint:
    """``/mcp/code``: the server, its session manager and the code service's lifetime.

    Args:
        gw: The gateway.
        hub: The app's notification hub.
    """

    def __init__(self, gw: Gateway, hub: Hub) -> None:
        from mcpproxy.app import transport_security

        self.gw = gw
        self.manager = StreamableHTTPSessionManager(
            app=build_code_server(gw, hub),
            security_settings=transport_security(gw.settings),
            max_request_body_size=gw.settings.max_body_size,
        )
        self.app = StreamableHTTPASGIApp(self.manager)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the code service and the session manager for the block (inside the gateway's)."""
        async with attach(self.gw), self.manager.run():
            yield
