"""The ``code_execution`` tool the model sees, and its handler.

The handler parses the arguments, runs the program through the gateway's code service and
returns the result as a tool result (structured content, a readable text block, ``isError``
when not ok). When the client asked for progress (its request carries a progress token),
the program's output lines and tool calls stream to it as progress notifications while it
runs: at most ``MAX_PROGRESS`` of them, through a bounded buffer, so a chatty program never
waits for a slow client.

This module is imported by the proxy tools at start-up, so it stays light: the engines load
on the first execution.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types

from mcpproxy.codemode.model import LANGUAGES, ExecutionRequest, ToolCallLog
from mcpproxy.gateway import CallContext, Gateway
from mcpproxy.settings import Settings

logger = logging.getLogger(__name__)

MAX_PROGRESS = 1000
"""Progress notifications one execution sends at most."""

PROGRESS_BUFFER = 256
"""Notifications waiting for a slow client at most; past this they are dropped."""

DESCRIPTION = """\
Run a short program that calls tools and get back only its result. Prefer it for work with \
several steps: find tools, call them, filter and join the results inside the program; \
intermediate results never enter your context.
In the program:
- call_tool("server:tool", {...args}) -> the tool's value (JSON parsed); raises ToolError when refused or failed
- call_tools([["server:tool", {...}], ...]) -> the values, run in parallel
- search_tools("what you need", limit=10) -> [{name, description, input_schema, function}]
- describe_tool("server:tool") -> the full schema and the typed function's signature
- tools.<server>.<tool>(...): typed functions made from the tool schemas, e.g. \
tools.memory.create_entities(entities=[...])
- input: the `input` argument.
Python ("python": a fast sandboxed subset; "python-full": CPython with the standard library): these are ordinary \
functions (no await); the value of the last expression (or of a variable named result) is returned; print() goes \
to stdout. TypeScript ("typescript", Deno): await callTool(...) / await tools.memory.read_graph({}); `return` \
the value; console.log goes to stdout.
Result: ok, value, stdout, stderr, error {type, message, line}, tool_calls [{name, duration_ms, ok}], duration_ms."""


def code_execution_tool(settings: Settings | None = None) -> types.Tool:
    """The tool definition (languages and limits from ``settings``, else the defaults)."""
    s = settings or Settings()
    from mcpproxy.codemode.model import enabled_languages

    languages = list(enabled_languages(s)) or list(LANGUAGES)
    return types.Tool(
        name="code_execution",
        title="Run a program that calls tools",
        description=DESCRIPTION,
        input_schema={
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "The program."},
                "language": {"type": "string", "enum": languages, "default": languages[0]},
                "input": {"description": "Any JSON value; the program reads it as `input`."},
                "timeout_ms": {
                    "type": "integer",
                    "minimum": 100,
                    "maximum": s.code_max_timeout_ms,
                    "default": s.code_timeout_ms,
                    "description": "Wall time for the whole program, tool calls included.",
                },
                "allowed_tools": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Only these tools may be called: 'server:tool' names and 'server:*' patterns.",
                },
                "max_tool_calls": {"type": "integer", "minimum": 0, "maximum": s.code_max_tool_calls},
                "tier": {
                    "type": "string",
                    "enum": ["read", "write", "destructive"],
                    "default": "destructive",
                    "description": "The highest tier of tool the program may call (read: read-only tools).",
                },
            },
            "required": ["code"],
        },
        annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True),
    )


Report = Callable[[float, float | None, str | None], Awaitable[None]]


class ProgressListener:
    """Turns output lines and tool calls into progress notifications (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._send, self.receive = anyio.create_memory_object_stream[str](PROGRESS_BUFFER)
        self.offered = 0
        self.dropped = 0

    def _offer(self, message: str) -> None:
        if self.offered >= MAX_PROGRESS:
            self.dropped += 1
            return
        self.offered += 1
        text = message if self.offered < MAX_PROGRESS else message + " (further progress is not streamed)"
        try:
            self._send.send_nowait(text)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.dropped += 1

    def line(self, stream: str, text: str) -> None:
        self._loop.call_soon_threadsafe(self._offer, f"{stream}: {text[:2000]}")

    def tool_call(self, call: ToolCallLog) -> None:
        status = "ok" if call.ok else f"failed ({call.error})"
        self._loop.call_soon_threadsafe(self._offer, f"tool {call.name} {status} in {call.duration_ms:.1f} ms")

    def close(self) -> None:
        self._send.close()


@asynccontextmanager
async def streaming(report: Report) -> AsyncIterator[ProgressListener]:
    """A listener whose messages go to ``report`` from a sender task, for the block."""
    listener = ProgressListener(asyncio.get_running_loop())

    done = anyio.Event()

    async def sender() -> None:
        count = 0
        try:
            async with listener.receive:
                async for message in listener.receive:
                    count += 1
                    try:
                        await report(float(count), None, message)
                    except Exception:  # the client went away: stop streaming, keep running
                        logger.debug("cannot send progress; the rest is dropped", exc_info=True)
                        return
        finally:
            done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(sender)
        try:
            yield listener
        finally:
            # Let callbacks scheduled from other threads land, then drain (bounded).
            await anyio.lowlevel.checkpoint()
            listener.close()
            with anyio.move_on_after(2.0):
                await done.wait()
            tg.cancel_scope.cancel()


async def handle(gw: Gateway, args: Mapping[str, Any], ctx: CallContext) -> types.CallToolResult:
    """The ``code_execution`` handler: run the program, stream progress when asked."""
    from mcpproxy.codemode.service import execute
    from mcpproxy.upstream import relay

    request = ExecutionRequest.from_args(args)
    target = relay.relay_target.get()
    if target is not None and target.progress:
        async with streaming(target.session.report_progress) as listener:
            result = await execute(gw, request, ctx, listener)
    else:
        result = await execute(gw, request, ctx)
    return result.to_call_result()
