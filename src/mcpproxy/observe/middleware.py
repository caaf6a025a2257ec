"""The HTTP front of the operations layer: request ids, client identity, trace headers, rate limits.

Pure ASGI (streaming responses pass untouched). For every HTTP request it:

* takes the client's ``X-Request-Id`` (when it is a sane token) or makes one, returns it in the
  response's ``X-Request-Id`` header, and binds it to every log line written while serving the
  request (``structlog.contextvars``) and to the activity records of the calls it makes;
* notes who is calling: a fingerprint of the presented credential (``Authorization: Bearer`` or
  ``X-API-Key``; never the credential) and the client address;
* keeps W3C trace context headers (``traceparent``, ``tracestate``) for the tracer;
* applies the per-client rate limit (a token bucket per credential fingerprint, else per client
  address): past it, ``429`` with ``Retry-After`` and a body that says when to retry
  (a JSON-RPC error on the MCP routes, the REST error shape elsewhere);
* records an ``auth`` event for every ``401``/``403`` answer.

Health, readiness and metrics routes are never rate limited.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcpproxy.errors import RateLimited
from mcpproxy.observe.events import (
    OpsEvent,
    client_addr_var,
    fingerprint,
    new_id,
    request_id_var,
    token_var,
    trace_headers_var,
)

if TYPE_CHECKING:
    from mcpproxy.gateway import Gateway

_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_UNLIMITED = ("/healthz", "/readyz", "/metrics")
MAX_PEEK = 64 * 1024
"""Bytes of a refused MCP request read to find its JSON-RPC id."""


class OpsMiddleware:
    """See the module docstring.

    Args:
        app: The wrapped application.
        gateway: The gateway (its operations layer holds the rate limiter and event hook).
    """

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gw = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid: str | None = None
        credential: bytes | None = None
        trace_headers: dict[str, str] | None = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                text = value.decode("latin-1")
                rid = text if _SANE_ID.fullmatch(text) else None
            elif key == b"authorization" and value[:7].lower() == b"bearer ":
                credential = value[7:].strip()
            elif key == b"x-api-key" and credential is None:
                credential = value.strip()
            elif key in (b"traceparent", b"tracestate"):
                trace_headers = trace_headers or {}
                trace_headers[key.decode()] = value.decode("latin-1")
        rid = rid or new_id()
        token = fingerprint(credential.decode("latin-1")) if credential else None
        client = scope.get("client")
        addr = client[0] if client else None
        path: str = scope.get("path", "")

        tokens = (
            request_id_var.set(rid),
            token_var.set(token),
            client_addr_var.set(addr),
            trace_headers_var.set(trace_headers),
        )
        log_tokens = structlog.contextvars.bind_contextvars(request_id=rid)
        try:
            ops = self.gw.ops
            if ops.buckets is not None and not path.startswith(_UNLIMITED):
                wait = ops.rate_check(token or addr or "-")
                if wait > 0:
                    await self._refuse(scope, receive, send, rid, wait, path)
                    return
            rid_header = rid.encode()

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), (b"x-request-id", rid_header)]
                    status = message["status"]
                    if status in (401, 403) and path.startswith(("/api/", "/mcp")):
                        self.gw.record_event(
                            OpsEvent(kind="auth", action="deny", check="auth", detail={"path": path, "status": status})
                        )
                await send(message)

            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.reset_contextvars(**log_tokens)
            for var, tok in zip((request_id_var, token_var, client_addr_var, trace_headers_var), tokens, strict=True):
                var.reset(tok)  # type: ignore[attr-defined]

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, rid: str, wait: float, path: str) -> None:
        retry_after = max(1, math.ceil(wait))
        error = RateLimited(
            f"too many requests from this client; retry after {retry_after} s",
            hint="slow down, or raise rate_limit / rate_limit_burst",
            data={"retry_after": round(wait, 3)},
        )
        self.gw.record_event(OpsEvent(kind="policy", action="deny", check="rate_limit", detail={"path": path}))
        if path.startswith("/mcp") and scope.get("method") == "POST":
            request_id = await _jsonrpc_id(receive)
            body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": error.code, "message": str(error),
                                                                  "data": error.to_dict()}}
        else:
            body = error.to_dict()
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"retry-after", str(retry_after).encode()),
                    (b"x-request-id", rid.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _jsonrpc_id(receive: Receive) -> object:
    """The ``id`` of a JSON-RPC request body (``None`` if it has none or is too big to look at)."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_PEEK:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            break
    else:
        return None
    try:
        parsed = json.loads(b"".join(chunks))
    except ValueError:
        return None
    return parsed.get("id") if isinstance(parsed, dict) else None
