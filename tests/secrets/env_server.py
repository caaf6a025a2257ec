"""env_server: a test upstream that reports what it was given, without echoing any value.

    python tests/secrets/env_server.py --transport stdio|http [--port N] [--require-header NAME] [ARG...]

Tools (all read-only): ``variable_names()`` lists the names in the process's environment;
``variable_digest(name)`` and ``header_digest(name)`` give the SHA-256 of an environment
variable or of a request header (http), so a test can check a secret arrived while no value
crosses the tool results; ``argument_digests()`` does the same for its extra command-line
arguments. With ``--require-header NAME`` (http) every request must carry header NAME with the
value of the process's ``EXPECTED_HEADER_VALUE`` variable, else it is answered 401 without a
body: a server that reaches ``ready`` behind mcpproxy proves the header was sent. It binds
127.0.0.1 only and prints nothing of its environment.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.dependencies import get_http_headers
from mcp_types import ToolAnnotations

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)


def digest(value: str | None) -> str | None:
    """SHA-256 of ``value`` in hex (``None`` stays ``None``)."""
    return None if value is None else hashlib.sha256(value.encode("utf-8")).hexdigest()


def build_server(extra_args: list[str]) -> FastMCP:
    mcp = FastMCP("env", instructions="Reports its environment's names and digests of given values.")

    @mcp.tool(annotations=READ_ONLY)
    def variable_names() -> list[str]:
        """The names of the environment variables of this server process, sorted."""
        return sorted(os.environ)

    @mcp.tool(annotations=READ_ONLY)
    def variable_digest(name: str) -> str | None:
        """SHA-256 (hex) of environment variable `name`, or null when it is not set."""
        return digest(os.environ.get(name))

    @mcp.tool(annotations=READ_ONLY)
    def header_digest(name: str) -> str | None:
        """SHA-256 (hex) of HTTP request header `name`, or null when it was not sent."""
        return digest(get_http_headers(include_all=True).get(name.lower()))

    @mcp.tool(annotations=READ_ONLY)
    def argument_digests() -> list[str | None]:
        """SHA-256 (hex) of each extra command-line argument, in order."""
        return [digest(a) for a in extra_args]

    return mcp


class RequireHeader:
    """ASGI middleware: 401 unless header ``name`` has the expected value."""

    def __init__(self, app: Any, name: str, expected: str) -> None:
        self.app = app
        self.name = name.lower().encode("latin-1")
        self.expected = expected.encode("latin-1")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(self.name) != self.expected:
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--transport", choices=["http", "stdio"], default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--require-header", default=None)
    args, extra = parser.parse_known_args(argv)
    server = build_server(extra)
    if args.transport == "stdio":
        server.run(transport="stdio", show_banner=False)
        return
    if args.port <= 0:
        parser.error("--port is required for http")
    middleware: list[Any] = []
    if args.require_header:
        from starlette.middleware import Middleware

        expected = os.environ["EXPECTED_HEADER_VALUE"]
        middleware.append(Middleware(RequireHeader, name=args.require_header, expected=expected))
    server.run(transport="http", host=args.host, port=args.port, show_banner=False, middleware=middleware)


if __name__ == "__main__":
    main()
