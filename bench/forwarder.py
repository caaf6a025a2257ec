"""The floor of a Python HTTP proxy on this machine: forwarders that do nothing but forward.

    python bench/forwarder.py --mode raw|asgi|sdk --port PORT --upstream http://127.0.0.1:PORT/mcp
    python bench/forwarder.py --mode sdk --port PORT --upstream "/usr/bin/python3 server.py --transport stdio"

``bench/load.py`` runs them in front of the same upstream as mcpproxy, so the added latency and
CPU time of mcpproxy can be read against what forwarding alone costs here:

* ``raw``: asyncio streams on both sides (uvloop when installed), no HTTP library. Each client
  connection gets its own kept-alive upstream connection; a request's head is copied with its
  ``Host`` rewritten, its body by ``Content-Length``; the answer's head and body (by
  ``Content-Length`` or chunked) are copied back unchanged. No MCP, no JSON, no checks: the
  least any Python proxy does per call.
* ``asgi``: uvicorn (uvloop, httptools) with a bare ASGI app posting each body to the upstream
  through one pooled ``httpx2`` client, the usual way a Python ASGI proxy is built.
* ``sdk``: the least an MCP proxy built on the official SDK does: the SDK's low-level ``Server``
  behind its ``StreamableHTTPSessionManager`` (both protocol eras, served by uvicorn as mcpproxy is)
  whose ``tools/call`` handler calls the upstream through one SDK ``Client`` session (the SDK's own
  ``httpx2`` transport, or its stdio transport when ``--upstream`` is a command line), and
  ``tools/list`` answers the upstream's list read once at start. No routing, policy, records,
  limits or metrics: what any SDK-based proxy pays before doing its job.

None is a usable proxy (no limits, no errors beyond closing the connection or the SDK's own); they
exist to be measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        parts.append(size_line)
        size = int(size_line.split(b";")[0].strip(), 16)
        parts.append(await reader.readexactly(size + 2))
        if size == 0:
            return b"".join(parts)


def serve_raw(port: int, upstream: str) -> None:
    target = urlsplit(upstream)
    host, up_port = target.hostname or "127.0.0.1", target.port or 80
    host_line = f"host: {host}:{up_port}".encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, up_port)
        try:
            while (head := await _read_head(reader)) is not None:
                length = int(_header(head, b"content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                lines = [line if not line.lower().startswith(b"host:") else host_line for line in head.split(b"\r\n")]
                up_writer.write(b"\r\n".join(lines) + body)
                answer = await _read_head(up_reader)
                if answer is None:
                    return
                size = _header(answer, b"content-length")
                if size is not None:
                    rest = await up_reader.readexactly(int(size))
                elif (_header(answer, b"transfer-encoding") or b"").lower() == b"chunked":
                    rest = await _read_chunked(up_reader)
                else:  # an answer ended by closing: copy to the end and stop
                    rest = await up_reader.read()
                    writer.write(answer + rest)
                    return
                writer.write(answer + rest)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            up_writer.close()
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


def serve_asgi(port: int, upstream: str) -> None:
    import httpx2
    import uvicorn

    client: list[httpx2.AsyncClient] = []
    skip = {b"host", b"content-length", b"connection"}

    async def app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def,type-arg]
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    limits = httpx2.Limits(max_connections=200, max_keepalive_connections=200)
                    client.append(httpx2.AsyncClient(timeout=60, limits=limits))
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await client[0].aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in skip]
        response = await client[0].post(upstream, content=b"".join(chunks), headers=headers)
        content_type = response.headers.get("content-type", "application/json").encode()
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": [(b"content-type", content_type)]})
        await send({"type": "http.response.body", "body": response.content})

    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="warning",
                access_log=False)


def serve_sdk(port: int, upstream: str) -> None:
    import os
    import shlex
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager
    from typing import Any

    import uvicorn
    from mcp import Client, StdioServerParameters, types
    from mcp.server.lowlevel import Server
    from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
    from starlette.applications import Starlette
    from starlette.routing import Route

    upstream_client: list[Client] = []
    listed: list[types.ListToolsResult] = []

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return listed[0]

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await upstream_client[0].session.call_tool(params.name, params.arguments or {})

    def input_schema(name: str) -> dict[str, Any] | None:
        return next((tool.input_schema for tool in listed[0].tools if tool.name == name), None) if listed else None

    server: Server[Any] = Server("sdk-floor", on_list_tools=list_tools, on_call_tool=call_tool)
    server.get_tool_input_schema = input_schema
    manager = StreamableHTTPSessionManager(app=server)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        target: str | StdioServerParameters = upstream
        if not upstream.startswith(("http://", "https://")):
            command, *args = shlex.split(upstream)
            target = StdioServerParameters(command=command, args=args, env=dict(os.environ))
        async with Client(target) as client, manager.run():
            upstream_client.append(client)
            listed.append(await client.session.list_tools())
            yield

    app = Starlette(routes=[Route("/mcp", StreamableHTTPASGIApp(manager))], lifespan=lifespan)
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="warning",
                access_log=False)


SERVE = {"raw": serve_raw, "asgi": serve_asgi, "sdk": serve_sdk}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mode", choices=tuple(SERVE), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--upstream", required=True, help="the upstream's URL (http only); for sdk, also a stdio server's command line"
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        SERVE[args.mode](args.port, args.upstream)


if __name__ == "__main__":
    main()
