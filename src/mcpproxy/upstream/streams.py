"""A read stream that tells when the upstream connection ended.

The SDK's client dispatcher ends its receive loop quietly at end of stream (a stdio server
that exited, an SSE stream that closed). The pool needs to know at once to reconnect, so
the transport's read stream is wrapped: the first end-of-stream, close or transport
exception calls ``on_end`` once while passing everything through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

import anyio
from mcp.shared._stream_protocols import ReadStream
from mcp.shared.message import SessionMessage


class WatchedReadStream:
    """Wraps a transport read stream; ``on_end`` is called once when the stream ends."""

    def __init__(self, inner: ReadStream[SessionMessage | Exception], on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end
        self._ended = False
        self.last_error: Exception | None = None

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._on_end()

    @property
    def last_context(self) -> object:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            item = await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._end()
            raise
        if isinstance(item, Exception):
            self.last_error = item
        return item

    async def aclose(self) -> None:
        self._end()
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        return None
