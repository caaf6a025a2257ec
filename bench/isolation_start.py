"""Start-up time of a stdio server through the gateway's transport, per isolation mode.

    python bench/isolation_start.py [--runs 20] [--servers time,filesystem]

What a user waits for when the gateway (re)connects a stdio upstream: from the start of the
transport (``isolated_stdio_client``: plan the sandbox, start the egress proxy if any, spawn)
to the answer to ``tools/list`` through the MCP SDK's client (``initialize`` first). Modes:
``none`` (no sandbox), ``bwrap``, ``landlock`` and ``docker``; a mode that cannot run here is
reported as not measured, with the reason. Servers come from the test cache
(scripts/install-test-deps.sh): the PyPI ``mcp-server-time`` (from its venv) and the npm
filesystem server (``node <dist/index.js> <dir>``).

Modes are measured round-robin after one warm-up start each, and "added" is the median of the
paired differences against the ``none`` start of the same round, so a shared machine's
changing load hits every mode alike. Each start is bounded (60 s). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from mcpproxy.sandbox.auto import make_sandbox
from mcpproxy.settings import Settings
from mcpproxy.upstream.isolation import isolated_stdio_client
from mcpproxy.upstream.transports import stdio_environment

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.paths import npm_bin, pyserver_bin  # noqa: E402 - after the path setup above

MODES = ("none", "bwrap", "landlock", "docker")
START_TIMEOUT = 60.0


def server_entries(scratch: Path) -> dict[str, dict[str, Any]]:
    shared = scratch / "shared"
    shared.mkdir(exist_ok=True)
    files = npm_bin("mcp-server-filesystem")
    return {
        "time": {"command": pyserver_bin("mcp-server-time")[0]},
        "filesystem": {"command": files[0], "args": [*files[1:], str(shared)]},
    }


async def one_start(settings: Settings, name: str) -> float:
    spec = settings.servers[name]
    with tempfile.TemporaryFile("a+", encoding="utf-8") as errlog:
        start = time.perf_counter()
        with anyio.fail_after(START_TIMEOUT):
            transport = isolated_stdio_client(
                spec, settings, env=stdio_environment(spec), errlog=errlog, on_plan=lambda p: None,
                on_exit=lambda r: None,
            )  # fmt: skip
            async with Client(transport, mode="legacy") as client:
                await client.list_tools()
                elapsed = time.perf_counter() - start
    return elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(runs: int, servers: list[str]) -> None:
    available = {m: make_sandbox(m).available() for m in MODES}
    modes = [m for m in MODES if available[m].ok]
    with tempfile.TemporaryDirectory(prefix="mcpproxy-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        entries = server_entries(scratch)
        print(f"{'server':<11} {'mode':<9} {'p50 ms':>8} {'p90 ms':>8} {'added ms':>9}")
        for server in servers:
            times: dict[str, list[float]] = {m: [] for m in modes}
            settings_by_mode = {
                m: Settings.model_validate({
                    "data_dir": str(scratch / "data"),
                    "mcpServers": {server: {**entries[server], "isolation": {"mode": m}}},
                })
                for m in modes
            }
            for mode in modes:  # warm-up: caches, bytecode, the backend probes
                await one_start(settings_by_mode[mode], server)
            for _ in range(runs):
                for mode in modes:
                    times[mode].append(await one_start(settings_by_mode[mode], server))
            for mode in modes:
                ms = [t * 1000 for t in times[mode]]
                added = "-"
                if mode != "none":
                    paired = [(a - b) * 1000 for a, b in zip(times[mode], times["none"], strict=True)]
                    added = f"{statistics.median(paired):+.1f}"
                print(f"{server:<11} {mode:<9} {pct(ms, 0.5):>8.1f} {pct(ms, 0.9):>8.1f} {added:>9}")
        for mode in MODES:
            if not available[mode].ok:
                print(f"{mode}: not measured ({available[mode].reason})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--servers", default="time,filesystem")
    args = parser.parse_args()
    anyio.run(main, args.runs, args.servers.split(","))
