"""chaos: a real MCP server (FastMCP, stdio) whose tools misbehave on demand.

    python tests/observe/chaos_server.py [--exit-at-start]

Tools:
  ok(text)            answers ``text``.
  crash()             the process exits with status 3 in the middle of the call (no answer).
  hang()              never answers; when the call is cancelled (``notifications/cancelled``)
                      it prints CANCELLED_LINE on stderr (the server's log).
  late(seconds)       answers after ``seconds``.
  garbage()           writes GARBAGE_LINES (not JSON-RPC) on stdout, then answers "after garbage".
  flood(count)        writes ``count`` log notifications on stdout as fast as it can, then answers.
  big(megabytes)      answers with that many megabytes of text.
  meta()              answers the request's ``_meta`` as JSON (trace context passed on to it).
  slow_ok(seconds)    answers ``ok`` after ``seconds`` (a call that finishes during a shutdown).

``--exit-at-start`` prints EXIT_LINE on stderr and exits with status 1 before reading anything.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import anyio
from fastmcp import Context, FastMCP
from mcp_types import ToolAnnotations

CANCELLED_LINE = "chaos: hang() was cancelled by the client"
EXIT_LINE = "chaos: refusing to start (--exit-at-start)"
GARBAGE_LINES = (b"this is not json\n", b"{\"jsonrpc\": \"2.0\", broken\n", b"\x00\x01\xff binary junk\n")
READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)


def wire_fd() -> int:
    """The descriptor of the real protocol stream: the SDK moves it off fd 1 (diverting fd 1 to
    stderr, so stray prints cannot corrupt the stream); chaos writes onto the stream itself."""
    from mcp.server import stdio

    claim = stdio._claims.get(1)
    return claim.private_fd if claim is not None and claim.private_fd is not None else 1


def build_server() -> FastMCP:
    mcp = FastMCP("chaos", version="1.0.0")

    @mcp.tool(annotations=READ)
    def ok(text: str = "ok") -> str:
        """Answer the text."""
        return text

    @mcp.tool(annotations=READ)
    def crash() -> str:
        """Exit the process in the middle of the call."""
        os._exit(3)

    @mcp.tool(annotations=READ)
    async def hang() -> str:
        """Never answer."""
        try:
            await anyio.sleep_forever()
        finally:
            print(CANCELLED_LINE, file=sys.stderr, flush=True)
        return "unreachable"

    @mcp.tool(annotations=READ)
    async def late(seconds: float) -> str:
        """Answer after a delay."""
        await anyio.sleep(seconds)
        return f"late answer after {seconds}s"

    @mcp.tool(annotations=READ)
    async def slow_ok(seconds: float) -> str:
        """Answer ok after a delay."""
        await anyio.sleep(seconds)
        return "ok"

    @mcp.tool(annotations=READ)
    def garbage() -> str:
        """Write junk on stdout, then answer."""
        for line in GARBAGE_LINES:
            os.write(wire_fd(), line)
        return "after garbage"

    @mcp.tool(annotations=READ)
    def flood(count: int) -> str:
        """Write ``count`` log notifications straight onto stdout, then answer."""
        for start in range(0, count, 200):
            lines = (
                json.dumps({"jsonrpc": "2.0", "method": "notifications/message",
                            "params": {"level": "info", "logger": "chaos", "data": f"flood {i}"}}) + "\n"
                for i in range(start, min(count, start + 200))
            )
            os.write(wire_fd(), "".join(lines).encode())
        return f"flooded {count}"

    @mcp.tool(annotations=READ, output_schema=None)
    def big(megabytes: int, ctx: Context) -> str:
        """Answer with a lot of text, written straight onto the stream (the framework's own
        serialisation of 50 MB takes far longer than any client should wait for)."""
        raw_id = ctx.request_id
        request_id: int | str = int(raw_id) if raw_id.isdigit() else raw_id
        text = "x" * (megabytes * 1024 * 1024)
        result = {"content": [{"type": "text", "text": text}], "isError": False, "resultType": "complete"}
        os.write(wire_fd(), (json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}) + "\n").encode())
        return "answered already"  # a second answer to the same id, which the client drops

    @mcp.tool(annotations=READ)
    def meta(ctx: Context) -> str:
        """Answer the request's _meta."""
        request = ctx.request_context
        raw: Any = request.meta if request is not None else None
        data = raw.model_dump(mode="json", by_alias=True) if hasattr(raw, "model_dump") else raw
        return json.dumps(data or {}, default=str)

    return mcp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--exit-at-start", action="store_true")
    args = parser.parse_args()
    if args.exit_at_start:
        print(EXIT_LINE, file=sys.stderr, flush=True)
        return 1
    build_server().run(transport="stdio", show_banner=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
