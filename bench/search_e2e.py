"""Retrieval quality measured through the real ``retrieve_tools``, over MCP, against real upstreams.

Usage: ``python bench/search_e2e.py DATASET_DIR [--mode bm25|hybrid] [--limit 100] [--no-diversify]``

Starts a gateway in this process (HTTP on a free loopback port, a temporary data dir) with one
stdio upstream per LiveMCPBench server: each is ``tests/fixtures/catalog_server.py --server KEY``,
a FastMCP server that lists that server's tools exactly as the dataset records them (names,
descriptions, input schemas, annotations) and gives the server's description as its
``instructions``. So the 70 servers are 70 real MCP processes, connected, listed, policed and
indexed by the gateway as any upstream would be; server names that the gateway does not accept (a
space in ``Ant Design Components``) are written with ``-`` instead. Servers are trusted
(``default_trust: auto``), run without a sandbox (``isolation: none``) and get 300 s to connect (70
Python processes starting at once on a small machine): the benchmark is about search. In hybrid
mode the run waits until every tool has its vector.

Then an MCP client calls ``retrieve_tools`` with every dev query (``limit`` results) and scores the
answers as ``search_quality.py`` does (tool level and server level), and prints the client-side
latency of each call (the whole MCP round trip, JSON of ``limit`` tools included).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import uvicorn
from mcp import Client
from mcp_types import TextContent
from rich.console import Console
from rich.table import Table

from mcpproxy.app import build_app
from mcpproxy.cli.serve import bind_socket
from mcpproxy.config.loader import load_settings
from mcpproxy.endpoints.rest import load_or_create_api_key
from mcpproxy.gateway import Gateway
from mcpproxy.search.base import Hit
from mcpproxy.upstream.base import UpstreamState
from search_dataset import SERVER_METRICS, TOOL_METRICS, Metrics, load_servers, load_tasks, percentile, score_task

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "catalog_server.py"


def server_name(key: str) -> str:
    """The dataset's server key as a gateway server name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", key).strip("-")[:64] or "server"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def retrieve(client: Client, **args: Any) -> Any:
    """The JSON answer of one ``retrieve_tools`` call."""
    result = await client.call_tool("retrieve_tools", args)
    block = result.content[0]
    assert isinstance(block, TextContent), block
    return json.loads(block.text)


async def run(dataset: Path, mode: str, limit: int, diversify: bool) -> None:
    base = load_servers(dataset)
    tasks = load_tasks(dataset, base)
    holders: dict[str, set[str]] = {}
    for server in base:
        for tool in server.tools:
            holders.setdefault(tool.name, set()).add(server_name(server.name))
    with tempfile.TemporaryDirectory() as tmp:
        config = {
            "listen": f"127.0.0.1:{free_port()}",
            "data_dir": str(Path(tmp) / "data"),
            "default_trust": "auto",
            "isolation": "none",
            "connect_timeout": 300,
            "search_mode": mode,
            "mcpServers": {
                server_name(s.name): {
                    "command": sys.executable,
                    "args": [str(FIXTURE), "--tools", str(dataset / "tools.json"), "--server", s.name],
                }
                for s in base
            },
        }
        path = Path(tmp) / "mcp_config.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        settings = load_settings(path, env={})
        gateway = Gateway(settings, config_path=path, watch_config=False)
        app = build_app(gateway, api_key=load_or_create_api_key(settings.data_path))
        web = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", access_log=False))
        sock = bind_socket(settings)
        started = time.perf_counter()
        with sock:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: web.serve(sockets=[sock]))
                with anyio.fail_after(600):
                    await gateway.entered.wait()
                    names = {server_name(s.name) for s in base}
                    while True:
                        states = {s.name: s.state for s in gateway.statuses()}
                        if all(states.get(n) in (UpstreamState.READY, UpstreamState.ERROR) for n in names):
                            break
                        await gateway.wait_state_change()
                    ready_s = time.perf_counter() - started
                    await gateway.searcher.wait_embedded()
                    while web.started is False:  # noqa: ASYNC110 - uvicorn exposes only a flag
                        await anyio.sleep(0.05)
                indexed_s = time.perf_counter() - started
                failed = sorted(n for n, s in states.items() if s is not UpstreamState.READY)
                metrics = Metrics()
                latencies: list[float] = []
                url = f"http://{settings.listen}/mcp"
                async with Client(url) as client:
                    for task in tasks:
                        t0 = time.perf_counter()
                        body = await retrieve(client, query=task.query, limit=limit, diversify=diversify)
                        latencies.append((time.perf_counter() - t0) * 1000)
                        hits = [Hit(t["server"], t["tool"], float(t["score"])) for t in body["tools"]]
                        # Server-level metrics rank what group_by_server answers (a second call).
                        groups = (
                            await retrieve(
                                client, query=task.query, limit=limit, diversify=diversify, group_by_server=True
                            )
                        )["servers"]
                        grouped = [Hit(g["server"], t["tool"], float(t["score"])) for g in groups for t in g["tools"]]
                        score_task(hits, task, holders, metrics, grouped)
                web.should_exit = True
    means = metrics.means()
    table = Table(title=f"retrieve_tools over MCP, {mode} mode, {len(tasks)} dev tasks, limit {limit}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("servers (stdio processes)", f"{len(base)} ({len(failed)} not ready: {', '.join(failed) or '-'})")
    table.add_row("tools indexed", str(len(gateway.index)))
    table.add_row("all servers ready after", f"{ready_s:.1f} s")
    table.add_row("all tools indexed (vectors too) after", f"{indexed_s:.1f} s")
    for name in TOOL_METRICS + SERVER_METRICS:
        table.add_row(name, f"{means[name]:.3f}")
    table.add_row("retrieve_tools round trip p50 / p99", f"{statistics.median(latencies):.1f} / "
                  f"{percentile(latencies, 0.99):.1f} ms")
    Console(width=120).print(table)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dataset", type=Path, help="folder with tools.json and queries-dev.json")
    parser.add_argument("--mode", choices=["bm25", "hybrid"], default="bm25")
    parser.add_argument("--limit", type=int, default=100, help="retrieve_tools limit (default 100, its maximum)")
    parser.add_argument("--no-diversify", action="store_true", help="ask retrieve_tools for every near copy")
    args = parser.parse_args(argv)
    anyio.run(run, args.dataset.resolve(), args.mode, args.limit, not args.no_diversify)


if __name__ == "__main__":
    main()

