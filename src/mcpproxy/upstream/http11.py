"""A lean HTTP/1.1 transport for plain-``http`` upstreams, under the SDK's ``httpx2`` client.

The SDK's streamable HTTP client keeps doing the protocol (sessions, SSE, redirects within the
origin, auth): only the bytes on the wire change hands. ``httpx2``'s default transport
(``httpcore2`` over the pure-Python ``h11`` parser, with ``anyio`` locks and shields around
every step) cost 2.2 ms of CPU per small request on the machine of ``docs/benchmarks.md``;
the same client over this transport costs 0.9 ms. It writes each request in one send and parses
answers with ``httptools`` (llhttp, in C; uvicorn's parser, already a dependency), on kept-alive
``anyio`` socket streams.

What it takes: ``http://`` requests other than ``HEAD`` and ``CONNECT``. Everything else
(``https``, those two methods) goes to ``httpx2``'s own transport, unchanged; proxies from the
environment never reach it either, because ``httpx2`` routes a proxied URL to its proxy mount
first.

Connections: one request at a time per connection (no pipelining); a connection returns to its
origin's idle list when its answer was read to the end and both sides keep it alive; an answer
closed early, a cancelled request or any error closes it instead. An idle connection is dropped
after ``IDLE_EXPIRY`` seconds (servers close theirs after about five: uvicorn's default) or when
its socket has become readable (the server closed it, or sent bytes nobody asked for), so a stale
connection is never written to. Errors are ``httpx2``'s own (``ConnectError``, ``ReadTimeout``,
``RemoteProtocolError``...), which is what the SDK already handles.
"""

from __future__ import annotations

import select
import time
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, nullcontext
from typing import Final

import anyio
import anyio.abc
import httptools
import httpx2

IDLE_EXPIRY: Final = 4.0
"""Seconds an idle connection is kept (under uvicorn's 5 s keep-alive, so we close first)."""
MAX_IDLE: Final = 32
"""Idle connections kept per origin; more are closed when their answer ends."""
READ_SIZE: Final = 64 * 1024
LEAN_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

Origin = tuple[str, int]


def _deadline(seconds: float | None) -> AbstractContextManager[object]:
    return anyio.fail_after(seconds) if seconds is not None else nullcontext()


class _Connection:
    """One kept-alive socket and the parser of the answer being read on it."""

    def __init__(self, origin: Origin, stream: anyio.abc.SocketStream) -> None:
        self.origin = origin
        self.stream = stream
        self.idle_since = 0.0
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = False
        self.chunks: list[bytes] = []
        self.complete = False
        self.keep_alive = False
        self.upgrade = False
        self._interim = False

    # httptools callbacks
    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # an interim answer (100 Continue): wait for the real one
            self._interim = True
            self.reason = b""
            self.headers = []
            return
        self.status = status
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it once the message is over

    # I/O
    def stale(self, now: float) -> bool:
        """Whether this idle connection must not be reused (expired, or the peer spoke or left)."""
        if now - self.idle_since > IDLE_EXPIRY:
            return True
        try:
            fd = self.stream.extra(anyio.abc.SocketAttribute.raw_socket).fileno()  # noqa: S610 (anyio, not Django)
            if hasattr(select, "poll"):  # no limit on descriptor numbers (select stops at 1024)
                poller = select.poll()
                poller.register(fd, select.POLLIN)
                return bool(poller.poll(0))
            readable, _, _ = select.select([fd], [], [], 0)
        except (OSError, ValueError, anyio.TypedAttributeLookupError):
            return True
        return bool(readable)

    async def send(self, request: httpx2.Request, within: float | None) -> None:
        target = request.url.raw_path
        head = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            head += (name, b": ", value, b"\r\n")
        head.append(b"\r\n")
        chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
        data = b"".join(head)
        with _deadline(within):
            async for part in request.stream:  # type: ignore[union-attr]
                if not part:
                    continue
                data += b"%x\r\n%b\r\n" % (len(part), part) if chunked else part
                if len(data) >= READ_SIZE:
                    await self.stream.send(data)
                    data = b""
            if chunked:
                data += b"0\r\n\r\n"
            await self.stream.send(data)

    async def feed(self, within: float | None) -> bool:
        """Read once (within ``within`` seconds, httpx2's read timeout) and parse; ``False`` at the end."""
        with _deadline(within):
            try:
                data = await self.stream.receive(READ_SIZE)
            except anyio.EndOfStream:
                return False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # not HTTP any more: end here, never reuse
            self.upgrade = self.head_done = self.complete = True
        except httptools.HttpParserError as exc:
            raise httpx2.RemoteProtocolError(f"malformed HTTP answer from the upstream: {exc}") from exc
        return True

    def ends_by_close(self) -> bool:
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            await self.stream.aclose()


class _Body(httpx2.AsyncByteStream):
    """The body of one answer, read as the caller iterates; the connection goes back when done."""

    def __init__(self, transport: LeanTransport, conn: _Connection, request: httpx2.Request, read: float | None):
        self._transport = transport
        self._conn = conn
        self._request = request
        self._read = read
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        try:
            while True:
                if conn.chunks:
                    chunks, conn.chunks = conn.chunks, []
                    for chunk in chunks:
                        yield chunk
                    continue
                if conn.complete:
                    break
                if not await _read(conn, self._request, self._read):
                    if conn.ends_by_close():  # the end of the stream is the end of this answer
                        conn.complete = True
                        await conn.aclose()
                        continue
                    raise httpx2.RemoteProtocolError(
                        "the upstream closed the connection before the end of its answer", request=self._request
                    )
        except GeneratorExit:  # iteration abandoned: ``aclose`` (httpx2 calls it) closes the connection
            raise
        except BaseException:
            await conn.aclose()
            raise
        self._done = True
        await self._transport._release(conn)

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            await self._conn.aclose()


async def _read(conn: _Connection, request: httpx2.Request, within: float | None) -> bool:
    try:
        return await conn.feed(within)
    except TimeoutError as exc:
        raise httpx2.ReadTimeout("the upstream did not answer in time", request=request) from exc
    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        raise httpx2.ReadError(f"reading from the upstream failed: {exc}", request=request) from exc


class LeanTransport(httpx2.AsyncBaseTransport):
    """``httpx2`` transport: plain ``http`` on kept-alive sockets, the rest through ``fallback``."""

    def __init__(self, fallback: httpx2.AsyncBaseTransport | None = None) -> None:
        self._fallback = fallback or httpx2.AsyncHTTPTransport()
        self._idle: dict[Origin, list[_Connection]] = {}
        self._closed = False
        self.opened = 0
        """Connections opened so far (for tests and diagnostics)."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        if url.scheme != "http" or request.method not in LEAN_METHODS or self._closed:
            return await self._fallback.handle_async_request(request)
        timeouts = request.extensions.get("timeout", {})
        conn = await self._checkout((url.host, url.port or 80), request, timeouts.get("connect"))
        try:
            try:
                await conn.send(request, timeouts.get("write"))
            except TimeoutError as exc:
                raise httpx2.WriteTimeout("sending to the upstream took too long", request=request) from exc
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                raise httpx2.WriteError(f"sending to the upstream failed: {exc}", request=request) from exc
            while not conn.head_done:
                if not await _read(conn, request, timeouts.get("read")):
                    raise httpx2.RemoteProtocolError(
                        "the upstream closed the connection without answering", request=request
                    )
        except BaseException:
            await conn.aclose()
            raise
        reason = conn.reason.decode("ascii", errors="replace")
        return httpx2.Response(
            conn.status,
            headers=conn.headers,
            stream=_Body(self, conn, request, timeouts.get("read")),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason.encode()},
        )

    async def _checkout(self, origin: Origin, request: httpx2.Request, within: float | None) -> _Connection:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.stale(now):
                conn._reset()
                return conn
            await conn.aclose()
        try:
            with _deadline(within):
                stream = await anyio.connect_tcp(origin[0], origin[1])
        except TimeoutError as exc:
            raise httpx2.ConnectTimeout(f"connecting to {origin[0]}:{origin[1]} timed out", request=request) from exc
        except OSError as exc:
            raise httpx2.ConnectError(f"cannot connect to {origin[0]}:{origin[1]}: {exc}", request=request) from exc
        self.opened += 1
        return _Connection(origin, stream)

    async def _release(self, conn: _Connection) -> None:
        if conn.closed:
            return
        if self._closed or conn.upgrade or not conn.keep_alive:
            await conn.aclose()
            return
        idle = self._idle.setdefault(conn.origin, [])
        if len(idle) >= MAX_IDLE:
            await conn.aclose()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                await conn.aclose()
        await self._fallback.aclose()
