"""The egress proxy on its own: matching, refusals, relaying — all on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import anyio.abc
import pytest

from mcpproxy.sandbox.base import EGRESS_DENIED_MARKER
from mcpproxy.sandbox.egress import DomainAllowList, EgressDecision, EgressProxy, _parse

pytestmark = pytest.mark.anyio


async def to_loopback(host: str, port: int) -> list[str]:
    """Test-only resolver: ``*.test`` is this machine, nothing else exists."""
    if host.endswith(".test"):
        return ["127.0.0.1"]
    raise OSError(f"{host} does not resolve in tests")


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello {self.path} host={self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def origin() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_allow_list_matching() -> None:
    allow = DomainAllowList(["api.example.com", "*.github.com", "203.0.113.7"])
    assert allow.allows("api.example.com")
    assert allow.allows("API.Example.com.")
    assert not allow.allows("example.com")
    assert not allow.allows("evil-api.example.com")
    assert not allow.allows("api.example.com.evil.test")
    assert allow.allows("raw.github.com")
    assert allow.allows("a.b.github.com")
    assert not allow.allows("github.com")  # *.suffix is sub-domains only
    assert not allow.allows("notgithub.com")
    assert allow.allows("203.0.113.7")
    assert not allow.allows("203.0.113.8")
    assert not allow.allows("[::1]")
    with pytest.raises(ValueError, match="invalid allowed domain"):
        DomainAllowList(["exa mple.com"])


def test_parse_rewrites_absolute_form_and_strips_proxy_headers() -> None:
    method, host, port, head = _parse(
        b"GET http://a.test:8080/x?y=1 HTTP/1.1\r\nHost: a.test:8080\r\nProxy-Authorization: secret\r\n"
        b"Proxy-Connection: keep-alive"
    )
    assert (method, host, port) == ("GET", "a.test", 8080)
    assert head.startswith(b"GET /x?y=1 HTTP/1.1\r\n")
    assert b"Proxy-Authorization" not in head
    assert head.endswith(b"Connection: close\r\n\r\n")
    assert _parse(b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: x")[1:3] == ("::1", 8443)


async def _ask(stream: anyio.abc.ByteStream, request: bytes) -> bytes:
    await stream.send(request)
    data = b""
    with anyio.fail_after(10):
        try:
            while True:
                data += await stream.receive()
        except anyio.EndOfStream:
            pass
    return data


async def test_proxy_relays_allowed_and_refuses_the_rest(origin: int) -> None:
    decisions: list[EgressDecision] = []
    proxy = EgressProxy(
        ["allowed.test"], unix=True, tcp=True, ports=None, resolver=to_loopback, allow_private=True,
        on_decision=decisions.append,
    )  # fmt: skip
    async with proxy:
        assert proxy.endpoint.unix_path is not None and proxy.endpoint.tcp_port is not None
        async with await anyio.connect_unix(proxy.endpoint.unix_path) as s:
            request = f"GET http://allowed.test:{origin}/page HTTP/1.1\r\nHost: allowed.test\r\n\r\n"
            reply = await _ask(s, request.encode())
        assert reply.startswith(b"HTTP/1.0 200") and b"hello /page" in reply
        async with await anyio.connect_tcp("127.0.0.1", proxy.endpoint.tcp_port) as s:
            await s.send(f"CONNECT allowed.test:{origin} HTTP/1.1\r\n\r\n".encode())
            with anyio.fail_after(10):
                assert (await s.receive()).startswith(b"HTTP/1.1 200 Connection Established")
            reply = await _ask(s, b"GET /tunnel HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n")
        assert b"hello /tunnel" in reply
        for request in (
            f"CONNECT denied.test:{origin} HTTP/1.1\r\n\r\n",
            f"CONNECT 127.0.0.1:{origin} HTTP/1.1\r\n\r\n",
            f"GET http://denied.test:{origin}/ HTTP/1.1\r\n\r\n",
        ):
            async with await anyio.connect_unix(proxy.endpoint.unix_path) as s:
                reply = await _ask(s, request.encode())
            assert reply.startswith(b"HTTP/1.1 403"), reply
            assert EGRESS_DENIED_MARKER.encode() in reply
        async with await anyio.connect_unix(proxy.endpoint.unix_path) as s:
            reply = await _ask(s, b"GET /relative HTTP/1.1\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 400")
    assert [(d.host, d.allowed) for d in decisions] == [
        ("allowed.test", True),
        ("allowed.test", True),
        ("denied.test", False),
        ("127.0.0.1", False),
        ("denied.test", False),
    ]


async def test_proxy_refuses_listed_names_that_resolve_to_private_addresses(origin: int) -> None:
    """DNS rebinding: a listed name pointing at loopback (the gateway's own port) is refused."""
    async with EgressProxy(["allowed.test"], ports=None, resolver=to_loopback) as proxy:
        assert proxy.endpoint.unix_path is not None
        async with await anyio.connect_unix(proxy.endpoint.unix_path) as s:
            reply = await _ask(s, f"CONNECT allowed.test:{origin} HTTP/1.1\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 403")
    assert b"non-public" in reply


async def test_proxy_refuses_ports_not_listed(origin: int) -> None:
    async with EgressProxy(["allowed.test"], resolver=to_loopback, allow_private=True) as proxy:
        assert proxy.endpoint.unix_path is not None
        async with await anyio.connect_unix(proxy.endpoint.unix_path) as s:
            reply = await _ask(s, f"CONNECT allowed.test:{origin} HTTP/1.1\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 403")
    assert f"port {origin} is not allowed".encode() in reply


async def test_proxy_closes_idle_tunnels_and_cleans_up(origin: int) -> None:
    proxy = EgressProxy(["allowed.test"], ports=None, resolver=to_loopback, allow_private=True, idle_timeout=0.3)
    async with proxy:
        assert proxy.endpoint.unix_path is not None
        path = proxy.endpoint.unix_path
        async with await anyio.connect_unix(path) as s:
            await s.send(f"CONNECT allowed.test:{origin} HTTP/1.1\r\n\r\n".encode())
            with anyio.fail_after(10):
                assert (await s.receive()).startswith(b"HTTP/1.1 200")
                with pytest.raises(anyio.EndOfStream):
                    await s.receive()  # the idle watchdog closes the tunnel
    assert not await anyio.Path(path).exists()
