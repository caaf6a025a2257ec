"""Real MCP servers keep working under the default isolation, through the gateway.

The npm filesystem server with its directory argument (reads and writes there, nothing of the
home), the npm memory server with ``MEMORY_FILE_PATH`` (started with ``node`` and with ``npx``),
the PyPI git server with ``--repository`` and the PyPI time server from its venv: each entry
carries no sandbox settings but the mode, so the defaults are what is tested. The mode is the
global default (``auto``, which picks bubblewrap here) and, in a second gateway, ``landlock``.
``HOME`` points at a fake home under ``tmp_path`` with an SSH key in it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client
from tests.support.gateway import GatewayHandle, running_gateway
from tests.support.paths import npm_bin, npm_prefix, pyserver_bin

from mcpproxy.sandbox.auto import select_sandbox
from mcpproxy.upstream.base import UpstreamState

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

WAIT = 90.0
SERVERS = ("files", "memory", "memory-npx", "git", "time")


def text_of(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def make_repo(path: Path) -> None:
    path.mkdir()
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin", "HOME": str(path)}  # fmt: skip
    (path / "README.md").write_text("hello\n")
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "README.md"], ["git", "commit", "-qm", "first"]):
        subprocess.run(argv, cwd=path, env=env, check=True, timeout=30)


def servers_for(tmp_path: Path, isolation: dict[str, Any]) -> dict[str, Any]:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("hi from the host\n")
    memory_dir = tmp_path / "memory"
    memory_dir.mkdir()
    project = tmp_path / "project"  # an npm project whose node_modules holds the server, as `npx` finds it
    project.mkdir()
    (project / "node_modules").symlink_to(npm_prefix() / "node_modules")
    make_repo(tmp_path / "repo")
    files, memory = npm_bin("mcp-server-filesystem"), npm_bin("mcp-server-memory")
    with_iso = {"isolation": isolation} if isolation else {}
    return {
        "files": {"command": files[0], "args": [*files[1:], str(shared)], **with_iso},
        "memory": {"command": memory[0], "args": memory[1:],
                   "env": {"MEMORY_FILE_PATH": str(memory_dir / "memory.jsonl")}, **with_iso},
        "memory-npx": {"command": "npx", "args": ["mcp-server-memory"], "working_dir": str(project),
                       "env": {"MEMORY_FILE_PATH": str(project / "memory.jsonl")},
                       # The symlinked package tree lives outside the project: named explicitly.
                       "isolation": {**isolation, "readonly": [str(npm_prefix())]}},
        "git": {"command": pyserver_bin("mcp-server-git")[0], "args": ["--repository", str(tmp_path / "repo")],
                **with_iso},
        "time": {"command": pyserver_bin("mcp-server-time")[0], **with_iso},
    }  # fmt: skip


async def check_servers_work(gw: GatewayHandle, tmp_path: Path, home: Path) -> None:
    shared, memory_file = tmp_path / "shared", tmp_path / "memory" / "memory.jsonl"
    async with Client(gw.direct_url, mode="auto") as client:

        async def call(name: str, args: dict[str, Any]) -> str:
            result = await client.call_tool(name, args)
            assert not result.is_error, (name, text_of(result))
            return text_of(result)

        assert "hello.txt" in await call("files__list_directory", {"path": str(shared)})
        assert "hi from the host" in await call("files__read_text_file", {"path": str(shared / "hello.txt")})
        await call("files__write_file", {"path": str(shared / "new.txt"), "content": "written inside\n"})
        denied = await client.call_tool("files__read_text_file", {"path": str(home / ".ssh" / "id_rsa")})
        assert denied.is_error or "FAKE KEY" not in text_of(denied)

        entity = {"name": "sandbox", "entityType": "topic", "observations": ["isolation works"]}
        await call("memory__create_entities", {"entities": [entity]})
        assert "isolation works" in await call("memory__read_graph", {})
        await call("memory-npx__create_entities", {"entities": [{**entity, "name": "npx"}]})

        assert "main" in await call("git__git_status", {"repo_path": str(tmp_path / "repo")})
        assert "first" in await call("git__git_log", {"repo_path": str(tmp_path / "repo")})
        assert "UTC" in await call("time__get_current_time", {"timezone": "UTC"})

    assert (shared / "new.txt").read_text() == "written inside\n"
    assert "isolation works" in memory_file.read_text()
    assert json.loads((tmp_path / "project" / "memory.jsonl").read_text().splitlines()[0])["name"] == "npx"


@pytest.mark.parametrize("mode", ["auto", "landlock"])
async def test_common_servers_work_under_default_isolation(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN FAKE KEY-----\n")
    monkeypatch.setenv("HOME", str(home))
    isolation = {} if mode == "auto" else {"mode": mode}
    expected = select_sandbox("auto").sandbox.name if mode == "auto" else mode
    async with running_gateway(tmp_path, servers_for(tmp_path, isolation), watch=False, connect_timeout=60) as gw:
        for name in SERVERS:
            await gw.wait_state(name, UpstreamState.READY, UpstreamState.BACKOFF, within=WAIT)
        statuses = {s.name: s for s in gw.gateway.statuses()}
        for name in SERVERS:
            status = statuses[name]
            log = gw.gateway.server_log(name).read_text(encoding="utf-8")
            assert status.state is UpstreamState.READY, (name, status.error, log)
            assert status.isolation is not None and status.isolation.startswith(expected + ", network "), status
        assert statuses["memory-npx"].isolation == f"{expected}, network allow registry.npmjs.org"
        assert statuses["files"].isolation == f"{expected}, network none"
        await check_servers_work(gw, tmp_path, home)
