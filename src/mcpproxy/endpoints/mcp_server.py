"""MCP servers facing clients: retrieve mode (``/mcp``), direct mode (``/mcp/all``) and one
server under its own names (``/mcp/s/<server>``).

All are the SDK's low-level ``Server`` with handlers, so the SDK does the protocol: it serves
the stateless 2026-07-28 era and the handshake eras (2025-11-25, 2025-06-18, 2025-03-26) on the
same endpoint, over streamable HTTP or stdio. Handlers only translate to and from ``Gateway``
calls.

- Retrieve mode lists the proxy tools (``proxy_tools``).
- Direct mode lists every upstream tool as ``server__tool`` with its own schema, title, icons,
  annotations, output schema and ``_meta``, and passes results through unchanged (truncation
  aside; resource links namespaced); an upstream's JSON-RPC error is relayed with its code.
- ``/mcp/s/<server>`` shows one upstream as if the client talked to it: its tools, resources,
  prompts and completions under their original names, its instructions, and the capabilities
  both it and mcpproxy support (``initialize`` and ``server/discover``), with every check,
  filter and observer of the gateway still on the way.

Both aggregated endpoints serve every ready server's resources, templates and prompts
(``endpoints.features``) and tell clients about changes (``endpoints.notify``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import mcp_types as types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcpproxy import __version__
from mcpproxy.endpoints.auth import token_of
from mcpproxy.endpoints.features import FeatureHandlers, RelayMiddleware, client_name, forward_meta, to_mcp_error
from mcpproxy.endpoints.notify import Endpoint, Hub
from mcpproxy.endpoints.proxy_tools import INSTRUCTIONS, dispatch, proxy_tool_definitions
from mcpproxy.endpoints.tasks import TaskHandlers
from mcpproxy.endpoints.views import View, item_key, page
from mcpproxy.errors import NotFound, ProxyError, UpstreamError
from mcpproxy.gateway import CallContext, Gateway
from mcpproxy.routing import uris
from mcpproxy.routing.catalog import split_name
from mcpproxy.upstream import features, relay

logger = logging.getLogger(__name__)

DIRECT_INSTRUCTIONS = (
    "mcpproxy direct mode: every tool of every connected MCP server, named server__tool. "
    "Calls are routed to the server that owns the tool. Resources are named "
    "mcpproxy://server/<uri> and prompts server__prompt."
)

RETRIEVE = "retrieve"
DIRECT = "direct"
CALL_TOOLS = ("call_tool_read", "call_tool_write", "call_tool_destructive")


class ProxyServer(Server[Any]):
    """A low-level ``Server`` that announces list changes in the handshake era too."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        options = notification_options or NotificationOptions(
            prompts_changed=True, resources_changed=True, tools_changed=True
        )
        return super().create_initialization_options(options, experimental_capabilities, extensions)


def _attach_features(server: Server[Any], handlers: FeatureHandlers) -> None:
    """Resources, templates, subscriptions, prompts, completion and logging on ``server``."""
    server.add_request_handler("resources/list", types.PaginatedRequestParams, handlers.list_resources)
    server.add_request_handler(
        "resources/templates/list", types.PaginatedRequestParams, handlers.list_resource_templates
    )
    server.add_request_handler("resources/read", types.ReadResourceRequestParams, handlers.read_resource)
    server.add_request_handler("resources/subscribe", types.SubscribeRequestParams, handlers.subscribe)
    server.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, handlers.unsubscribe)
    server.add_request_handler("subscriptions/listen", types.SubscriptionsListenRequestParams, handlers.listen)
    server.add_request_handler("prompts/list", types.PaginatedRequestParams, handlers.list_prompts)
    server.add_request_handler("prompts/get", types.GetPromptRequestParams, handlers.get_prompt)
    server.add_request_handler("completion/complete", types.CompleteRequestParams, handlers.complete)
    server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, handlers.set_level)


def _error_content(exc: ProxyError) -> types.CallToolResult:
    text = f"Error ({exc.kind}): {exc.message}" + (f"\nHint: {exc.hint}" if exc.hint else "")
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


async def _call(gw: Gateway, name: str, args: dict[str, Any], call_ctx: CallContext) -> types.CallToolResult:
    """One tool call through the gateway's pipeline, errors as a client should see them."""
    try:
        return await gw.call_tool(name, args, call_ctx)
    except NotFound as exc:
        raise MCPError(types.INVALID_PARAMS, str(exc), exc.to_dict()) from exc
    except UpstreamError as exc:
        if "upstream_code" in exc.data:
            raise to_mcp_error(exc) from exc
        return _error_content(exc)
    except ProxyError as exc:
        return _error_content(exc)


def _schema_lookup(gw: Gateway) -> Callable[[str], Mapping[str, Any] | None]:
    """``name -> input schema`` of a direct-mode tool (``None``: unknown; the call itself says so)."""

    def lookup(name: str) -> Mapping[str, Any] | None:
        try:
            return gw.resolve(name).input_schema
        except ProxyError:
            return None

    return lookup


def build_retrieve_server(gw: Gateway, hub: Hub) -> Server[Any]:
    """The ``/mcp`` server: a handful of proxy tools; the model searches, then calls."""
    endpoint = hub.endpoint(RETRIEVE, View(), dynamic_tools=False)

    built: list[tuple[Any, list[types.Tool]]] = []

    def current_tools() -> list[types.Tool]:
        # From the settings of the moment: a reload that turns code execution off takes it off the list.
        settings = gw.settings
        if not built or built[0][0] is not settings:
            built[:] = [(settings, proxy_tool_definitions(settings.tools_limit, settings))]
        return built[0][1]

    def endpoint_of(ctx: ServerRequestContext[Any, Any]) -> Endpoint:
        return endpoint

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=current_tools())

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        call_ctx = CallContext(via="mcp", client=client_name(ctx), meta=forward_meta(ctx), token=token_of(ctx))
        arguments = params.arguments or {}
        try:
            result = await dispatch(gw, params.name, arguments, call_ctx)
        except relay.InputRequiredRelay as relayed:
            return relayed.result
        target = arguments.get("name")
        if params.name in CALL_TOOLS and isinstance(target, str):
            try:
                server, _ = split_name(target)
            except ProxyError:
                return result
            return uris.rewrite_call_result(result, uris.namespacer(server))
        return result

    server = ProxyServer(
        "mcpproxy",
        version=__version__,
        title="mcpproxy",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    def schema_of(name: str) -> Mapping[str, Any] | None:
        return next((tool.input_schema for tool in current_tools() if tool.name == name), None)

    server.get_tool_input_schema = schema_of  # see build_direct_server
    _attach_features(server, FeatureHandlers(gw, hub, endpoint_of, via="mcp"))
    server.middleware.append(RelayMiddleware(hub, endpoint_of))
    return server


def build_direct_server(gw: Gateway, hub: Hub) -> Server[Any]:
    """The ``/mcp/all`` server: every upstream tool as ``server__tool``."""
    endpoint = hub.endpoint(DIRECT, View())

    def endpoint_of(ctx: ServerRequestContext[Any, Any]) -> Endpoint:
        return endpoint

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        out = [entry.tool.model_copy(update={"name": entry.direct_name}) for entry in gw.visible_tools(token_of(ctx))]
        size = int(getattr(gw.settings, "list_page_size", 100))
        chunk, cursor = page(out, params.cursor if params else None, size, item_key)
        return types.ListToolsResult(tools=chunk, next_cursor=cursor)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        call_ctx = CallContext(via="mcp-direct", client=client_name(ctx), meta=forward_meta(ctx), token=token_of(ctx))
        try:
            result = await _call(gw, params.name, params.arguments or {}, call_ctx)
        except relay.InputRequiredRelay as relayed:
            return relayed.result
        server, _ = split_name(params.name)
        return uris.rewrite_call_result(result, uris.namespacer(server))

    server = ProxyServer(
        "mcpproxy-direct",
        version=__version__,
        title="mcpproxy (direct mode)",
        instructions=DIRECT_INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
    # The SDK checks a stateless call's Mcp-Param headers against the tool's schema; without this
    # lookup it runs a whole tools/list through the server for every call (a fifth of its cost).
    server.get_tool_input_schema = _schema_lookup(gw)
    _attach_features(server, FeatureHandlers(gw, hub, endpoint_of, via="mcp-direct"))
    server.middleware.append(RelayMiddleware(hub, endpoint_of))
    TaskHandlers(
        gw,
        via="mcp-direct",
        name_of=lambda ctx, name: name,
        servers_of=lambda ctx: gw.feature_servers(),
        rewrite=lambda server, result: uris.rewrite_call_result(result, uris.namespacer(server)),
    ).attach(server)
    return server


def server_name_of(ctx: ServerRequestContext[Any, Any]) -> str:
    """The ``<server>`` of a ``/mcp/s/<server>`` request."""
    request = ctx.request
    name = getattr(request, "path_params", {}).get("server") if request is not None else None
    if not isinstance(name, str) or not name:
        raise MCPError(types.INVALID_REQUEST, "no server in the endpoint path (use /mcp/s/<server>)")
    return name


def intersect_capabilities(
    ours: types.ServerCapabilities, upstream: types.ServerCapabilities
) -> types.ServerCapabilities:
    """What a client of ``/mcp/s/<server>`` may use: what mcpproxy serves and the upstream supports."""
    resources = None
    if ours.resources is not None and upstream.resources is not None:
        resources = types.ResourcesCapability(
            subscribe=bool(ours.resources.subscribe and upstream.resources.subscribe) or None,
            list_changed=ours.resources.list_changed,
        )
    return types.ServerCapabilities(
        tools=ours.tools if upstream.tools is not None else None,
        resources=resources,
        prompts=ours.prompts if upstream.prompts is not None else None,
        completions=ours.completions if upstream.completions is not None else None,
        logging=ours.logging if upstream.logging is not None else None,
    )


def build_single_server(gw: Gateway, hub: Hub) -> Server[Any]:
    """The ``/mcp/s/<server>`` server: one upstream under its own names."""

    def endpoint_of(ctx: ServerRequestContext[Any, Any]) -> Endpoint:
        name = server_name_of(ctx)
        return hub.endpoint(f"s/{name}", View(name))

    def upstream_session(name: str) -> tuple[types.ServerCapabilities | None, str | None, bool]:
        """The upstream's capabilities and instructions, when it is ready."""
        try:
            client = gw.pool.get(name).live_client()
        except ProxyError:
            return None, None, False
        return client.server_capabilities, client.instructions, features.supports(client, "subscribe")

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        name = server_name_of(ctx)
        out = [entry.tool for entry in gw.visible_tools(token_of(ctx)) if entry.server == name]
        size = int(getattr(gw.settings, "list_page_size", 100))
        chunk, cursor = page(out, params.cursor if params else None, size, item_key)
        return types.ListToolsResult(tools=chunk, next_cursor=cursor)

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        name = server_name_of(ctx)
        call_ctx = CallContext(via="mcp-server", client=client_name(ctx), meta=forward_meta(ctx), token=token_of(ctx))
        try:
            return await _call(gw, f"{name}:{params.name}", params.arguments or {}, call_ctx)
        except relay.InputRequiredRelay as relayed:
            return relayed.result
        except MCPError as exc:
            if exc.code != types.INVALID_PARAMS:
                raise
            # As the SDKs answer an unknown tool (and a tool's own invalid arguments): a tool error.
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=f"MCP error {exc.code}: {exc.message}")], is_error=True
            )

    server = ProxyServer(
        "mcpproxy", version=__version__, title="mcpproxy", on_list_tools=list_tools, on_call_tool=call_tool
    )
    _attach_features(server, FeatureHandlers(gw, hub, endpoint_of, via="mcp-server"))

    async def discover(ctx: ServerRequestContext[Any, Any], params: types.RequestParams | None) -> types.DiscoverResult:
        ours = server.get_capabilities(protocol_version=ctx.protocol_version)
        caps, instructions, _ = upstream_session(server_name_of(ctx))
        return types.DiscoverResult(
            supported_versions=list(MODERN_PROTOCOL_VERSIONS),
            capabilities=intersect_capabilities(ours, caps) if caps is not None else ours,
            instructions=instructions,
        )

    server.add_request_handler("server/discover", types.RequestParams, discover)

    async def shape_initialize(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method != "initialize" or not isinstance(result, dict):
            return result
        caps, instructions, _ = upstream_session(server_name_of(ctx))
        if caps is not None:
            ours = types.ServerCapabilities.model_validate(result.get("capabilities", {}))
            shaped = intersect_capabilities(ours, caps)
            result["capabilities"] = shaped.model_dump(by_alias=True, mode="json", exclude_none=True)
        if instructions:
            result["instructions"] = instructions
        return result

    server.middleware.append(shape_initialize)
    server.middleware.append(RelayMiddleware(hub, endpoint_of))
    TaskHandlers(
        gw,
        via="mcp-server",
        name_of=lambda ctx, name: f"{server_name_of(ctx)}:{name}",
        servers_of=lambda ctx: [s for s in gw.feature_servers() if s == server_name_of(ctx)],
        rewrite=lambda server, result: result,
    ).attach(server)
    return server
