"""Real MCP servers keep working inside the sandbox, with the default policy.

The npm filesystem server (installed by scripts/install-test-deps.sh under the test cache)
runs under each local backend through the MCP SDK's stdio client, serves the directory it
was given, and cannot see beyond it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from mcpproxy.sandbox.auto import make_sandbox
from mcpproxy.sandbox.defaults import default_policy_for
from mcpproxy.sandbox.session import sandboxed_command
from tests.sandbox.support import FakeHost, run_argv, run_prepared
from tests.support.paths import fixture_argv, npm_bin

pytestmark = pytest.mark.anyio

BACKENDS = ("bwrap", "landlock")


def _text(result: object) -> str:
    content = getattr(result, "content", [])
    return "\n".join(getattr(item, "text", "") for item in content)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_filesystem_server_serves_its_directory(backend: str, host: FakeHost) -> None:
    shared = host.work / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("hi\n")
    (shared / "sub").mkdir()
    argv = npm_bin("mcp-server-filesystem")
    policy = default_policy_for(
        argv[0], [*argv[1:], str(shared)], {}, None, host.data, name="filesystem", home=str(host.home)
    )
    async with sandboxed_command(make_sandbox(backend), [*argv, str(shared)], {}, policy) as prepared:
        params = StdioServerParameters(command=prepared.argv[0], args=list(prepared.argv[1:]), env=dict(prepared.env))
        async with Client(params, mode="legacy", read_timeout_seconds=30) as client:
            listing = _text(await client.call_tool("list_directory", {"path": str(shared)}))
            assert "[FILE] hello.txt" in listing
            assert "[DIR] sub" in listing
            content = _text(await client.call_tool("read_text_file", {"path": str(shared / "hello.txt")}))
            assert content.strip() == "hi"
            # The server's own check refuses paths outside; the sandbox would hide them anyway.
            outside = _text(await client.call_tool("read_text_file", {"path": str(host.ssh_key)}))
            assert "FAKE KEY" not in outside


@pytest.mark.parametrize("backend", BACKENDS)
async def test_python_fixture_server_runs_from_the_venv(backend: str, host: FakeHost) -> None:
    argv = fixture_argv("notes_server", "--help")
    policy = default_policy_for(argv[0], argv[1:], {}, str(host.work), host.data, name="notes", home=str(host.home))
    async with sandboxed_command(make_sandbox(backend), argv, {}, policy) as prepared:
        result = await run_prepared(prepared)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_environment_is_exactly_the_policys(backend: str, host: FakeHost) -> None:
    """Variables a caller merges in (as the SDK's stdio client does) never reach the server,
    and configured values never appear on a command line."""
    argv = [sys.executable, "-c", "import os, json; print(json.dumps(dict(os.environ)))"]
    policy = default_policy_for(
        argv[0], argv[1:], {"API_KEY": "configured"}, str(host.work), host.data, name="env", home=str(host.home)
    )
    async with sandboxed_command(make_sandbox(backend), argv, {"LANG": "C.UTF-8", "AWS_SECRET": "x"}, policy) as p:
        assert "configured" not in " ".join(p.argv)
        result = await run_argv(p.argv, {**p.env, "HOST_SECRET": "leak"}, p.cwd)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["API_KEY"] == "configured"
    assert seen["LANG"] == "C.UTF-8"
    assert "AWS_SECRET" not in seen
    assert "HOST_SECRET" not in seen
    assert seen["HOME"] == policy.home_dir
    assert Path(seen["HOME"]).is_relative_to(host.data)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_killing_the_group_kills_everything_inside(backend: str, host: FakeHost) -> None:
    """Even a child that left the session (``setsid``) dies with the sandbox's PID namespace."""
    marker = f"{os.getpid()}.{BACKENDS.index(backend)}7"
    argv = ["sh", "-c", f"setsid sleep {marker} & sleep {marker}"]
    policy = default_policy_for("sh", argv[1:], {}, str(host.work), host.data, name="tree", home=str(host.home))
    async with sandboxed_command(make_sandbox(backend), argv, {}, policy) as prepared:
        process = await anyio.open_process(
            list(prepared.argv), env=dict(prepared.env), cwd=prepared.cwd, start_new_session=True
        )
        async with process:
            await _poll(lambda pids: len(pids) >= 2, marker)
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    await _poll(lambda pids: not pids, marker)


async def _poll(done: Callable[[list[int]], bool], marker: str, attempts: int = 600) -> None:
    """Poll ``pgrep`` for the marker's processes until ``done`` (at most ``attempts`` x 50 ms)."""
    for _ in range(attempts):
        result = await anyio.run_process(["pgrep", "-f", f"sleep {marker}"], check=False)
        if done([int(p) for p in result.stdout.split()]):
            return
        await anyio.sleep(0.05)
    raise AssertionError(f"processes 'sleep {marker}' never reached the expected state")
