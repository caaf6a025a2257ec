"""One exception tree for the whole gateway.

Every failure a user or a model can meet is one of these classes. Each class carries a
JSON-RPC error code (so MCP endpoints answer with a stable code), an HTTP status (so the
REST API answers with the right status), and a message that says what to do next::

    ProxyError                      -32000  500
    ├── ConfigError                 -32010  400   bad config file or value
    ├── NotFound                    -32001  404
    │   ├── UnknownServer           -32001  404
    │   ├── UnknownTool             -32002  404
    │   └── CacheMiss               -32006  404   read_cache key unknown or expired
    ├── InvalidArguments            -32602  400   arguments do not fit the input schema
    ├── PolicyDenied                -32003  403
    │   ├── TierMismatch            -32004  403   destructive tool through call_tool_read, ...
    │   └── Quarantined             -32005  403
    ├── Conflict                    -32007  409   a server of that name exists, ...
    ├── UpstreamError               -32030  502
    │   ├── UpstreamUnavailable     -32031  503   not connected / disabled / crashed
    │   ├── UpstreamTimeout         -32032  504
    │   └── UpstreamProtocolError   -32033  502   the server broke the protocol
    ├── Overloaded                  -32040  503
    └── StoreError                  -32050  500

Foreign exceptions are translated at the boundary where they occur (for upstreams, in
``mcpproxy.upstream.errors``); code elsewhere only raises and catches these.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ProxyError(Exception):
    """Base of every error the gateway reports.

    Args:
        message: What went wrong, in one sentence.
        hint: What the user (or model) can do about it.
        data: Extra machine-readable fields for the JSON-RPC ``data`` member.
    """

    code: ClassVar[int] = -32000
    http_status: ClassVar[int] = 500
    kind: ClassVar[str] = "proxy_error"

    def __init__(self, message: str, *, hint: str | None = None, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.data: dict[str, Any] = dict(data or {})

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, Any]:
        """The error as a JSON object, the same for MCP error data and REST bodies."""
        out: dict[str, Any] = {"error": self.kind, "code": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        if self.data:
            out["data"] = self.data
        return out


class ConfigError(ProxyError):
    """The configuration is invalid; ``key`` and ``line`` say where when known."""

    code = -32010
    http_status = 400
    kind = "config_error"

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        data: dict[str, Any] = {}
        if key is not None:
            data["key"] = key
        if line is not None:
            data["line"] = line
        super().__init__(message, hint=hint, data=data)
        self.key = key
        self.line = line


class NotFound(ProxyError):
    code = -32001
    http_status = 404
    kind = "not_found"


class UnknownServer(NotFound):
    code = -32001
    kind = "unknown_server"


class UnknownTool(NotFound):
    code = -32002
    kind = "unknown_tool"


class CacheMiss(NotFound):
    code = -32006
    kind = "cache_miss"


class InvalidArguments(ProxyError):
    code = -32602
    http_status = 400
    kind = "invalid_arguments"


class PolicyDenied(ProxyError):
    code = -32003
    http_status = 403
    kind = "policy_denied"


class TierMismatch(PolicyDenied):
    code = -32004
    kind = "tier_mismatch"


class Quarantined(PolicyDenied):
    code = -32005
    kind = "quarantined"


class Conflict(ProxyError):
    code = -32007
    http_status = 409
    kind = "conflict"


class UpstreamError(ProxyError):
    code = -32030
    http_status = 502
    kind = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    code = -32031
    http_status = 503
    kind = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    code = -32032
    http_status = 504
    kind = "upstream_timeout"


class UpstreamProtocolError(UpstreamError):
    code = -32033
    http_status = 502
    kind = "upstream_protocol_error"


class Overloaded(ProxyError):
    code = -32040
    http_status = 503
    kind = "overloaded"


class StoreError(ProxyError):
    code = -32050
    http_status = 500
    kind = "store_error"
