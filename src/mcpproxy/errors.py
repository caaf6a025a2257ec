"""One exception tree for the whole gateway.

Every failure a user or a model can meet is one of these classes. Each class carries a
JSON-RPC error code (so MCP endpoints answer with a stable code; the
-32070..-32095 block avoids the codes the MCP SDK itself uses: -32000 connection closed,
-32001 request timeout, -32020 header mismatch, -32042 URL elicitation), an HTTP status (so the
REST API answers with the right status), and a message that says what to do next::

    ProxyError                      -32070  500
    ├── ConfigError                 -32080  400   bad config file or value
    │   └── SecretNotFound          -32081  400   a ${keyring:NAME} / ${env:NAME} reference is unset
    ├── NotFound                    -32078  404   base of the three below
    │   ├── UnknownServer           -32071  404
    │   ├── UnknownTool             -32072  404
    │   ├── CacheMiss               -32076  404   read_cache key unknown or expired
    │   ├── UnknownTask             -32079  404   task handle unknown, expired or not the caller's
    │   └── UnknownRequestState     -32082  404   requestState unknown, expired or not the caller's
    ├── InvalidArguments            -32602  400   arguments do not fit the input schema
    ├── PolicyDenied                -32073  403
    │   ├── TierMismatch            -32074  403   destructive tool through call_tool_read, ...
    │   └── Quarantined             -32075  403
    ├── Conflict                    -32077  409   a server of that name exists, ...
    ├── UpstreamError               -32090  502
    │   ├── UpstreamUnavailable     -32091  503   not connected / disabled / crashed
    │   │   └── CircuitOpen         -32089  503   failures in a row; calls paused a while
    │   ├── UpstreamTimeout         -32092  504
    │   └── UpstreamProtocolError   -32093  502   the server broke the protocol
    ├── Overloaded                  -32094  503   too many calls queued, or shutting down
    │   └── RateLimited             -32088  429   a client's rate limit; ``data.retry_after``
    └── StoreError                  -32095  500

Foreign exceptions are translated at the boundary where they occur (for upstreams, in
``mcpproxy.upstream.errors``); code elsewhere only raises and catches these.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from typing import Any, ClassVar


class ProxyError(Exception):
    """Base of every error the gateway reports.

    Args:
        message: What went wrong, in one sentence.
        hint: What the user (or model) can do about it.
        data: Extra machine-readable fields for the JSON-RPC ``data`` member.
    """

    code: ClassVar[int] = -32070
    http_status: ClassVar[int] = 500
    kind: ClassVar[str] = "proxy_error"

    def __init__(self, message: str, *, hint: str | None = None, data: dict[str, Any] | None = None) -> None:
        from mcpproxy.jsonvalues import encodable
        from mcpproxy.secrets.masking import mask_known  # here: that module imports this one

        # No secret value in any error; and no unpaired surrogate a request held (an unknown tool's
        # name), which no response or log line could encode.
        message, hint = encodable(mask_known(message)), encodable(mask_known(hint)) if hint else hint
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

    code = -32080
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


class SecretNotFound(ConfigError):
    """A server's ``${keyring:NAME}`` or ``${env:NAME}`` reference has no value; the message names it."""

    code = -32081
    kind = "secret_not_found"


class NotFound(ProxyError):
    code = -32078
    http_status = 404
    kind = "not_found"


class UnknownServer(NotFound):
    code = -32071
    kind = "unknown_server"


class UnknownTool(NotFound):
    code = -32072
    kind = "unknown_tool"


class CacheMiss(NotFound):
    code = -32076
    kind = "cache_miss"


class UnknownTask(NotFound):
    """A task handle that is unknown, expired, or was created by another client (the three look
    the same, so a handle's existence never leaks). The MCP endpoints answer it as -32602, as the
    tasks spec answers an invalid ``taskId``."""

    code = -32079
    kind = "unknown_task"


class UnknownRequestState(NotFound):
    """A retry's ``requestState`` names no pending call of this client: unknown, expired, already
    finished, or created by another client."""

    code = -32082
    kind = "unknown_request_state"


class InvalidArguments(ProxyError):
    code = -32602
    http_status = 400
    kind = "invalid_arguments"


class PolicyDenied(ProxyError):
    code = -32073
    http_status = 403
    kind = "policy_denied"


class TierMismatch(PolicyDenied):
    code = -32074
    kind = "tier_mismatch"


class Quarantined(PolicyDenied):
    code = -32075
    kind = "quarantined"


class Conflict(ProxyError):
    code = -32077
    http_status = 409
    kind = "conflict"


class UpstreamError(ProxyError):
    code = -32090
    http_status = 502
    kind = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    code = -32091
    http_status = 503
    kind = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    code = -32092
    http_status = 504
    kind = "upstream_timeout"


class UpstreamProtocolError(UpstreamError):
    code = -32093
    http_status = 502
    kind = "upstream_protocol_error"


class CircuitOpen(UpstreamUnavailable):
    """Calls to a server are paused after consecutive failures; ``data.retry_after`` says for how long."""

    code = -32089
    http_status = 503
    kind = "circuit_open"


class Overloaded(ProxyError):
    code = -32094
    http_status = 503
    kind = "overloaded"


class RateLimited(Overloaded):
    """A client sent more requests than its rate allows; ``data.retry_after`` is in seconds."""

    code = -32088
    http_status = 429
    kind = "rate_limited"


class StoreError(ProxyError):
    code = -32095
    http_status = 500
    kind = "store_error"


def unknown_keys(
    given: Iterable[str], known: Collection[str], *, listing: str = "known keys"
) -> tuple[list[str], str] | None:
    """The keys of ``given`` not in ``known`` (sorted), and a hint naming the known key each may mean.

    ``None`` when every key is known. The hint ends with every known key after ``listing``, so the
    caller's message need only say which keys were not understood.
    """
    unknown = sorted(k for k in given if k not in known)
    if not unknown:
        return None
    names = sorted(known)
    meant = [(key, close[0]) for key in unknown if (close := difflib.get_close_matches(key, names, n=1))]
    if len(unknown) == 1 and meant:
        guess = f"did you mean '{meant[0][1]}'? "
    elif meant:
        guess = "did you mean " + ", ".join(f"'{name}' for '{key}'" for key, name in meant) + "? "
    else:
        guess = ""
    return unknown, f"{guess}{listing}: {', '.join(names)}"


def quoted(keys: Iterable[str]) -> str:
    """``'a', 'b'`` for a message."""
    return ", ".join(f"'{k}'" for k in keys)
