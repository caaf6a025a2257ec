"""Translating what the SDK, httpx and the OS raise into the gateway's error tree.

The only place upstream-side foreign exceptions are caught and renamed (httpx's
``map_httpcore_exceptions`` is the model). Everything above the upstream layer sees
``UpstreamError`` subclasses with a reason a user can act on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import httpx2
import mcp_types as types
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from mcpproxy.errors import (
    ConfigError,
    ProxyError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from mcpproxy.sandbox.base import SandboxUnavailable
from mcpproxy.secrets.masking import mask_known

_TRANSPORT_ERRORS = (
    httpx2.HTTPError,
    OSError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
)


def describe(exc: BaseException) -> str:
    """A one-line reason for ``exc``, looking inside exception groups; known secret values are masked."""
    return mask_known(_reason(exc))


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, ConfigError | SandboxUnavailable):  # e.g. a secret without a value: its own words say it best
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or exc}"
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from {exc.request.url}"
    if isinstance(exc, httpx2.ConnectError):
        return f"cannot connect: {exc}"
    if isinstance(exc, MCPError) and exc.code == types.CONNECTION_CLOSED:
        return "connection closed by the server"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_connection_loss(exc: BaseException) -> bool:
    """Whether ``exc`` means the session to the upstream is gone."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return exc.code == types.CONNECTION_CLOSED
    return isinstance(exc, _TRANSPORT_ERRORS)


def translate(server: str, exc: BaseException, *, timeout: float | None = None) -> ProxyError:
    """The gateway error for a foreign exception raised while talking to ``server``."""
    # A transport's task group wraps the error that ended it; the first one is the cause.
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, ProxyError):
        return exc
    reason = describe(exc)
    data = {"server": server}
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(
            f"server '{server}' did not answer within {timeout:g} s" if timeout else f"server '{server}' timed out",
            hint="retry later, or raise call_timeout for this server if its tools are slow",
            data=data,
        )
    if is_connection_loss(exc):
        return UpstreamUnavailable(
            f"server '{server}' is unavailable: {reason}",
            hint="mcpproxy reconnects by itself; check `mcpproxy upstream logs " + server + "` if it persists",
            data=data,
        )
    if isinstance(exc, MCPError):
        return UpstreamError(
            f"server '{server}' answered with an error: {exc.message}",
            data={**data, "upstream_code": exc.code, **({"upstream_data": exc.data} if exc.data is not None else {})},
        )
    if isinstance(exc, ValidationError | ValueError | RuntimeError):
        return UpstreamProtocolError(f"server '{server}' sent an invalid response: {reason}", data=data)
    return UpstreamError(f"server '{server}' failed: {reason}", data=data)


@contextmanager
def map_upstream_errors(server: str, *, timeout: float | None = None) -> Iterator[None]:
    """Re-raise anything but gateway errors as the matching ``UpstreamError``."""
    try:
        yield
    except ProxyError:
        raise
    except (MCPError, TimeoutError, ValidationError, ValueError, RuntimeError, *_TRANSPORT_ERRORS) as exc:
        raise translate(server, exc, timeout=timeout) from exc
    except ExceptionGroup as group:
        # A transport's task group may wrap a single foreign error; unwrap it. A group holding
        # cancellation, KeyboardInterrupt or SystemExit is a BaseExceptionGroup and passes through.
        raise translate(server, group, timeout=timeout) from group


__all__ = ["UpstreamError", "describe", "is_connection_loss", "map_upstream_errors", "translate"]
