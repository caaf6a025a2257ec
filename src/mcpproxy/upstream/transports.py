"""Opening a transport to one upstream: stdio, streamable HTTP or legacy SSE.

Each builder returns the SDK's own transport (an async context manager yielding a read and
a write stream); the session layer wraps the read stream to learn when it ends. JSON-RPC
framing is never re-implemented here.

Security: a stdio server gets an environment built from a short allowlist of the proxy's
own variables plus the ``env`` of its config entry, never the proxy's whole environment
(which may hold API keys of other servers). Its stderr goes to its own log file. The session
layer starts stdio servers in their sandbox (``isolation.py``: policy, process, exit reasons). Secret
references (``${env:NAME}``, ``${keyring:NAME}``) in env, headers, args and url are resolved by
``resolve_references`` for each connection; the resolved spec goes to the transport only and
is never stored.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx2
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from mcpproxy.secrets.resolve import resolve_spec
from mcpproxy.secrets.store import SecretStore
from mcpproxy.settings import ServerSpec, Settings
from mcpproxy.upstream.http11 import LeanTransport
from mcpproxy.upstream.isolation import IsolationPlan, isolated_stdio_client
from mcpproxy.upstream.stdio_lines import install as _linear_stdio_lines

_linear_stdio_lines()  # the SDK's stdio client reads long lines in quadratic time otherwise

ENV_ALLOWLIST = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
"""Variables of the proxy's environment a stdio server inherits; everything else it must be given."""

SSE_READ_TIMEOUT = 300.0
"""Seconds an SSE stream may stay silent before the SDK drops it (servers send keep-alives)."""


@dataclass(frozen=True, slots=True)
class ProcessHooks:
    """What a sandboxed stdio start needs from its supervisor.

    Attributes:
        settings: Global settings (sandbox choice, data dir).
        on_plan: Hears how the server is isolated, before it starts.
        on_exit: Hears why the process ended, when it ended on its own.
    """

    settings: Settings
    on_plan: Callable[[IsolationPlan], None]
    on_exit: Callable[[str], None]


def resolve_references(spec: ServerSpec, data_dir: Path) -> ServerSpec:
    """``spec`` with its secret references replaced, for one connection (blocking: run it in a thread).

    Raises:
        SecretNotFound: A reference has no value; the message names it, never a value.
    """
    return resolve_spec(spec, lambda: SecretStore(data_dir), public_env=ENV_ALLOWLIST)


def stdio_environment(spec: ServerSpec, ambient: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a stdio server starts with: the allowlist plus its own ``env``."""
    source = os.environ if ambient is None else ambient
    env = {key: source[key] for key in ENV_ALLOWLIST if key in source and not source[key].startswith("()")}
    env.update(spec.env)
    return env


def open_transport(
    spec: ServerSpec,
    *,
    connect_timeout: float,
    errlog: TextIO,
    http_client: httpx2.AsyncClient | None = None,
    process: ProcessHooks | None = None,
) -> AbstractAsyncContextManager[TransportStreams]:
    """The SDK transport for ``spec``.

    Args:
        spec: The server entry.
        connect_timeout: Seconds for HTTP connect/write operations.
        errlog: Where a stdio server's stderr goes (a real file: the child writes to it).
        http_client: The HTTP client to reuse for an HTTP server (one per upstream).
        process: For a stdio server: start it in its sandbox (``mcpproxy.upstream.isolation``)
            and report its plan and its death through these hooks. Without them the SDK's own
            stdio client starts it unconfined.
    """
    if spec.transport == "stdio":
        assert spec.command is not None
        if process is not None and sys.platform != "win32":
            return isolated_stdio_client(
                spec,
                process.settings,
                env=stdio_environment(spec),
                errlog=errlog,
                on_plan=process.on_plan,
                on_exit=process.on_exit,
            )
        params = StdioServerParameters(
            command=spec.command,
            args=list(spec.args),
            env=stdio_environment(spec),
            cwd=spec.working_dir,
            # Bytes that are not UTF-8 on stdout become U+FFFD and the line is skipped as not JSON;
            # "strict" would stop the reader and leave every later call to time out.
            encoding_error_handler="replace",
        )
        return stdio_client(params, errlog=errlog)
    assert spec.url is not None
    if spec.transport == "sse":
        return sse_client(
            spec.url,
            headers=dict(spec.headers),
            timeout=connect_timeout,
            sse_read_timeout=SSE_READ_TIMEOUT,
        )
    return streamable_http_client(spec.url, http_client=http_client)


def new_http_client(spec: ServerSpec, *, connect_timeout: float, lean: bool = True) -> httpx2.AsyncClient:
    """One pooled HTTP client per HTTP upstream, kept for the life of its session.

    The SDK's client settings (``create_mcp_http_client``: no redirect following of its own,
    these timeouts), over ``LeanTransport`` for plain ``http`` (``upstream.http11``) when
    ``lean`` (the ``upstream_http_transport`` setting).
    """
    timeout = httpx2.Timeout(connect_timeout, read=SSE_READ_TIMEOUT)
    transport = LeanTransport() if lean else None
    return httpx2.AsyncClient(headers=dict(spec.headers), timeout=timeout, transport=transport)
