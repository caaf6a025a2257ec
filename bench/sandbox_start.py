"""Start-up cost of the sandbox backends for stdio servers.

    python bench/sandbox_start.py [--runs 20] [--cache DIR]

For each server and each backend available here, starts the server ``--runs`` times and
measures the time from spawn to the first JSON-RPC answer (the reply to ``initialize``):
that is what a user waits for when the gateway connects an upstream. Two servers:

* ``trivial``: a Python one-liner that answers one line (interpreter start-up only);
* ``filesystem``: the npm filesystem server (``node <dist/index.js> <dir>``) from the test
  cache (``$MCPPROXY_TEST_CACHE`` or ``<repo>/.cache``; scripts/install-test-deps.sh).

Policies come from ``default_policy_for`` (network none), as the gateway would build them.
Backends are measured round-robin, and the added cost is the median of paired differences
against the unsandboxed start of the same round, so a shared machine's changing load hits
every backend alike. Every start is bounded (20 s) and each server is killed as a process
group afterwards. Prints p50 and p90 per cell. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from mcpproxy.sandbox.auto import make_sandbox
from mcpproxy.sandbox.base import PreparedCommand
from mcpproxy.sandbox.defaults import default_policy_for

BACKENDS = ("none", "bwrap", "landlock", "docker")
START_TIMEOUT = 20.0
INIT = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-03-26",
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
    }
)
TRIVIAL = (
    "import sys, json; line = sys.stdin.readline(); "
    "print(json.dumps({'jsonrpc': '2.0', 'id': 1, 'result': {}}), flush=True)"
)


def time_start(prepared: PreparedCommand) -> float:
    """Seconds from spawn to the first line on stdout; the process group is killed afterwards."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(prepared.argv),
        env=dict(prepared.env),
        cwd=prepared.cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(INIT.encode() + b"\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
        if not ready:
            raise TimeoutError(f"no answer within {START_TIMEOUT:g} s")
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - start
        if not line.startswith(b"{"):
            raise RuntimeError(f"unexpected first line: {line[:200]!r}")
        return elapsed
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def cache_dir() -> Path:
    override = os.environ.get("MCPPROXY_TEST_CACHE")
    return Path(override) if override else Path(__file__).resolve().parents[1] / ".cache"


def servers(cache: Path, shared: Path) -> dict[str, list[str]]:
    out = {"trivial": [sys.executable, "-c", TRIVIAL]}
    link = cache / "npm" / "node_modules" / ".bin" / "mcp-server-filesystem"
    if link.exists():
        out["filesystem"] = ["node", str(link.resolve()), str(shared)]
    else:
        print(f"(filesystem server not installed at {link}: run scripts/install-test-deps.sh)")
    return out


def prepare_all(argv: Sequence[str], data_dir: Path) -> tuple[dict[str, PreparedCommand], list[str]]:
    prepared: dict[str, PreparedCommand] = {}
    notes: list[str] = []
    for backend in BACKENDS:
        sandbox = make_sandbox(backend)
        state = sandbox.available()
        if not state.ok:
            notes.append(f"{backend}: n/a ({state.reason})")
            continue
        policy = default_policy_for(argv[0], argv[1:], {}, None, data_dir, name=f"bench-{backend}")
        prepared[backend] = sandbox.prepare(argv, {"LANG": "C.UTF-8"}, policy)
    return prepared, notes


def measure(prepared: dict[str, PreparedCommand], runs: int) -> dict[str, list[float]]:
    """Round-robin over the backends, so a load change on the machine hits them all alike."""
    for command in prepared.values():
        time_start(command)  # warm the page cache once
    times: dict[str, list[float]] = {name: [] for name in prepared}
    for _ in range(runs):
        for name, command in prepared.items():
            times[name].append(time_start(command))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--cache", type=Path, default=cache_dir())
    opts = parser.parse_args()
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        shared = Path(tmp) / "shared"
        shared.mkdir()
        data_dir = Path(tmp) / "data"
        for server, argv in servers(opts.cache, shared).items():
            prepared, skipped = prepare_all(argv, data_dir)
            notes += skipped
            times = measure(prepared, opts.runs)
            base = times.get("none")
            for backend, samples in times.items():
                p50 = statistics.median(samples) * 1000
                p90 = statistics.quantiles(samples, n=10)[-1] * 1000
                added = "-"
                if base is not None and backend != "none":
                    # Paired: each run against the unsandboxed start right before it.
                    added = f"+{statistics.median(s - b for s, b in zip(samples, base, strict=True)) * 1000:.1f}"
                rows.append((server, backend, f"{p50:.1f}", f"{p90:.1f}", added))
    print(f"start to first answer, {opts.runs} runs each, backends interleaved (ms)\n")
    print("| server | backend | p50 | p90 | added (median of paired differences) |")
    print("| --- | --- | ---: | ---: | ---: |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for note in dict.fromkeys(notes):
        print(f"\n{note}")


if __name__ == "__main__":
    main()
