"""Host and Origin checks for the routes that are not MCP (REST API, health).

The MCP routes get the SDK's own transport security; this pure ASGI middleware applies the same
trusted hosts and origins (``mcpproxy.app.transport_security``) to every other route, so a web
page cannot reach the REST API through DNS rebinding either: a request naming another host, or
sent by a browser from another origin, is refused with 421 / 403 before any handler runs.
"""

from __future__ import annotations

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send


class HostOriginMiddleware:
    """Refuses HTTP requests whose ``Host`` or ``Origin`` is not trusted."""

    def __init__(self, app: ASGIApp, settings: TransportSecuritySettings) -> None:
        self.app = app
        self.enabled = settings.enable_dns_rebinding_protection
        self.checker = TransportSecurityMiddleware(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not self.checker._validate_host(headers.get("host")):
            response = JSONResponse({"error": "invalid_host", "message": "this Host is not trusted"}, status_code=421)
            await response(scope, receive, send)
            return
        if not self.checker._validate_origin(headers.get("origin")):
            body = {"error": "invalid_origin", "message": "this Origin is not trusted"}
            response = JSONResponse(body, status_code=403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
