"""Reading a stdio server's output line by line in linear time, whatever the size of a line.

The MCP SDK's stdio client splits its input with ``(buffer + chunk).split("\\n")`` for every
chunk it reads (64 KiB at most). A message of N bytes on one line is N / 64 KiB chunks, each
copying and scanning the whole buffer so far: quadratic. A 20 MB tool result took 40 s of one
core, 50 MB several minutes, during which every other call to that server waited.

:class:`LineChunks` is a drop-in for the ``TextReceiveStream`` the SDK wraps around the child's
stdout: it keeps partial lines in a list and hands the SDK only text that ends at a line
boundary, so the SDK's buffer never grows and every byte is scanned a constant number of times.
:func:`install` points the SDK's stdio client at it (idempotent; called by the transports).
"""

from __future__ import annotations

from typing import Any

import anyio
from anyio.abc import ByteReceiveStream
from anyio.streams.text import TextReceiveStream


class LineChunks:
    """Text from ``transport_stream``, yielded in pieces that each end with a newline (but the last).

    Args:
        transport_stream: The child's stdout.
        encoding: Text encoding.
        errors: What to do with bytes that do not decode (``strict``, ``replace``, ``ignore``).
    """

    def __init__(self, transport_stream: ByteReceiveStream, encoding: str = "utf-8", errors: str = "strict") -> None:
        self._inner = TextReceiveStream(transport_stream, encoding=encoding, errors=errors)
        self._parts: list[str] = []

    async def receive(self) -> str:
        while True:
            try:
                chunk = await self._inner.receive()
            except anyio.EndOfStream:
                if self._parts:
                    rest, self._parts = "".join(self._parts), []
                    return rest
                raise
            cut = chunk.rfind("\n")
            if cut < 0:
                self._parts.append(chunk)
                continue
            self._parts.append(chunk[: cut + 1])
            complete = "".join(self._parts)
            self._parts = [chunk[cut + 1 :]] if cut + 1 < len(chunk) else []
            return complete

    def __aiter__(self) -> LineChunks:
        return self

    async def __anext__(self) -> str:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._inner.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def install() -> None:
    """Make the SDK's stdio client read through :class:`LineChunks`."""
    import mcp.client.stdio as sdk_stdio

    if getattr(sdk_stdio, "TextReceiveStream", None) is not LineChunks:
        sdk_stdio.TextReceiveStream = LineChunks  # type: ignore[attr-defined,assignment]
