"""Run real MCP servers for tests: our fixture servers and the installed upstream ones.

async with run_fixture("notes_server", transport="http") as server:
    async with Client(server.url, mode="legacy") as client: ...

async with Client(fixture_stdio("notes_server")) as client: ...
async with Client(npm_stdio("mcp-server-everything")) as client: ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mcp import StdioServerParameters

from tests.support import paths
from tests.support.net import LOOPBACK, free_port
from tests.support.procs import QUIET_CHILD_ENV, ProcessHandle, run_process

NetworkTransport = Literal["http", "sse"]

# The paths FastMCP serves on (its defaults).
HTTP_PATH = "/mcp"
SSE_PATH = "/sse"


@dataclass(frozen=True)
class RunningServer:
    """A fixture server listening on loopback."""

    process: ProcessHandle
    transport: NetworkTransport
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The MCP endpoint: ``/mcp`` (Streamable HTTP) or ``/sse`` (SSE)."""
        return self.base_url + (HTTP_PATH if self.transport == "http" else SSE_PATH)


@asynccontextmanager
async def run_fixture(
    name: str,
    *args: str,
    transport: NetworkTransport = "http",
    env: Mapping[str, str] | None = None,
    timeout: float = 20.0,  # noqa: ASYNC109 - bounds startup only, not the caller's block
) -> AsyncIterator[RunningServer]:
    """Start fixture server ``name`` (e.g. ``"notes_server"``) on a free loopback port, wait until it
    listens, yield it, and tear it down. ``args`` are extra command-line arguments."""
    port = free_port()
    argv = paths.fixture_argv(name, "--transport", transport, "--host", LOOPBACK, "--port", str(port), *args)
    async with run_process(argv, env=env, ready_port=port, timeout=timeout, cwd=paths.REPO_ROOT) as proc:
        yield RunningServer(process=proc, transport=transport, host=LOOPBACK, port=port)


def _stdio(argv: list[str], env: Mapping[str, str] | None, cwd: str | Path | None) -> StdioServerParameters:
    return StdioServerParameters(
        command=argv[0],
        args=argv[1:],
        env={**QUIET_CHILD_ENV, **(env or {})},
        cwd=cwd,
    )


def fixture_stdio(
    name: str, *args: str, env: Mapping[str, str] | None = None, cwd: str | Path | None = None
) -> StdioServerParameters:
    """`StdioServerParameters` running fixture server ``name`` over stdio (for ``Client``/``stdio_client``).

    ``env`` is merged over the SDK's default child environment, which is NOT the whole of this
    process's environment (the SDK passes only a safe subset such as HOME and PATH).
    """
    argv = paths.fixture_argv(name, "--transport", "stdio", *args)
    return _stdio(argv, env, cwd if cwd is not None else paths.REPO_ROOT)


def npm_stdio(
    bin_name: str, *args: str, env: Mapping[str, str] | None = None, cwd: str | Path | None = None
) -> StdioServerParameters:
    """`StdioServerParameters` for an installed npm server, e.g. ``npm_stdio("mcp-server-memory")``."""
    return _stdio([*paths.npm_bin(bin_name), *args], env, cwd)


def pyserver_stdio(
    bin_name: str, *args: str, env: Mapping[str, str] | None = None, cwd: str | Path | None = None
) -> StdioServerParameters:
    """`StdioServerParameters` for an installed PyPI server, e.g. ``pyserver_stdio("mcp-server-time")``."""
    return _stdio([*paths.pyserver_bin(bin_name), *args], env, cwd)
