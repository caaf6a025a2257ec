"""``mcpproxy serve``: run the gateway over HTTP (default) or for one client over stdio.

Over HTTP the endpoint answers at once; servers connect in the background while a live
table (on a terminal) shows each one go from connecting to ready or error. With
``--stdio`` the MCP protocol owns standard output, so everything else (logs, progress)
goes to standard error and the log file, and no HTTP port is opened unless ``--listen``
is given.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
import click
import uvicorn
from mcp.server.stdio import stdio_server
from rich.console import Console
from rich.live import Live
from rich.table import Table

from mcpproxy.app import build_app
from mcpproxy.cli.common import EXIT_FAILED, EXIT_INVALID, Env, fail, fail_proxy
from mcpproxy.config.fields import SETTING_FIELDS
from mcpproxy.endpoints.mcp_server import build_retrieve_server
from mcpproxy.endpoints.notify import Hub
from mcpproxy.errors import ProxyError
from mcpproxy.gateway import Gateway
from mcpproxy.observe.logging import setup_logging
from mcpproxy.observe.shutdown import CancellableStdin, DrainingServer, graceful_timeout, stop_on_signal
from mcpproxy.settings import Settings, is_loopback_host

logger = logging.getLogger(__name__)

PROGRESS_WINDOW = 60.0
"""Seconds the live connection table stays up at most; the gateway keeps serving after it."""

_STYLE = {"ready": "green", "connecting": "yellow", "backoff": "red", "error": "red", "disabled": "dim"}


def setting_options(command: Callable[..., None]) -> Callable[..., None]:
    """One option per global setting, from the settings table (``data_dir`` is a global option)."""
    for row in reversed(SETTING_FIELDS):
        if row.name == "data_dir":
            continue
        kind: Any = click.Choice(row.choices) if row.choices else row.python_type
        command = click.option(row.flag, row.name, type=kind, default=None, metavar=row.name.upper(),
                               help=f"{row.description.replace('``', '')} [env {row.env}]")(command)
    return command


@click.command()
@setting_options
@click.option("--stdio", "use_stdio", is_flag=True, help="Serve one MCP client over stdin/stdout.")
@click.option("--no-watch", is_flag=True, help="Do not reload the config file when it changes.")
@click.pass_obj
def serve(env: Env, /, use_stdio: bool, no_watch: bool, **flags: Any) -> None:
    """Run the gateway."""
    listen = flags.get("listen")
    env.overrides.update({name: value for name, value in flags.items() if value is not None})
    try:
        settings = env.settings()
    except ProxyError as exc:
        fail_proxy(exc)
    setup_logging(
        level=settings.log_level,
        fmt=settings.log_format,
        log_dir=settings.data_path / "logs",
        max_bytes=settings.log_max_bytes,
        backups=settings.log_backups,
    )
    if not is_loopback_host(settings.host) and settings.mcp_auth != "required" and (not use_stdio or listen):
        fail(
            f"refusing to listen on {settings.host} without authentication: anyone who can reach it could use "
            "every tool",
            EXIT_INVALID,
            'set "mcp_auth": "required" (clients then need `mcpproxy token create`), or listen on 127.0.0.1',
        )
    try:
        if use_stdio:
            anyio.run(_serve_stdio, env, settings, bool(listen), not no_watch, backend_options=_loop_options())
        else:
            anyio.run(_serve_http, env, settings, not no_watch, backend_options=_loop_options())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        fail(
            f"cannot serve on {settings.listen}: {exc.strerror or exc}",
            EXIT_INVALID,
            "is another mcpproxy running? pick another port with --listen",
        )


def _loop_options() -> dict[str, Any]:
    """uvloop when it is installed (a default dependency on Linux and macOS): the event loop costs less per call."""
    try:
        import uvloop  # noqa: F401 - only probed
    except ImportError:
        return {}
    return {"use_uvloop": True}


def _uvicorn(gateway: Gateway, settings: Settings) -> uvicorn.Server:
    config = uvicorn.Config(
        build_app(gateway),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(graceful_timeout(gateway) + 0.999),
    )
    # On SIGTERM/SIGINT: stop accepting, drain calls in flight (bounded), close upstreams, flush the store.
    return DrainingServer(config, gateway)


def bind_socket(settings: Settings) -> socket.socket:
    """Bind the listening socket ourselves, so a taken port is a clear error before anything starts."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the listening
    # socket says TCP; without it every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, settings.port))
        sock.listen(2048)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


async def _serve_http(env: Env, settings: Settings, watch: bool) -> None:
    gateway = Gateway(settings, config_path=env.config_path, watch_config=watch)
    # The app (and its API key file) exists before the port accepts: a client that connects at
    # once finds the key in the data dir.
    server = _uvicorn(gateway, settings)
    sock = bind_socket(settings)
    with sock:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_progress, gateway, server)
            await server.serve(sockets=[sock])
            tg.cancel_scope.cancel()
    if gateway.fatal is not None:
        fail(f"the gateway stopped while serving: {gateway.fatal!r}", EXIT_FAILED, "see the log; restart mcpproxy")


async def _serve_stdio(env: Env, settings: Settings, with_http: bool, watch: bool) -> None:
    gateway = Gateway(settings, config_path=env.config_path, watch_config=watch)
    if with_http:
        server = _uvicorn(gateway, settings)
        sock = bind_socket(settings)
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(server.serve, sockets=[sock]))
            await gateway.entered.wait()
            await _run_stdio(gateway)
            server.should_exit = True
        return
    async with gateway, anyio.create_task_group() as tg:
        # SIGTERM/SIGINT: drain calls in flight (bounded), then leave: the gateway closes and flushes.
        await tg.start(stop_on_signal, gateway, tg.cancel_scope)
        await _run_stdio(gateway)
        tg.cancel_scope.cancel()


async def _run_stdio(gateway: Gateway) -> None:
    async with Hub(gateway) as hub:
        mcp_server = build_retrieve_server(gateway, hub)
        # A reader a SIGTERM can interrupt while the client keeps stdin open (see CancellableStdin).
        stdin = CancellableStdin() if CancellableStdin.usable() else None
        try:
            async with stdio_server(stdin=stdin) as (read_stream, write_stream):  # type: ignore[arg-type]
                await mcp_server.run(read_stream, write_stream, mcp_server.create_initialization_options())
        finally:
            if stdin is not None:
                await stdin.aclose()


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="mcpproxy: connecting upstream servers", expand=False)
    for col in ("server", "transport", "state", "tools", "detail"):
        table.add_column(col)
    for row in rows:
        state = row["state"]
        table.add_row(
            row["name"],
            row["transport"],
            f"[{_STYLE.get(state, 'white')}]{state}[/]",
            str(row.get("tool_count", "")),
            (row.get("error") or "")[:80],
        )
    return table


async def _progress(gateway: Gateway, server: uvicorn.Server) -> None:
    """Show servers connecting (live table on a terminal, log lines otherwise)."""
    await gateway.entered.wait()
    console = Console(stderr=True)
    logger.info("mcpproxy serving MCP at http://%s/mcp (direct mode: /mcp/all)", gateway.settings.listen)
    if console.is_terminal and sys.stderr.isatty():
        with Live(_table([]), console=console, refresh_per_second=8, transient=False) as live:
            with anyio.move_on_after(PROGRESS_WINDOW):
                while not gateway.all_attempted():
                    live.update(_table([s.to_dict() for s in gateway.statuses()]))
                    await gateway.wait_state_change()
            live.update(_table([s.to_dict() for s in gateway.statuses()]))
    else:
        with anyio.move_on_after(PROGRESS_WINDOW):
            while not gateway.all_attempted():
                await gateway.wait_state_change()
    ready = sum(1 for s in gateway.statuses() if s.state.value == "ready")
    logger.info("%d of %d servers ready, %d tools indexed", ready, len(gateway.statuses()), len(gateway.index))
