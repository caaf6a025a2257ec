"""Load and overhead of mcpproxy, side by side with direct calls and with a peer proxy, in one run.

    python bench/load.py [--calls 2000] [--levels 1,10,50] [--no-peer] [--markdown]

Starts real processes: a FastMCP upstream (``tests/fixtures/notes_server.py``) over streamable
HTTP; ``mcpproxy serve`` in front of it and of the same server over stdio; and FastMCP's
``create_proxy`` (a peer) in front of the HTTP upstream. Then, with the same client code for
every path, it measures ``tools/call add``:

* stateless era (2026-07-28): one raw HTTP POST per call (``httpx2``, keep-alive);
* handshake era (2025-11-25): the SDK's ``Client`` (one session, reused);
* stdio upstream: the SDK client on stdio directly, against mcpproxy in front of the same server.

Floor rows (``bench/forwarder.py``) put the figures in proportion: a forwarder that copies bytes
between asyncio sockets and nothing else, and a bare uvicorn app forwarding through ``httpx2``
(stateless era); and the least proxy built on the official MCP SDK (its low-level server in front,
one SDK client session behind, nothing else), in both eras. What mcpproxy adds beyond the SDK floor
is its own work: routing, policy, records, limits, metrics.

For each path: sequential p50/p99, requests/s at each concurrency level, and the CPU time per
call of the process that serves the client (the upstream itself for direct paths, the proxy for
proxied ones), read from ``/proc`` around the throughput runs. Every load loop is bounded in count
and in time. It prints figures (and the machine's load average); it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx2
from mcp import Client, StdioServerParameters

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "notes_server.py"
FORWARDER = REPO / "bench" / "forwarder.py"
QUIET = {
    "FASTMCP_SHOW_SERVER_BANNER": "false",
    "FASTMCP_CHECK_FOR_UPDATES": "off",
    "FASTMCP_LOG_LEVEL": "WARNING",
    "PYTHONUNBUFFERED": "1",
}
LEVEL_SECONDS = 15.0
"""Upper bound of one throughput level, whatever the call count."""
SEQUENTIAL_SECONDS = 20.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

Call = Callable[[], Awaitable[None]]


@dataclass
class Row:
    """The figures of one path."""

    name: str
    p50: float = 0.0
    p99: float = 0.0
    rps: dict[int, float] = field(default_factory=dict)
    cpu_ms_per_call: float | None = None


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its reaped children, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx2.get(url, timeout=1.0)
            return
        except httpx2.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def wait_port(port: int, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


@contextmanager
def process(argv: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        argv,
        env={**os.environ, **QUIET, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def stateless_call(client: httpx2.AsyncClient, url: str, tool: str) -> Call:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    headers = {
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": tool,
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
    }
    counter = iter(range(1, 10**9))

    async def call() -> None:
        body = {
            "jsonrpc": "2.0",
            "id": next(counter),
            "method": "tools/call",
            "params": {"name": tool, "arguments": {"a": 1, "b": 2}, "_meta": meta},
        }
        response = await client.post(url, content=json.dumps(body), headers=headers)
        if response.status_code != 200 or '"isError":true' in response.text:
            raise RuntimeError(f"{url} {tool}: {response.status_code} {response.text[:200]}")

    return call


def session_call(client: Client, tool: str) -> Call:
    async def call() -> None:
        result = await client.session.call_tool(tool, {"a": 1, "b": 2})
        if getattr(result, "is_error", False):
            raise RuntimeError(f"{tool} failed: {result}")

    return call


async def measure(name: str, call: Call, calls: int, levels: list[int], server_pid: int | None) -> Row:
    row = Row(name)
    for _ in range(min(50, calls)):
        await call()
    samples = []
    deadline = time.monotonic() + SEQUENTIAL_SECONDS
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
        if time.monotonic() > deadline:
            break
    samples.sort()
    row.p50 = statistics.median(samples)
    row.p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
    total = 0
    for level in levels:
        rps, done = await throughput(call, calls, level)
        row.rps[level] = rps
        total += done
    if server_pid and total:
        row.cpu_ms_per_call = (cpu_seconds(server_pid) - cpu_before) * 1000 / total
    print(f"  {name}: p50 {row.p50:.2f} ms, p99 {row.p99:.2f} ms, "
          + ", ".join(f"{r:.0f} req/s @{lvl}" for lvl, r in row.rps.items())
          + (f", {row.cpu_ms_per_call:.2f} ms CPU/call" if row.cpu_ms_per_call is not None else ""), flush=True)
    return row


async def throughput(call: Call, calls: int, level: int) -> tuple[float, int]:
    """Requests/s with ``level`` concurrent callers, ``calls`` in all (bounded by time too)."""
    done = 0
    started_calls = 0
    stop_at = time.monotonic() + LEVEL_SECONDS

    async def worker() -> None:
        nonlocal done, started_calls
        while started_calls < calls and time.monotonic() < stop_at:
            started_calls += 1
            await call()
            done += 1

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(level):
            tg.start_soon(worker)
    return done / (time.perf_counter() - started), done


def mcpproxy_pid(wrapper: subprocess.Popen[bytes]) -> int:
    return wrapper.pid


async def run(args: argparse.Namespace) -> list[Row]:
    levels = [int(x) for x in args.levels.split(",")]
    rows: list[Row] = []
    up_port, proxy_port, peer_port, raw_port, asgi_port, sdk_port, sdk_stdio_port = (free_port() for _ in range(7))
    up_url = f"http://127.0.0.1:{up_port}/mcp"
    limits = httpx2.Limits(max_connections=200, max_keepalive_connections=200)
    with (
        tempfile.TemporaryDirectory() as tmp,
        process([sys.executable, str(FIXTURE), "--transport", "http", "--port", str(up_port)]) as upstream,
    ):
        wait_http(up_url)
        config = {
            "listen": f"127.0.0.1:{proxy_port}",
            "data_dir": tmp,
            "tool_response_limit": 0,
            "log_level": "warning",
            "default_trust": "auto",
            "mcpServers": {
                "http": {"url": up_url},
                "stdio": {"command": sys.executable, "args": [str(FIXTURE), "--transport", "stdio"], "env": QUIET},
            },
        }
        config_path = Path(tmp) / "mcp_config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        proxy_argv = [sys.executable, "-m", "mcpproxy", "--config", str(config_path), "serve", "--no-watch"]
        peer_script = (
            "from fastmcp.server import create_proxy\n"
            f"create_proxy({up_url!r}).run(transport='http', host='127.0.0.1', port={peer_port}, "
            "show_banner=False)\n"
        )
        forwarder = [sys.executable, str(FORWARDER), "--upstream", up_url, "--port"]
        with (
            process(proxy_argv) as proxy,
            process([sys.executable, "-c", peer_script]) as peer,
            process([*forwarder, str(raw_port), "--mode", "raw"]) as raw,
            process([*forwarder, str(asgi_port), "--mode", "asgi"]) as asgi,
            process([*forwarder, str(sdk_port), "--mode", "sdk"]) as sdk,
            process([sys.executable, str(FORWARDER), "--mode", "sdk", "--port", str(sdk_stdio_port),
                     "--upstream", shlex.join([sys.executable, str(FIXTURE), "--transport", "stdio"])]) as sdk_stdio,
        ):
            base = f"http://127.0.0.1:{proxy_port}"
            wait_http(base + "/healthz")
            with anyio.fail_after(120):
                async with httpx2.AsyncClient(timeout=10) as http:
                    while (await http.get(base + "/readyz")).status_code != 200:  # noqa: ASYNC110
                        await anyio.sleep(0.2)  # polling readiness
            peer_url = f"http://127.0.0.1:{peer_port}/mcp"
            if args.peer:
                wait_http(peer_url)
            raw_url, asgi_url = f"http://127.0.0.1:{raw_port}/mcp", f"http://127.0.0.1:{asgi_port}/mcp"
            sdk_url, sdk_stdio_url = f"http://127.0.0.1:{sdk_port}/mcp", f"http://127.0.0.1:{sdk_stdio_port}/mcp"
            for port in (raw_port, asgi_port, sdk_port, sdk_stdio_port):
                wait_port(port)
            print(f"load average before: {os.getloadavg()}", flush=True)
            async with httpx2.AsyncClient(limits=limits, timeout=60) as http:
                rows.append(await measure("stateless  direct (HTTP upstream)",
                                          stateless_call(http, up_url, "add"), args.calls, levels, upstream.pid))
                rows.append(await measure("stateless  floor: raw socket forwarder -> HTTP upstream",
                                          stateless_call(http, raw_url, "add"), args.calls, levels, raw.pid))
                rows.append(await measure("stateless  floor: uvicorn + httpx2 forwarder -> HTTP upstream",
                                          stateless_call(http, asgi_url, "add"), args.calls, levels, asgi.pid))
                rows.append(await measure("stateless  floor: SDK server + SDK client -> HTTP upstream",
                                          stateless_call(http, sdk_url, "add"), args.calls, levels, sdk.pid))
                rows.append(await measure("stateless  mcpproxy -> HTTP upstream",
                                          stateless_call(http, base + "/mcp/all", "http__add"), args.calls, levels,
                                          proxy.pid))
                if args.peer:
                    rows.append(await measure("stateless  FastMCP create_proxy -> HTTP upstream",
                                              stateless_call(http, peer_url, "add"), args.calls, levels, peer.pid))
                rows.append(await measure("stateless  floor: SDK server + SDK client -> stdio upstream",
                                          stateless_call(http, sdk_stdio_url, "add"), args.calls, levels,
                                          sdk_stdio.pid))
                rows.append(await measure("stateless  mcpproxy -> stdio upstream",
                                          stateless_call(http, base + "/mcp/all", "stdio__add"), args.calls, levels,
                                          proxy.pid))
            async with Client(up_url, mode="legacy") as direct:
                rows.append(await measure("handshake  direct (HTTP upstream)", session_call(direct, "add"),
                                          args.calls, levels, upstream.pid))
            async with Client(sdk_url, mode="legacy") as floor:
                rows.append(await measure("handshake  floor: SDK server + SDK client -> HTTP upstream",
                                          session_call(floor, "add"), args.calls, levels, sdk.pid))
            async with Client(base + "/mcp/all", mode="legacy") as proxied:
                rows.append(await measure("handshake  mcpproxy -> HTTP upstream", session_call(proxied, "http__add"),
                                          args.calls, levels, proxy.pid))
            if args.peer:
                async with Client(peer_url, mode="legacy") as peered:
                    rows.append(await measure("handshake  FastMCP create_proxy -> HTTP upstream",
                                              session_call(peered, "add"), args.calls, levels, peer.pid))
            stdio_args = [str(FIXTURE), "--transport", "stdio"]
            stdio = StdioServerParameters(command=sys.executable, args=stdio_args, env=QUIET)
            async with Client(stdio, mode="legacy") as direct_stdio:
                rows.append(await measure("handshake  direct (stdio upstream, SDK client)",
                                          session_call(direct_stdio, "add"), args.calls, levels, None))
            async with Client(sdk_stdio_url, mode="legacy") as floor:
                rows.append(await measure("handshake  floor: SDK server + SDK client -> stdio upstream",
                                          session_call(floor, "add"), args.calls, levels, sdk_stdio.pid))
            async with Client(base + "/mcp/all", mode="legacy") as proxied:
                rows.append(await measure("handshake  mcpproxy -> stdio upstream",
                                          session_call(proxied, "stdio__add"), args.calls, levels, proxy.pid))
            print(f"load average after: {os.getloadavg()}", flush=True)
    return rows


def markdown(rows: list[Row], levels: list[int]) -> str:
    head = "| path | p50 ms | p99 ms | " + " | ".join(f"req/s @{lvl}" for lvl in levels) + " | server CPU ms/call |"
    lines = [head, "|" + "---|" * (4 + len(levels))]
    for r in rows:
        cpu = f"{r.cpu_ms_per_call:.2f}" if r.cpu_ms_per_call is not None else "n/a"
        lines.append(f"| {r.name} | {r.p50:.2f} | {r.p99:.2f} | "
                     + " | ".join(f"{r.rps.get(lvl, 0):.0f}" for lvl in levels) + f" | {cpu} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000, help="calls per measurement (bounded by time too)")
    parser.add_argument("--levels", default="1,10,50", help="concurrency levels for requests/s")
    parser.add_argument("--no-peer", dest="peer", action="store_false", help="skip FastMCP's create_proxy")
    args = parser.parse_args()
    rows = anyio.run(run, args)
    levels = [int(x) for x in args.levels.split(",")]
    print()
    print(f"{os.cpu_count()} cores; {args.calls} calls per row")
    print(markdown(rows, levels))


if __name__ == "__main__":
    main()
