"""``build_app(gateway)``: the ASGI application mcpproxy serves.

Routes::

    /mcp          MCP, retrieve mode (proxy tools), both protocol eras
    /mcp/all      MCP, direct mode (every upstream tool as server__tool)
    /healthz      200 as soon as the endpoint serves
    /api/v1/...   REST API (API key)

The lifespan enters the gateway (store, pool, watcher) and the SDK session managers; the
endpoint answers at once while upstreams connect in the background. Host and Origin are
checked on the MCP routes against DNS rebinding when listening on loopback (the SDK's
transport security); middleware is pure ASGI so streaming responses are untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, Router

from mcpproxy import __version__
from mcpproxy.endpoints.mcp_server import build_direct_server, build_retrieve_server
from mcpproxy.endpoints.rest import ApiKeyMiddleware, build_rest_routes, load_or_create_api_key
from mcpproxy.gateway import Gateway
from mcpproxy.settings import is_loopback_host


def transport_security(host: str) -> TransportSecuritySettings | None:
    """DNS-rebinding protection for a loopback listener (a page in a browser cannot reach us)."""
    if not is_loopback_host(host) and host not in ("localhost",):
        return None
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


def _manager(server: Server[Any], security: TransportSecuritySettings | None) -> StreamableHTTPSessionManager:
    return StreamableHTTPSessionManager(app=server, security_settings=security)


def build_app(gateway: Gateway, *, api_key: str | None = None) -> Starlette:
    """The ASGI app for ``gateway`` (entered by the app's lifespan)."""
    security = transport_security(gateway.settings.host)
    retrieve = _manager(build_retrieve_server(gateway), security)
    direct = _manager(build_direct_server(gateway), security)
    key = api_key or load_or_create_api_key(gateway.data_dir)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(gateway)
            await stack.enter_async_context(retrieve.run())
            await stack.enter_async_context(direct.run())
            yield

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    api = Router(routes=build_rest_routes(gateway))
    routes: list[Route | Mount] = [
        Route("/mcp", endpoint=StreamableHTTPASGIApp(retrieve)),
        Route("/mcp/all", endpoint=StreamableHTTPASGIApp(direct)),
        Route("/healthz", endpoint=healthz, methods=["GET"]),
        Mount("/api/v1", app=ApiKeyMiddleware(api, key)),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=list[Middleware]())
