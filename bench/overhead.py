"""Per-call overhead of mcpproxy, measured against direct calls in the same run.

    python bench/overhead.py [--calls 2000] [--levels 1,10,50] [--peer]

Starts a real FastMCP upstream (``tests/fixtures/notes_server.py``) over streamable HTTP, and
``mcpproxy serve`` (a real process) with that upstream twice: once over HTTP and once over
stdio. Then, with the same client code for every target:

* stateless era (2026-07-28): one raw HTTP POST per ``tools/call`` (``httpx2``, keep-alive),
  direct to the upstream and through mcpproxy's direct mode (``/mcp/all``);
* handshake era (2025-11-25): the SDK's ``ClientSession`` (one session, reused);
* stdio upstream: the SDK client speaking stdio to the upstream directly, against the same
  upstream reached through mcpproxy over HTTP;
* ``--peer``: FastMCP's ``create_proxy`` in front of the same upstream.

Prints p50/p99 of sequential calls and requests/s at each concurrency level. Every load loop
is bounded in count and in time. Nothing here is asserted: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "notes_server.py"
QUIET = {"FASTMCP_SHOW_SERVER_BANNER": "false", "FASTMCP_CHECK_FOR_UPDATES": "off", "PYTHONUNBUFFERED": "1"}
LEVEL_SECONDS = 20.0
"""Upper bound of one throughput level, whatever the call count."""

Call = Callable[[], Awaitable[None]]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx2.get(url, timeout=1.0)
            return
        except httpx2.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


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
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


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


async def measure(call: Call, calls: int, levels: list[int]) -> dict[str, float]:
    for _ in range(min(50, calls)):
        await call()
    samples = []
    deadline = time.monotonic() + LEVEL_SECONDS
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - start) * 1000)
        if time.monotonic() > deadline:
            break
    samples.sort()
    out = {"p50": statistics.median(samples), "p99": samples[min(len(samples) - 1, int(len(samples) * 0.99))]}
    for level in levels:
        out[f"rps@{level}"] = await throughput(call, calls, level)
    return out


async def throughput(call: Call, calls: int, level: int) -> float:
    """Requests/s with ``level`` concurrent callers, ``calls`` in all (bounded by time too)."""
    done = 0
    stop_at = time.monotonic() + LEVEL_SECONDS

    async def worker() -> None:
        nonlocal done
        while done < calls and time.monotonic() < stop_at:
            done += 1
            await call()

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(level):
            tg.start_soon(worker)
    return done / (time.perf_counter() - started)


async def run(args: argparse.Namespace) -> list[tuple[str, dict[str, float]]]:
    levels = [int(x) for x in args.levels.split(",")]
    rows: list[tuple[str, dict[str, float]]] = []
    up_port, proxy_port, peer_port = free_port(), free_port(), free_port()
    up_url = f"http://127.0.0.1:{up_port}/mcp"
    with (
        tempfile.TemporaryDirectory() as tmp,
        process([sys.executable, str(FIXTURE), "--transport", "http", "--port", str(up_port)]),
    ):
        wait_http(up_url)
        config = {
            "listen": f"127.0.0.1:{proxy_port}",
            "data_dir": tmp,
            "tool_response_limit": 0,
            "default_trust": "auto",
            "log_level": "warning",
            "mcpServers": {
                "http": {"url": up_url},
                "stdio": {"command": sys.executable, "args": [str(FIXTURE), "--transport", "stdio"], "env": QUIET},
            },
        }
        config_path = Path(tmp) / "mcp_config.json"
        config_path.write_text(json.dumps(config), encoding="utf-8")
        proxy_argv = [sys.executable, "-m", "mcpproxy", "--config", str(config_path), "serve", "--no-watch"]
        with process(proxy_argv):
            base = f"http://127.0.0.1:{proxy_port}"
            wait_http(base + "/healthz")
            key = (Path(tmp) / "api_key").read_text(encoding="utf-8").strip()
            with anyio.fail_after(60):
                while True:
                    status = httpx2.get(base + "/api/v1/status", headers={"X-API-Key": key}).json()
                    if status.get("states", {}).get("ready") == 2:
                        break
                    await anyio.sleep(0.2)
            limits = httpx2.Limits(max_connections=100, max_keepalive_connections=100)
            async with httpx2.AsyncClient(limits=limits, timeout=30) as http:
                rows.append(
                    (
                        "stateless  direct -> upstream (HTTP)",
                        await measure(stateless_call(http, up_url, "add"), args.calls, levels),
                    )
                )
                rows.append(
                    (
                        "stateless  via mcpproxy -> upstream (HTTP)",
                        await measure(stateless_call(http, base + "/mcp/all", "http__add"), args.calls, levels),
                    )
                )
                rows.append(
                    (
                        "stateless  via mcpproxy -> upstream (stdio)",
                        await measure(stateless_call(http, base + "/mcp/all", "stdio__add"), args.calls, levels),
                    )
                )
            async with Client(up_url, mode="legacy") as direct:
                rows.append(
                    (
                        "handshake  direct -> upstream (HTTP)",
                        await measure(session_call(direct, "add"), args.calls, levels),
                    )
                )
            async with Client(base + "/mcp/all", mode="legacy") as proxied:
                rows.append(
                    (
                        "handshake  via mcpproxy -> upstream (HTTP)",
                        await measure(session_call(proxied, "http__add"), args.calls, levels),
                    )
                )
            stdio = StdioServerParameters(
                command=sys.executable, args=[str(FIXTURE), "--transport", "stdio"], env=QUIET
            )
            async with Client(stdio, mode="legacy") as direct_stdio:
                rows.append(
                    (
                        "handshake  direct -> upstream (stdio, SDK client)",
                        await measure(session_call(direct_stdio, "add"), args.calls, levels),
                    )
                )
            if args.peer:
                peer_script = (
                    "import sys\nfrom fastmcp.server import create_proxy\n"
                    f"create_proxy({up_url!r}).run(transport='http', host='127.0.0.1', port={peer_port}, "
                    "show_banner=False)\n"
                )
                with process([sys.executable, "-c", peer_script]):
                    peer_url = f"http://127.0.0.1:{peer_port}/mcp"
                    wait_http(peer_url)
                    async with httpx2.AsyncClient(limits=limits, timeout=30) as http:
                        rows.append(
                            (
                                "stateless  via FastMCP create_proxy (peer)",
                                await measure(stateless_call(http, peer_url, "add"), min(args.calls, 300), levels),
                            )
                        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000, help="calls per measurement (bounded by time too)")
    parser.add_argument("--levels", default="1,10,50", help="concurrency levels for requests/s")
    parser.add_argument("--peer", action="store_true", help="also measure FastMCP's create_proxy")
    args = parser.parse_args()
    rows = anyio.run(run, args)
    table = Table(title=f"tools/call overhead ({args.calls} calls per row, {os.cpu_count()} cores)")
    table.add_column("path")
    for col in ("p50 ms", "p99 ms", *(f"req/s @{lvl}" for lvl in args.levels.split(","))):
        table.add_column(col, justify="right")
    for name, figures in rows:
        table.add_row(
            name,
            f"{figures['p50']:.2f}",
            f"{figures['p99']:.2f}",
            *(f"{figures[f'rps@{lvl}']:.0f}" for lvl in args.levels.split(",")),
        )
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
