"""What the rest of the gateway knows about an upstream server.

An upstream is reached through one live MCP session that the pool keeps open and reuses
for every call (no session per call). Its life is a small state machine, visible to users
through ``mcpproxy upstream list`` and the REST API::

    disabled <-> connecting -> ready -> (lost) -> backoff -> connecting ...
                          \\-> error (reason) -> backoff -> connecting ...
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import mcp_types as types


class UpstreamState(enum.StrEnum):
    CONNECTING = "connecting"
    READY = "ready"
    ERROR = "error"
    BACKOFF = "backoff"
    DISABLED = "disabled"
    STOPPED = "stopped"


@dataclass(slots=True)
class ServerStatus:
    """A snapshot of one upstream's runtime state.

    Attributes:
        name: Server name.
        state: Current state.
        error: Why the last attempt failed or the session was lost, still shown while it connects
            again (``None`` when fine, and on a first start or restart).
        protocol_version: Negotiated protocol version when ready.
        server_name: The ``serverInfo.name`` the upstream reported.
        server_version: The ``serverInfo.version`` the upstream reported.
        instructions: The upstream's ``instructions`` text, used as search context.
        tool_count: Number of tools listed at the last successful listing.
        attempts: Consecutive failed connection attempts.
        retry_at: Unix time of the next attempt while in backoff.
        connected_at: Unix time the current session became ready.
        transport: ``stdio``, ``http`` or ``sse``.
        isolation: How a stdio server runs: its sandbox and network (``bwrap, network none``), or
            ``none (...)`` with the reason.
    """

    name: str
    transport: str
    state: UpstreamState = UpstreamState.CONNECTING
    error: str | None = None
    protocol_version: str | None = None
    server_name: str | None = None
    server_version: str | None = None
    instructions: str | None = None
    tool_count: int = 0
    attempts: int = 0
    retry_at: float | None = None
    connected_at: float | None = None
    isolation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "transport": self.transport,
            "state": self.state.value,
            "error": self.error,
            "protocol_version": self.protocol_version,
            "server_info": {"name": self.server_name, "version": self.server_version},
            "tool_count": self.tool_count,
            "attempts": self.attempts,
            "retry_at": self.retry_at,
            "connected_at": self.connected_at,
            "isolation": self.isolation,
        }


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Per-call options handed to an upstream.

    Attributes:
        timeout: Seconds the call may take.
        meta: ``_meta`` to pass upstream (trace context, progress token).
        caller_limited: ``timeout`` is the caller's, shorter than the server's ``call_timeout``: a
            timeout then says nothing about the server's health (its circuit breaker ignores it).
    """

    timeout: float
    meta: Mapping[str, Any] | None = field(default=None)
    caller_limited: bool = False


class Upstream(Protocol):
    """One upstream server as the pipeline sees it."""

    @property
    def name(self) -> str: ...

    @property
    def status(self) -> ServerStatus: ...

    async def call_tool(self, tool: str, arguments: Mapping[str, Any], options: CallOptions) -> types.CallToolResult:
        """Call ``tool`` on this server; raises an ``UpstreamError`` subclass on failure."""
        ...
