"""The egress proxy: an HTTP CONNECT (and plain HTTP) proxy that only reaches listed domains.

Design. A sandbox with ``network=allow`` has no route out; its only way to the network is
this proxy. Bubblewrap sandboxes reach it through a Unix socket bound into the sandbox
(the launcher's forwarder exposes it as ``127.0.0.1:3128`` inside, and ``HTTP(S)_PROXY``
point there); the landlock backend, which shares the host's network namespace, reaches it
on a TCP port of 127.0.0.1, the only TCP port its Landlock rules let it connect to.

The decision is made on the name the client asks for, before any DNS: exact names, and
``*.suffix`` for every sub-domain of ``suffix`` (not ``suffix`` itself). IP literals are
refused unless listed exactly. After resolution, addresses that are not globally routable
(loopback, private, link-local — the gateway's own port, cloud metadata, the LAN) are
refused unless ``allow_private`` is set, so a listed name that resolves (or is rebound)
to an internal address does not open a way in. Resolution goes through a ``Resolver``
hook; tests use it to map ``*.test`` names to 127.0.0.1, production uses the system's.

Everything is bounded: the request head (16 KiB, 10 s), connects (10 s), idle relays (5 min
without a byte in either direction), and concurrent connections (64; more get 503). Every
refusal carries ``EGRESS_DENIED_MARKER`` so ``explain_exit`` can recognise it in a server's
stderr, and every decision is reported to ``on_decision`` for the audit log.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import anyio
import anyio.abc
from anyio.streams.stapled import MultiListener

from mcpproxy.sandbox.base import EGRESS_DENIED_MARKER, EgressEndpoint, is_valid_domain

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``resolve(host, port)`` -> IP addresses to try, in order."""

MAX_HEAD = 16 * 1024
HEAD_TIMEOUT = 10.0
CONNECT_TIMEOUT = 10.0
IDLE_TIMEOUT = 300.0
MAX_CONNECTIONS = 64
DEFAULT_PORTS = (80, 443)
_HOP_HEADERS = frozenset({"proxy-connection", "proxy-authorization", "connection", "keep-alive"})


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """Resolve with the system's resolver (``getaddrinfo``), TCP addresses only."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class EgressDecision:
    """One request's outcome, for the audit log."""

    host: str
    port: int
    allowed: bool
    reason: str


class DomainAllowList:
    """Matches host names against ``example.com`` / ``*.example.com`` entries and IP literals.

    Args:
        domains: Entries as in ``SandboxPolicy.allowed_domains``.

    Raises:
        ValueError: An entry is not a valid domain, wildcard or IP literal.
    """

    def __init__(self, domains: Iterable[str]) -> None:
        self.exact: set[str] = set()
        self.suffixes: list[str] = []
        self.ips: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
        for entry in domains:
            name = normalise_host(entry)
            if not is_valid_domain(name):
                raise ValueError(f"invalid allowed domain: {entry!r}")
            ip = _as_ip(name)
            if ip is not None:
                self.ips.add(ip)
            elif name.startswith("*."):
                self.suffixes.append(name[1:])
            else:
                self.exact.add(name)

    def allows(self, host: str) -> bool:
        """Whether ``host`` (a name or IP literal, as the client sent it) is listed."""
        name = normalise_host(host)
        ip = _as_ip(name)
        if ip is not None:
            return ip in self.ips
        return name in self.exact or any(name.endswith(s) and len(name) > len(s) for s in self.suffixes)

    def lists_ip(self, address: str) -> bool:
        ip = _as_ip(address)
        return ip is not None and ip in self.ips


def normalise_host(host: str) -> str:
    """Lower-case, no trailing dot, no IPv6 brackets."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def _as_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class EgressProxy:
    """An allow-listing HTTP proxy, run as an async context manager.

    Args:
        allowed_domains: Hosts the sandbox may reach (see ``DomainAllowList``).
        unix_path: Unix socket to listen on; a fresh private one when ``None`` and ``unix``.
        unix: Listen on a Unix socket (for bubblewrap sandboxes).
        tcp: Also listen on an ephemeral port of 127.0.0.1 (for the landlock backend).
        ports: Destination ports allowed; ``None`` allows any.
        resolver: Name resolution hook (default: the system's).
        allow_private: Allow destinations that resolve to non-global addresses.
        on_decision: Called with every allow/deny decision.
        connect_timeout: Seconds to connect upstream.
        idle_timeout: Seconds a relayed connection may stay silent in both directions.
        max_connections: Concurrent connections; more are answered 503.
    """

    def __init__(
        self,
        allowed_domains: Iterable[str],
        *,
        unix_path: str | None = None,
        unix: bool = True,
        tcp: bool = False,
        ports: Sequence[int] | None = DEFAULT_PORTS,
        resolver: Resolver | None = None,
        allow_private: bool = False,
        on_decision: Callable[[EgressDecision], None] | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.allow = DomainAllowList(allowed_domains)
        self._unix_path = unix_path
        self._unix = unix or unix_path is not None
        self._tcp = tcp
        self._ports = frozenset(ports) if ports is not None else None
        self._resolve = resolver or system_resolver
        self._allow_private = allow_private
        self._on_decision = on_decision
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._limiter = anyio.CapacityLimiter(max_connections)
        self._tmpdir: str | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._listeners: list[anyio.abc.Listener[anyio.abc.SocketStream]] = []
        self.endpoint = EgressEndpoint()

    async def __aenter__(self) -> Self:
        unix_path: str | None = None
        tcp_port: int | None = None
        if self._unix:
            if self._unix_path is None:
                self._tmpdir = tempfile.mkdtemp(prefix="mcpproxy-egress-")
                self._unix_path = os.path.join(self._tmpdir, "egress.sock")
            unix_path = self._unix_path
            self._listeners.append(await anyio.create_unix_listener(unix_path, mode=0o600))
        if self._tcp:
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
            tcp_port = int(listener.extra(anyio.abc.SocketAttribute.local_port))  # noqa: S610 - anyio, not Django
            self._listeners.append(listener)
        if not self._listeners:
            raise ValueError("the egress proxy needs a Unix socket, a TCP port, or both")
        self.endpoint = EgressEndpoint(unix_path=unix_path, tcp_port=tcp_port)
        # MultiListener takes over (and empties) nested listeners: from here on close it alone.
        combined = MultiListener(self._listeners)
        self._listeners = [combined]
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(combined.serve, self._handle)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        try:
            if self._tg is not None:
                self._tg.cancel_scope.cancel()
                return await self._tg.__aexit__(exc_type, exc, tb)
            return None
        finally:
            for listener in self._listeners:
                with anyio.CancelScope(shield=True):
                    await listener.aclose()
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)

    def _decide(self, host: str, port: int, allowed: bool, reason: str) -> None:
        if self._on_decision is not None:
            self._on_decision(EgressDecision(host, port, allowed, reason))

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            try:
                self._limiter.acquire_nowait()
            except anyio.WouldBlock:
                await _refuse(client, 503, "too many connections")
                return
            try:
                await self._serve(client)
            finally:
                self._limiter.release()

    async def _serve(self, client: anyio.abc.SocketStream) -> None:
        try:
            head, rest = await _read_head(client)
        except (_Refused, anyio.EndOfStream, anyio.BrokenResourceError, TimeoutError, OSError):
            return
        try:
            method, host, port, forward_head = _parse(head)
        except _Refused as refused:
            await _refuse(client, refused.status, refused.reason)
            return
        try:
            upstream = await self._open(host, port)
        except _Refused as refused:
            self._decide(host, port, False, refused.reason)
            await _refuse(client, refused.status, f"{host}:{port} ({refused.reason})")
            return
        self._decide(host, port, True, "listed")
        async with upstream:
            try:
                if method == "CONNECT":
                    await client.send(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                else:
                    await upstream.send(forward_head)
                if rest:
                    await upstream.send(rest)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                return
            await self._relay(client, upstream)

    async def _open(self, host: str, port: int) -> anyio.abc.SocketStream:
        if self._ports is not None and port not in self._ports:
            raise _Refused(403, f"port {port} is not allowed")
        if not self.allow.allows(host):
            reason = "IP literals must be listed" if _as_ip(normalise_host(host)) else "host is not in the allow-list"
            raise _Refused(403, reason)
        name = normalise_host(host)
        try:
            with anyio.fail_after(self._connect_timeout):
                addresses = list(await self._resolve(name, port))
        except (OSError, TimeoutError) as exc:
            raise _Refused(502, f"cannot resolve: {exc}") from exc
        if not self._allow_private:
            addresses = [a for a in addresses if self.allow.lists_ip(a) or _is_global(a)]
            if not addresses:
                raise _Refused(403, "resolves only to non-public addresses")
        last: Exception | None = None
        for address in addresses:
            try:
                with anyio.fail_after(self._connect_timeout):
                    return await anyio.connect_tcp(address, port)
            except (OSError, TimeoutError) as exc:
                last = exc
        raise _Refused(502, f"cannot connect: {last}")

    async def _relay(self, a: anyio.abc.SocketStream, b: anyio.abc.SocketStream) -> None:
        last = [anyio.current_time()]

        async def pipe(src: anyio.abc.SocketStream, dst: anyio.abc.SocketStream) -> None:
            try:
                while True:
                    data = await src.receive(65536)
                    last[0] = anyio.current_time()
                    await dst.send(data)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                await dst.send_eof()

        async with anyio.create_task_group() as tg:

            async def watchdog() -> None:
                while True:
                    await anyio.sleep(max(0.05, last[0] + self._idle_timeout - anyio.current_time()))
                    if anyio.current_time() - last[0] >= self._idle_timeout:
                        tg.cancel_scope.cancel()
                        return

            async def both() -> None:
                async with anyio.create_task_group() as pipes:
                    pipes.start_soon(pipe, a, b)
                    pipes.start_soon(pipe, b, a)
                tg.cancel_scope.cancel()

            tg.start_soon(watchdog)
            tg.start_soon(both)


def _is_global(address: str) -> bool:
    ip = _as_ip(address.split("%", 1)[0])
    return ip is not None and ip.is_global


async def _read_head(client: anyio.abc.SocketStream) -> tuple[bytes, bytes]:
    buf = b""
    with anyio.fail_after(HEAD_TIMEOUT):
        while b"\r\n\r\n" not in buf:
            if len(buf) > MAX_HEAD:
                raise _Refused(431, "request head too large")
            buf += await client.receive(4096)
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def _split_host_port(authority: str, default_port: int) -> tuple[str, int]:
    if authority.startswith("["):
        host, _, tail = authority[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    elif authority.count(":") == 1:
        host, _, port_text = authority.partition(":")
    else:
        host, port_text = authority, ""
    try:
        port = int(port_text) if port_text else default_port
    except ValueError as exc:
        raise _Refused(400, "bad port") from exc
    if not host or not 0 < port < 65536:
        raise _Refused(400, "bad host or port")
    return host, port


def _parse(head: bytes) -> tuple[str, str, int, bytes]:
    """``(method, host, port, head to send upstream)`` for CONNECT or an absolute-form request."""
    try:
        text = head.decode("latin-1")
        request_line, *header_lines = text.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError as exc:
        raise _Refused(400, "malformed request") from exc
    if not version.startswith("HTTP/1."):
        raise _Refused(400, "only HTTP/1.x is spoken here")
    if method == "CONNECT":
        host, port = _split_host_port(target, 443)
        return method, host, port, b""
    if not target.lower().startswith("http://"):
        raise _Refused(400, "plain requests must use an absolute http:// URL")
    rest = target[7:]
    authority, _, path = rest.partition("/")
    host, port = _split_host_port(authority, 80)
    lines = [f"{method} /{path} {version}"]
    lines += [h for h in header_lines if h.split(":", 1)[0].strip().lower() not in _HOP_HEADERS]
    lines.append("Connection: close")
    return method, host, port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _refuse(client: anyio.abc.SocketStream, status: int, detail: str) -> None:
    titles = {400: "Bad Request", 403: "Forbidden", 431: "Request Header Fields Too Large", 502: "Bad Gateway",
              503: "Service Unavailable"}  # fmt: skip
    marker = EGRESS_DENIED_MARKER if status == 403 else "mcpproxy sandbox: egress failed"
    body = f"{marker}: {detail}\n".encode()
    head = (
        f"HTTP/1.1 {status} {titles.get(status, 'Error')}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nX-Mcpproxy-Egress: denied\r\n\r\n"
    )
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await client.send(head.encode() + body)
