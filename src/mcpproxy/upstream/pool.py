"""The pool of upstream servers: one supervised session per server.

The pool owns a task group (entered with the gateway) and one ``ManagedUpstream`` per
configured server. Servers start in parallel: ``start`` returns as soon as the supervisor
runs, never waiting for the connection, so a slow or broken server delays nobody. Adding,
removing, updating, enabling and disabling servers are pool operations called by the state
service; nothing else changes the set of servers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio
from anyio.abc import TaskGroup

from mcpproxy.errors import UnknownServer
from mcpproxy.settings import ServerSpec, Settings
from mcpproxy.upstream.base import ServerStatus
from mcpproxy.upstream.session import ManagedUpstream, NotificationCallback, StateCallback, ToolsCallback

logger = logging.getLogger(__name__)


class UpstreamPool:
    """All upstream servers of one gateway.

    Args:
        settings: Global settings (timeouts, backoff).
        log_dir: Directory for per-server log files.
        on_tools: Called after every successful listing of a server's tools.
        on_state: Called on every state change of any server.
        on_notification: Called with the other notifications of any server.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        log_dir: Path,
        on_tools: ToolsCallback,
        on_state: StateCallback,
        on_notification: NotificationCallback | None = None,
    ) -> None:
        self.settings = settings
        self._log_dir = log_dir
        self._on_tools = on_tools
        self._on_state = on_state
        self._on_notification = on_notification
        self._servers: dict[str, ManagedUpstream] = {}
        self._tg: TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        await self.aclose()
        return None

    async def aclose(self) -> None:
        """Close every session (stdio servers are stopped) and wait for them."""
        tg, self._tg = self._tg, None
        if tg is None:
            return
        tg.cancel_scope.cancel()
        # Exited directly (not under a shield scope of our own): the task group's cancel scope
        # must be the innermost one of this task when it exits. Sessions shield their own teardown.
        await tg.__aexit__(None, None, None)
        self._servers.clear()

    def __contains__(self, name: str) -> bool:
        return name in self._servers

    def names(self) -> list[str]:
        return sorted(self._servers)

    def get(self, name: str) -> ManagedUpstream:
        try:
            return self._servers[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownServer(
                f"no server named '{name}'",
                hint=f"known servers: {known}; `mcpproxy upstream list` shows them",
                data={"server": name},
            ) from None

    def statuses(self) -> list[ServerStatus]:
        return [self._servers[n].status for n in self.names()]

    async def start(self, spec: ServerSpec) -> ManagedUpstream:
        """Start supervising ``spec`` (returns before it connects)."""
        if self._tg is None:
            raise RuntimeError("the pool is not running")
        if spec.name in self._servers:
            raise ValueError(f"server {spec.name!r} is already in the pool")
        upstream = ManagedUpstream(
            spec,
            self.settings,
            log_dir=self._log_dir,
            on_tools=self._on_tools,
            on_state=self._on_state,
            on_notification=self._on_notification,
        )
        self._servers[spec.name] = upstream
        await self._tg.start(upstream.run)
        return upstream

    def stop(self, name: str) -> None:
        """Stop and forget a server (its session closes in the background, bounded)."""
        upstream = self._servers.pop(name, None)
        if upstream is not None:
            upstream.stop()

    def update(self, spec: ServerSpec) -> None:
        """Apply a changed entry: reconnect with it (or disconnect when disabled)."""
        self.get(spec.name).request_restart(spec)

    def restart(self, name: str) -> None:
        self.get(name).request_restart()

    def update_settings(self, settings: Settings) -> None:
        self.settings = settings
        for upstream in self._servers.values():
            upstream.settings = settings
