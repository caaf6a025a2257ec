"""kill -9 at a random moment loses nothing that was reported done and corrupts nothing.

A real child process loops: write the config file atomically, replace a tool snapshot,
count a call, then print its round number. The test reads those lines from a pipe, kills
the child with SIGKILL after a random number of rounds (so the kill lands somewhere inside
the loop), and checks what is on disk. The same files go through several kills.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

import mcpproxy
from mcpproxy.store.db import Store
from mcpproxy.store.tools import ToolStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL semantics are POSIX")

# The child imports mcpproxy from the same tree as this test, installed or not.
SRC_DIR = str(Path(mcpproxy.__file__).resolve().parents[1])
WAIT = 20.0
KILLS = 3
TOOLS = 40

# Shared by the child and the test, so the test knows every version the child can write.
VERSION_SOURCE = """
def version(i):
    servers = {f"s{k}": {"command": "server-" + str(k), "args": [str(i)] * 40} for k in range(40)}
    return {"version": i, "tools_limit": 1 + i % 100, "mcpServers": servers}
"""

CHILD = (
    VERSION_SOURCE
    + """
import sys
from pathlib import Path

import anyio
import anyio.to_thread

from mcpproxy.config.writer import write_config_atomic
from mcpproxy.store.db import Store
from mcpproxy.store.tools import ToolStore

config, database, first = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])

async def main():
    async with Store(database) as store:
        tools = ToolStore(store)
        i = first
        while True:
            await anyio.to_thread.run_sync(write_config_atomic, config, version(i))
            await tools.save_tools("gen", [{"name": f"t{k}", "description": str(i)} for k in range(TOOLS)])
            await tools.record_call("gen", "t0", True, 1.0)
            print(i, flush=True)
            i += 1

anyio.run(main)
""".replace("TOOLS", str(TOOLS))
)


def version(i: int) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(VERSION_SOURCE, namespace)  # noqa: S102 - our own constant, shared with the child
    result: dict[str, Any] = namespace["version"](i)
    return result


async def run_and_kill(config: Path, database: Path, first: int, rounds: int) -> int:
    """Start the child, wait for ``rounds`` reported rounds, SIGKILL it; the last round reported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC_DIR, os.environ.get("PYTHONPATH")]))}
    process = await anyio.open_process(
        [sys.executable, "-c", CHILD, str(config), str(database), str(first)],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    last = first - 1
    try:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(WAIT):
            for _ in range(rounds):
                try:
                    last = int(await lines.receive_until(b"\n", 64))
                except (anyio.IncompleteRead, anyio.EndOfStream):
                    assert process.stderr is not None
                    error = await process.stderr.receive(65536)
                    pytest.fail(f"the child died: {error.decode(errors='replace')}")
    finally:
        process.kill()
        with anyio.fail_after(WAIT), anyio.CancelScope(shield=True):
            await process.wait()
            await process.aclose()
    return last


@pytest.mark.anyio
async def test_kill_9_leaves_a_complete_config_and_an_intact_store(tmp_path: Path) -> None:
    config, database = tmp_path / "mcp_config.json", tmp_path / "mcpproxy.db"
    reported = 0
    for kill in range(KILLS):
        first = kill * 1_000_000
        last = await run_and_kill(config, database, first, rounds=random.randint(2, 15))
        reported += last - first + 1

        data = json.loads(await anyio.Path(config).read_text(encoding="utf-8"))
        # Everything reported was durable; at most the round in flight went further.
        assert data["version"] in (last, last + 1)
        assert data == version(data["version"])

        async with Store(database) as store:
            assert await store.integrity_check()
            tools = ToolStore(store)
            snapshot = (await tools.load_tools())["gen"]
            assert len(snapshot) == TOOLS
            assert {t["description"] for t in snapshot} in ({str(last)}, {str(last + 1)})
            (stats,) = await tools.tool_stats("gen")
            assert reported <= stats.calls <= reported + kill + 1
