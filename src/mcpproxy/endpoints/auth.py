"""Inbound authentication of MCP clients: agent tokens and the API key.

Design. A pure ASGI middleware in front of every MCP route reads ``Authorization: Bearer X``
(or ``X-API-Key``). The API key is the operator's: it passes with no limits. An agent token
(``mcpproxy token create``) is looked up by its SHA-256 (tokens are stored hashed, never in
clear) and must be active (not revoked, not expired); it is attached to the request scope so
that every call made on that request carries it in its ``CallContext``, where the token's
tier and server scope limit what may be searched and called. A wrong credential is refused
with 401 whatever the mode; no credential is refused when ``mcp_auth`` is ``required``,
which the gateway insists on when it listens beyond loopback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from mcpproxy.errors import PolicyDenied
from mcpproxy.routing.catalog import Tier, ToolEntry
from mcpproxy.store.security import AgentToken

TOKEN_PREFIX = "mcpt_"  # noqa: S105 - a public prefix that makes tokens recognisable, not a secret
SCOPE_KEY = "mcpproxy.token"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(name: str, tier: str, servers: list[str] | None, expires_in: float | None) -> tuple[str, AgentToken]:
    """A fresh secret and its stored (hashed) record."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = time.time()
    record = AgentToken(
        id=uuid.uuid4().hex[:12], name=name, token_hash=hash_token(secret), tier=tier, servers=servers,
        created_at=now, expires_at=None if expires_in is None else now + expires_in,
    )
    return secret, record


def token_tier(token: AgentToken) -> Tier:
    return Tier[token.tier.upper()]


def token_allows(token: AgentToken | None, entry: ToolEntry) -> bool:
    """Whether a token may see (and so call) ``entry``: its servers and its tier."""
    if token is None:
        return True
    if token.servers is not None and entry.server not in token.servers:
        return False
    return entry.tier <= token_tier(token)


def check_token(entry: ToolEntry, args: Any, ctx: Any) -> None:
    """Pipeline check: a token's scope and tier bound every call made with it."""
    token: AgentToken | None = getattr(ctx, "token", None)
    if token is None or token_allows(token, entry):
        return
    if token.servers is not None and entry.server not in token.servers:
        raise PolicyDenied(
            f"this agent token may not use server '{entry.server}'",
            hint=f"the token is limited to: {', '.join(token.servers)}",
            data={"tool": entry.key, "token": token.name},
        )
    raise PolicyDenied(
        f"this agent token has tier '{token.tier}' and cannot call the {entry.tier.label} tool '{entry.key}'",
        hint="ask the operator for a token with a higher tier",
        data={"tool": entry.key, "token": token.name, "token_tier": token.tier, "tool_tier": entry.tier.label},
    )


class McpAuthMiddleware:
    """Authenticates MCP requests (see the module docstring).

    Args:
        app: The MCP route's ASGI app.
        api_key: The operator's key.
        lookup: ``lookup(sha256_hex)`` returns the active token with that hash, or ``None``.
        required: Whether a request without a credential is refused.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_key: str,
        lookup: Callable[[str], AgentToken | None],
        required: Callable[[], bool],
    ) -> None:
        self.app = app
        self.api_key = api_key.encode()
        self.lookup = lookup
        self.required = required

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-api-key", b"")
        auth = headers.get(b"authorization", b"")
        if not given and auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        if given:
            if hmac.compare_digest(given, self.api_key):
                scope[SCOPE_KEY] = None
            else:
                token = self.lookup(hash_token(given.decode("utf-8", errors="replace")))
                if token is None:
                    await _refuse(send, "invalid, expired or revoked token")
                    return
                scope[SCOPE_KEY] = token
        elif self.required():
            await _refuse(send, "this gateway requires an agent token (Authorization: Bearer ...)")
            return
        await self.app(scope, receive, send)


async def _refuse(send: Send, message: str) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": PolicyDenied.code, "message": message}}).encode()
    await send({
        "type": "http.response.start",
        "status": 401,
        "headers": [
            (b"content-type", b"application/json"),
            (b"www-authenticate", b'Bearer realm="mcpproxy"'),
            (b"content-length", str(len(body)).encode()),
        ],
    })
    await send({"type": "http.response.body", "body": body})


def token_of(request_context: Any) -> AgentToken | None:
    """The agent token attached to an MCP handler's HTTP request, if any."""
    request = getattr(request_context, "request", None)
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict):
        token = scope.get(SCOPE_KEY)
        return token if isinstance(token, AgentToken) else None
    return None
