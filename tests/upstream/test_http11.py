"""``LeanTransport`` against real servers: uvicorn (what FastMCP upstreams run) and raw TCP peers
that answer the odd ways a real server may (ended by closing, byte by byte, garbage, a closed
keep-alive connection). The SDK's streamable HTTP client runs over it in every HTTP upstream
test of the suite; these pin the transport's own contract."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from tests.support.net import free_port, wait_port

from mcpproxy.upstream.http11 import LeanTransport

pytestmark = pytest.mark.anyio

BIG = 50 * 1024 * 1024


def app(release: anyio.Event) -> Starlette:
    async def echo(request: Request) -> Response:
        body = await request.body()
        return JSONResponse({"method": request.method, "size": len(body), "head": body[:20].decode(),
                             "token": request.headers.get("x-token")})

    async def chunked(request: Request) -> Response:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(5):
                yield f"part{i};".encode()

        return StreamingResponse(parts(), media_type="text/plain")

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            yield b"data: first\n\n"
            await release.wait()  # the second event only after the client has seen the first
            yield b"data: second\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def slow(request: Request) -> Response:
        await anyio.sleep(30)
        return JSONResponse({})

    async def big(request: Request) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            block = b"x" * (1024 * 1024)
            for _ in range(BIG // len(block)):
                yield block

        return StreamingResponse(stream(), media_type="application/octet-stream")

    return Starlette(routes=[
        Route("/echo", echo, methods=["GET", "POST", "DELETE"]),
        Route("/chunked", chunked),
        Route("/events", events),
        Route("/slow", slow),
        Route("/big", big),
    ])


@asynccontextmanager
async def uvicorn_server() -> AsyncIterator[tuple[str, anyio.Event]]:
    release = anyio.Event()
    port = free_port()
    config = uvicorn.Config(app(release), host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        await wait_port("127.0.0.1", port)
        try:
            yield f"http://127.0.0.1:{port}", release
        finally:
            server.should_exit = True


Handler = Callable[[anyio.abc.SocketStream], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler, host: str = "127.0.0.1") -> AsyncIterator[tuple[str, list[int]]]:
    """A TCP peer on ``host`` running ``handler`` per connection; yields its URL and a connection counter."""
    accepted: list[int] = []

    async def serve(stream: anyio.abc.SocketStream) -> None:
        accepted.append(1)
        async with stream:
            await handler(stream)

    listener = await anyio.create_tcp_listener(local_host=host, local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 (anyio, not Django)
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, serve)
        try:
            yield f"http://{authority}", accepted
        finally:
            tg.cancel_scope.cancel()


async def read_request(stream: anyio.abc.SocketStream) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    length = lengths[0] if lengths else 0
    while len(body) < length:
        body += await stream.receive()
    return head


def client(transport: LeanTransport, **kwargs: object) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=transport, **kwargs)  # type: ignore[arg-type]


async def test_requests_reuse_one_kept_alive_connection_and_carry_their_bodies() -> None:
    transport = LeanTransport()
    async with uvicorn_server() as (base, _), client(transport, headers={"x-token": "t1"}) as http:
        for i in range(20):
            answer = await http.post(base + "/echo", content=f"body number {i}".encode())
            assert answer.json() == {"method": "POST", "size": len(f"body number {i}"), "head": f"body number {i}",
                                     "token": "t1"}
        assert (await http.get(base + "/echo")).json()["method"] == "GET"
        assert (await http.delete(base + "/echo")).json()["method"] == "DELETE"
    assert transport.opened == 1


async def test_concurrent_requests_each_get_their_own_answer() -> None:
    transport = LeanTransport()
    async with uvicorn_server() as (base, _), client(transport) as http:
        answers: dict[int, int] = {}

        async def one(i: int) -> None:
            answers[i] = (await http.post(base + "/echo", content=b"y" * i)).json()["size"]

        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(one, i)
        assert answers == {i: i for i in range(30)}
        opened = transport.opened
        assert 1 <= opened <= 30
        for _ in range(10):  # afterwards the idle connections serve again
            await http.post(base + "/echo", content=b"z")
        assert transport.opened == opened


async def test_a_streamed_request_body_goes_chunked_and_arrives_whole() -> None:
    async def body() -> AsyncIterator[bytes]:
        for i in range(100):
            yield f"{i:04d}".encode() * 250

    async with uvicorn_server() as (base, _), client(LeanTransport()) as http:
        answer = await http.post(base + "/echo", content=body())
        assert answer.json()["size"] == 100 * 1000
        assert answer.json()["head"] == "0000" * 5


async def test_chunked_answers_and_event_streams_arrive_as_they_are_sent() -> None:
    async with uvicorn_server() as (base, release), client(LeanTransport()) as http:
        assert (await http.get(base + "/chunked")).text == "part0;part1;part2;part3;part4;"
        async with http.stream("GET", base + "/events") as answer:
            assert answer.headers["content-type"].startswith("text/event-stream")
            lines = answer.aiter_lines()
            assert await anext(lines) == "data: first"  # before the server may send the second
            release.set()
            rest = [line async for line in lines if line]
        assert rest == ["data: second"]


async def test_a_50_mb_answer_streams_through() -> None:
    async with uvicorn_server() as (base, _), client(LeanTransport()) as http:
        size = 0
        async with http.stream("GET", base + "/big") as answer:
            async for chunk in answer.aiter_raw():
                size += len(chunk)
        assert size == BIG
        assert (await http.post(base + "/echo", content=b"after")).json()["size"] == 5


async def test_an_answer_closed_early_is_not_reused_and_the_next_request_is_served() -> None:
    transport = LeanTransport()
    async with uvicorn_server() as (base, _), client(transport) as http:
        async with http.stream("GET", base + "/big") as answer:
            await anext(answer.aiter_raw())
        assert (await http.post(base + "/echo", content=b"next")).json()["size"] == 4
    assert transport.opened == 2


async def test_a_slow_answer_is_a_read_timeout_and_a_cancelled_request_frees_its_connection() -> None:
    transport = LeanTransport()
    async with uvicorn_server() as (base, _), client(transport, timeout=httpx2.Timeout(5, read=0.3)) as http:
        with pytest.raises(httpx2.ReadTimeout):
            await http.get(base + "/slow")
        with anyio.move_on_after(0.3):
            await http.get(base + "/slow", timeout=30)
        assert (await http.post(base + "/echo", content=b"ok")).json()["size"] == 2
    assert transport.opened == 3  # neither interrupted connection was used again


async def test_an_answer_ended_by_closing_the_connection_is_read_to_the_end() -> None:
    async def handler(stream: anyio.abc.SocketStream) -> None:
        await read_request(stream)
        await stream.send(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n")
        await stream.send(b'{"whole":')
        await stream.send(b'"yes"}')

    transport = LeanTransport()
    async with raw_server(handler) as (base, accepted), client(transport) as http:
        assert (await http.get(base)).json() == {"whole": "yes"}
        assert (await http.get(base)).json() == {"whole": "yes"}
    assert accepted == [1, 1]


async def test_an_answer_that_arrives_byte_by_byte_is_parsed() -> None:
    answer = b"HTTP/1.1 201 Created\r\nx-tag: a\r\nx-tag: b\r\ncontent-length: 11\r\n\r\nhello world"

    async def handler(stream: anyio.abc.SocketStream) -> None:
        while True:
            await read_request(stream)
            for i in range(len(answer)):
                await stream.send(answer[i : i + 1])

    transport = LeanTransport()
    async with raw_server(handler) as (base, accepted), client(transport) as http:
        for _ in range(3):
            got = await http.get(base)
            assert (got.status_code, got.reason_phrase, got.text) == (201, "Created", "hello world")
            assert got.headers.get_list("x-tag") == ["a", "b"]
    assert accepted == [1]


async def test_a_connection_the_server_closed_while_idle_is_not_written_to() -> None:
    async def handler(stream: anyio.abc.SocketStream) -> None:
        await read_request(stream)
        await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        # keep-alive was implied, but the server closes the connection right after (as on idle expiry)

    transport = LeanTransport()
    async with raw_server(handler) as (base, accepted), client(transport) as http:
        assert (await http.get(base)).text == "ok"
        await anyio.sleep(0.1)  # the close reaches us
        assert (await http.get(base)).text == "ok"
    assert accepted == [1, 1]


async def test_garbage_a_silent_close_and_a_refused_port_are_httpx_errors() -> None:
    async def garbage(stream: anyio.abc.SocketStream) -> None:
        await read_request(stream)
        await stream.send(b"NOT HTTP AT ALL\r\n\r\n")

    async def silent(stream: anyio.abc.SocketStream) -> None:
        await read_request(stream)

    async def cut(stream: anyio.abc.SocketStream) -> None:
        await read_request(stream)
        await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")

    async with client(LeanTransport()) as http:
        async with raw_server(garbage) as (base, _):
            with pytest.raises(httpx2.RemoteProtocolError, match="malformed"):
                await http.get(base)
        async with raw_server(silent) as (base, _):
            with pytest.raises(httpx2.RemoteProtocolError, match="without answering"):
                await http.get(base)
        async with raw_server(cut) as (base, _):
            with pytest.raises(httpx2.RemoteProtocolError, match="before the end"):
                await http.get(base)
        with pytest.raises(httpx2.ConnectError):
            await http.get(f"http://127.0.0.1:{free_port()}/")


async def test_https_and_head_requests_go_to_the_fallback_transport() -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(f"{request.method} {request.url}")
        return httpx2.Response(204)

    transport = LeanTransport(fallback=httpx2.MockTransport(handler))
    async with client(transport) as http:
        assert (await http.get("https://example.test/mcp")).status_code == 204
        assert (await http.head("http://example.test/mcp")).status_code == 204
    assert seen == ["GET https://example.test/mcp", "HEAD http://example.test/mcp"]
    assert transport.opened == 0


async def test_an_ipv6_loopback_upstream_is_reached() -> None:
    async def handler(stream: anyio.abc.SocketStream) -> None:
        while True:
            head = await read_request(stream)
            hosts = [line for line in head.split(b"\r\n") if line.lower().startswith(b"host:")]
            body = hosts[0].split(b":", 1)[1].strip()
            await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body))

    transport = LeanTransport()
    async with raw_server(handler, host="::1") as (base, accepted), client(transport) as http:
        for _ in range(2):
            answer = await http.get(base + "/mcp")
            assert "http://" + answer.text == base  # the Host header names the IPv6 authority
    assert accepted == [1]
