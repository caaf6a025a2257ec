"""``build_app(gateway)``: the ASGI application mcpproxy serves.

Routes::

    /mcp          MCP, retrieve mode (proxy tools), both protocol eras
    /mcp/all      MCP, direct mode (every upstream tool as server__tool)
    /mcp/s/NAME   MCP, one upstream under its own names (tools, resources, prompts)
    /mcp/code     MCP, code mode: code_execution, retrieve_tools, describe_tool
    /healthz      200 as soon as the endpoint serves (JSON); /readyz ready or 503 with reasons
    /metrics      Prometheus metrics
    /api/v1/...   REST API (API key)

The lifespan enters the gateway (store, pool, watcher), the notification hub and the SDK
session managers; the endpoint answers at once while upstreams connect in the background.
Host and Origin are checked on every MCP route against DNS rebinding (the SDK's transport
security; loopback names, the listen host and ``allowed_hosts`` / ``allowed_origins`` are
trusted), and request bodies are capped at ``max_body_size``; middleware is pure ASGI so
streaming responses are untouched.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, Router
from starlette.types import ASGIApp

from mcpproxy.codemode.endpoint import CodeEndpoint
from mcpproxy.endpoints.auth import McpAuthMiddleware
from mcpproxy.endpoints.health import build_health_routes
from mcpproxy.endpoints.hostguard import HostOriginMiddleware
from mcpproxy.endpoints.mcp_server import build_direct_server, build_retrieve_server, build_single_server
from mcpproxy.endpoints.notify import Hub
from mcpproxy.endpoints.rest import ApiKeyMiddleware, JsonRouteErrors, build_rest_routes, load_or_create_api_key
from mcpproxy.gateway import Gateway
from mcpproxy.observe.middleware import OpsMiddleware
from mcpproxy.settings import Settings

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")

logger = logging.getLogger(__name__)


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """DNS-rebinding protection: only requests naming a trusted host (and, from a browser, a
    trusted origin) reach the MCP endpoints. Trusted: the loopback names, the host mcpproxy
    listens on, and ``allowed_hosts`` / ``allowed_origins`` (a reverse proxy's public name)."""
    if not settings.dns_rebinding_protection:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = list(LOOPBACK_NAMES)
    host = settings.host
    if host not in ("0.0.0.0", "::", ""):  # noqa: S104 - compared, not bound
        names.append(f"[{host}]" if ":" in host and not host.startswith("[") else host)
    hosts: list[str] = []
    for name in names:
        hosts += [name, f"{name}:*"]
    for extra in _split(settings.allowed_hosts):
        hosts.append(extra)
        if ":" not in extra.removeprefix("[").split("]")[-1]:
            hosts.append(f"{extra}:*")
    origins = [f"{scheme}://{name}:*" for name in names for scheme in ("http", "https")]
    origins += [f"{scheme}://{name}" for name in names for scheme in ("http", "https")]
    origins += _split(settings.allowed_origins)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def _manager(server: Server[Any], settings: Settings) -> StreamableHTTPSessionManager:
    return StreamableHTTPSessionManager(
        app=server, security_settings=transport_security(settings), max_request_body_size=settings.max_body_size
    )


class SingleServerApp:
    """``/mcp/s/<server>``: 404 for a server that is not configured, else the MCP endpoint."""

    def __init__(self, gateway: Gateway, manager: StreamableHTTPSessionManager) -> None:
        self.gateway = gateway
        self.inner = StreamableHTTPASGIApp(manager)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        name = scope.get("path_params", {}).get("server")
        if name not in self.gateway.state.settings.servers:
            response = JSONResponse({"error": "unknown_server", "message": f"no server named '{name}'"}, 404)
            await response(scope, receive, send)
            return
        await self.inner(scope, receive, send)


def build_app(gateway: Gateway, *, api_key: str | None = None) -> Starlette:
    """The ASGI app for ``gateway`` (entered by the app's lifespan)."""
    hub = Hub(gateway)
    retrieve = _manager(build_retrieve_server(gateway, hub), gateway.settings)
    direct = _manager(build_direct_server(gateway, hub), gateway.settings)
    single = _manager(build_single_server(gateway, hub), gateway.settings)
    code = CodeEndpoint(gateway, hub)
    key = api_key or load_or_create_api_key(gateway.data_dir)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        serving = False
        try:
            async with AsyncExitStack() as stack:
                await stack.enter_async_context(gateway)
                await stack.enter_async_context(hub)
                await stack.enter_async_context(retrieve.run())
                await stack.enter_async_context(direct.run())
                await stack.enter_async_context(single.run())
                await stack.enter_async_context(code.running())
                serving = True
                yield
        except BaseException as exc:
            # A failed start-up is the server's to report, and a cancellation from outside is a stop
            # asked for; anything else is a failure while serving.
            if serving and not isinstance(exc, anyio.get_cancelled_exc_class()):
                gateway.fatal = exc
                logger.critical("the gateway stopped while serving: %r", exc, exc_info=exc)
            raise

    api = Router(routes=build_rest_routes(gateway))

    def guarded(app: ASGIApp) -> ASGIApp:
        # Every MCP route: agent tokens or the API key; none needed on loopback unless mcp_auth is required.
        return McpAuthMiddleware(
            app, api_key=key, lookup=gateway.lookup_token, required=lambda: gateway.settings.mcp_auth == "required"
        )

    routes: list[Route | Mount] = [
        Route("/mcp", endpoint=guarded(StreamableHTTPASGIApp(retrieve))),
        Route("/mcp/all", endpoint=guarded(StreamableHTTPASGIApp(direct))),
        Route("/mcp/s/{server}", endpoint=guarded(SingleServerApp(gateway, single))),
        Route("/mcp/code", endpoint=guarded(code.app)),
        *build_health_routes(gateway),
        Mount(
            "/api/v1",
            app=HostOriginMiddleware(ApiKeyMiddleware(JsonRouteErrors(api), key), transport_security(gateway.settings)),
        ),
    ]
    # Request ids, client identity, trace headers and rate limits (pure ASGI, outermost).
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(OpsMiddleware, gateway=gateway)])
