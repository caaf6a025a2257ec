"""Run a real mcpproxy gateway for a test: in this process (fast, inspectable) or as the
``mcpproxy serve`` program (for CLI, signal and crash journeys).

    async with running_gateway(tmp_path, {"notes": {...}}) as gw:
        await gw.wait_ready("notes")
        async with Client(gw.mcp_url, mode="auto") as client: ...

Both listen on a free loopback port with a data dir and config file under ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import uvicorn

from mcpproxy.app import build_app
from mcpproxy.cli.serve import bind_socket
from mcpproxy.config.loader import load_settings
from mcpproxy.endpoints.rest import load_or_create_api_key
from mcpproxy.gateway import Gateway
from mcpproxy.upstream.base import UpstreamState
from tests.support.net import LOOPBACK, free_port
from tests.support.procs import ProcessHandle, run_process

READY_TIMEOUT = 30.0


def write_config(tmp_path: Path, servers: Mapping[str, Mapping[str, Any]], **settings: Any) -> Path:
    """A config file with ``servers`` and a loopback listener on a free port."""
    data_dir = tmp_path / "data"
    # Journeys that are not about quarantine run with trusted servers; security journeys pass
    # default_trust="manual" (the product's default) explicitly.
    config = {
        "listen": f"{LOOPBACK}:{free_port()}",
        "data_dir": str(data_dir),
        "default_trust": "auto",
        **settings,
        "mcpServers": servers,
    }
    path = tmp_path / "mcp_config.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


@dataclass
class GatewayHandle:
    """A gateway running in the test's event loop."""

    gateway: Gateway
    config_path: Path
    base_url: str
    api_key: str

    @property
    def mcp_url(self) -> str:
        return self.base_url + "/mcp"

    @property
    def direct_url(self) -> str:
        return self.base_url + "/mcp/all"

    @property
    def api_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    async def wait_state(self, name: str, *states: UpstreamState, within: float = READY_TIMEOUT) -> None:
        """Wait until server ``name`` is in one of ``states``."""
        with anyio.fail_after(within):
            while True:
                status = {s.name: s for s in self.gateway.statuses()}.get(name)
                if status is not None and status.state in states:
                    return
                await self.gateway.wait_state_change()

    async def wait_ready(self, *names: str, within: float = READY_TIMEOUT) -> None:
        for name in names:
            await self.wait_state(name, UpstreamState.READY, within=within)

    async def wait_for(self, predicate: Any, *, within: float = READY_TIMEOUT, what: str = "condition") -> None:
        """Wait until ``predicate()`` is true, re-checking at each state or tool-list change."""
        changed = anyio.Event()

        def poke() -> None:
            changed.set()

        self.gateway.add_listener(poke)
        try:
            with anyio.fail_after(within):
                while not predicate():
                    with anyio.move_on_after(0.2):
                        await changed.wait()
                    changed = anyio.Event()
        except TimeoutError:
            raise AssertionError(f"timed out after {within} s waiting for {what}") from None


@asynccontextmanager
async def running_gateway(
    tmp_path: Path, servers: Mapping[str, Mapping[str, Any]], *, watch: bool = True, **settings: Any
) -> AsyncIterator[GatewayHandle]:
    """A gateway serving HTTP on loopback inside this event loop, with ``servers`` configured."""
    path = write_config(tmp_path, servers, **settings)
    loaded = load_settings(path, env={})
    gateway = Gateway(loaded, config_path=path, watch_config=watch)
    api_key = load_or_create_api_key(loaded.data_path)
    app = build_app(gateway, api_key=api_key)
    sock = bind_socket(loaded)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on", access_log=False))
    # Tests own the process's signals; uvicorn must not install its own handlers here.
    server.capture_signals = _no_signal_capture  # type: ignore[method-assign]
    with sock:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(server.serve, sockets=[sock]))
            with anyio.fail_after(READY_TIMEOUT):
                await gateway.entered.wait()
                while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag, no event
                    await anyio.sleep(0.01)
            try:
                yield GatewayHandle(gateway, path, f"http://{loaded.listen}", api_key)
            finally:
                server.should_exit = True


@contextmanager
def _no_signal_capture() -> Iterator[None]:
    yield


def mcpproxy_argv(*args: str) -> list[str]:
    """The ``mcpproxy`` program as this interpreter runs it."""
    return [sys.executable, "-m", "mcpproxy", *args]


@asynccontextmanager
async def mcpproxy_process(
    config_path: Path, *extra: str, watch: bool = False, env: Mapping[str, str] | None = None
) -> AsyncIterator[tuple[ProcessHandle, str]]:
    """``mcpproxy serve`` as a real process; yields it and its base URL once it listens."""
    settings = load_settings(config_path, env={})
    host, port = settings.host, settings.port
    child_env = {**os.environ, "MCPPROXY_LOG_FORMAT": "json", **(env or {})}
    argv = mcpproxy_argv("--config", str(config_path), "serve", *([] if watch else ["--no-watch"]), *extra)
    async with run_process(argv, env=child_env, ready_port=port, timeout=READY_TIMEOUT) as proc:
        yield proc, f"http://{host}:{port}"


QUIET_FASTMCP = {"FASTMCP_SHOW_SERVER_BANNER": "false", "FASTMCP_CHECK_FOR_UPDATES": "off", "PYTHONUNBUFFERED": "1"}


def stdio_entry(argv: list[str], env: Mapping[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """A config entry for a stdio server started as ``argv``."""
    return {"command": argv[0], "args": argv[1:], "env": {**QUIET_FASTMCP, **(env or {})}, **extra}


def fixture_entry(name: str, *args: str, env: Mapping[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """A config entry running one of our fixture servers over stdio."""
    from tests.support import paths

    return stdio_entry(paths.fixture_argv(name, "--transport", "stdio", *args), env, **extra)
